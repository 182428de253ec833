"""Export for other runtimes: ONNX graphs (image encoder / text encoder / decoder / visual
prompt encoder) and an onnxruntime predictor with the same set_image / predict API as
`clipseg.Predictor`, which needs neither torch nor onnx (``pip install 'clipseg[onnxruntime]'``).

Exporting needs torch and onnx (``pip install 'clipseg[onnx]'``); both are imported only when used.
"""

from .format import read_metadata


def __getattr__(name):
    if name == "OnnxPredictor":
        from .onnx_predictor import OnnxPredictor

        return OnnxPredictor
    if name == "export_onnx":
        from .onnx import export_onnx

        return export_onnx
    raise AttributeError(name)


__all__ = ["export_onnx", "read_metadata", "OnnxPredictor"]
