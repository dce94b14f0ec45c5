from .dfm import DFMNeck
from .dgfm import DGFM, DGFMNeck

__all__ = ['DFMNeck', 'DGFM', 'DGFMNeck']
