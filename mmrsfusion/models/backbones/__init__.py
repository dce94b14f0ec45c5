from .multi_stream_encoder import MultiStreamEncoder
from .multi_stream_vit import MultiStreamViT
from .stream_patch_embed import StreamPatchEmbed
from .vit_checkpoint import convert_dinov2, convert_sam

__all__ = [
    'MultiStreamEncoder', 'MultiStreamViT', 'StreamPatchEmbed',
    'convert_dinov2', 'convert_sam'
]
