from . import hooks, optimizers  # noqa: F401
from .cpu_dist import setup_cpu_dist
from .hooks import load_trainable_checkpoint
from .optimizers import MixedPrecisionOptimWrapper
from .runner import MultiModalRunner

__all__ = [
    'setup_cpu_dist', 'load_trainable_checkpoint',
    'MixedPrecisionOptimWrapper', 'MultiModalRunner'
]
