"""Export for other runtimes: ONNX graphs (image encoder / text encoder / decoder) and an
onnxruntime predictor with the same set_image / predict API as `clipseg.Predictor`.

`onnx` and `onnxruntime` are optional (``pip install clipseg[onnx]``); they are imported
only when used.
"""

from .onnx import export_onnx, read_metadata


def __getattr__(name):
    if name == "OnnxPredictor":
        from .onnx_predictor import OnnxPredictor

        return OnnxPredictor
    raise AttributeError(name)


__all__ = ["export_onnx", "read_metadata", "OnnxPredictor"]
