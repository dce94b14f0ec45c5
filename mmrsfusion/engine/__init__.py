from . import hooks, optimizers  # noqa: F401
from .cpu_dist import setup_cpu_dist
from .optimizers import MixedPrecisionOptimWrapper
from .preflight import check_run_files
from .runner import MultiModalRunner

__all__ = [
    'setup_cpu_dist', 'MixedPrecisionOptimWrapper', 'MultiModalRunner',
    'check_run_files'
]
