from .dgfm import DGFM, DGFMNeck
from .sgf import SGF, SGFNeck

__all__ = ['DGFM', 'DGFMNeck', 'SGF', 'SGFNeck']
