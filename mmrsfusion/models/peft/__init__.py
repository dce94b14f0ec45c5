from .base import BaseBlockAdapter, run_shared_block
from .cpia import CPIA

__all__ = ['BaseBlockAdapter', 'CPIA', 'run_shared_block']
