from .mcrm import MCRM

__all__ = ['MCRM']
