from . import hooks, optimizers  # noqa: F401
from .cpu_dist import setup_cpu_dist
from .optimizers import MixedPrecisionOptimWrapper

__all__ = ['setup_cpu_dist', 'MixedPrecisionOptimWrapper']
