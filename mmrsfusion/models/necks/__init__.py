from .dfm import DFMNeck
from .dgfm import DGFM, DGFMNeck
from .sgf import SGF, SGFNeck

__all__ = ['DFMNeck', 'DGFM', 'DGFMNeck', 'SGF', 'SGFNeck']
