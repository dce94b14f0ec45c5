from . import hooks  # noqa: F401
from .cpu_dist import setup_cpu_dist

__all__ = ['setup_cpu_dist']
