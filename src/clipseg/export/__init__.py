"""Export for other runtimes: ONNX graphs (image encoder / text encoder / decoder / visual
prompt encoder) and an onnxruntime predictor with the same set_image / predict API as
`clipseg.Predictor`, which needs neither torch nor onnx (``pip install 'clipseg[onnxruntime]'``).

Exporting needs torch and onnx (``pip install 'clipseg[onnx]'``); both are imported only when used.
"""

from ..io.lazy import lazy_getattr
from .format import read_metadata

__getattr__ = lazy_getattr(__name__, {"OnnxPredictor": "onnx_predictor", "export_onnx": "onnx"})

__all__ = ["export_onnx", "read_metadata", "OnnxPredictor"]
