"""The Python API: mmseg's ``init_model`` / ``inference_model`` for
multimodal models (:mod:`.inference`)."""
from .inference import inference_model, init_model

__all__ = ['init_model', 'inference_model']
