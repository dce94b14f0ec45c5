from . import metrics  # noqa: F401
from .metrics import ISPRSMetric, PerSceneMetric

__all__ = ['ISPRSMetric', 'PerSceneMetric']
