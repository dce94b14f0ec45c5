from .no_bias_heads import FCNHeadNoBias, UPerHeadNoBias

__all__ = ['FCNHeadNoBias', 'UPerHeadNoBias']
