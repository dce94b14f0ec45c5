from .dgfm import DGFM, DGFMNeck

__all__ = ['DGFM', 'DGFMNeck']
