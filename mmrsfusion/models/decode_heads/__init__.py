from .no_bias_heads import FCNHeadNoBias, UPerHeadNoBias
from .unetformer_head import UNetFormerHead

__all__ = ['FCNHeadNoBias', 'UNetFormerHead', 'UPerHeadNoBias']
