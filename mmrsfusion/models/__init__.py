from . import (backbones, batch_augments, decode_heads, losses, necks, peft,
               segmentors)
from .data_preprocessor import MultiModalSegDataPreProcessor

__all__ = [
    'backbones', 'batch_augments', 'decode_heads', 'losses', 'necks', 'peft',
    'segmentors', 'MultiModalSegDataPreProcessor'
]
