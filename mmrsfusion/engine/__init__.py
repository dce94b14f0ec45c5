from . import hooks  # noqa: F401
from .cpu_dist import setup_cpu_dist
from .hooks import load_trainable_checkpoint

__all__ = ['setup_cpu_dist', 'load_trainable_checkpoint']
