"""The Python API: mmseg's ``init_model`` / ``inference_model``
(:mod:`.inference`) and ``MMSegInferencer`` (:mod:`.multimodal_inferencer`)
for multimodal models."""
from .inference import inference_model, init_model
from .multimodal_inferencer import MultiModalInferencer

__all__ = ['init_model', 'inference_model', 'MultiModalInferencer']
