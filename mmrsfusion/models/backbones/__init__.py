from .multi_stream_encoder import MultiStreamEncoder
from .multi_stream_vit import MultiStreamViT
from .vit_checkpoint import convert_dinov2, convert_sam

__all__ = [
    'MultiStreamEncoder', 'MultiStreamViT', 'convert_dinov2', 'convert_sam'
]
