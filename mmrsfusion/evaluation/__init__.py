from . import metrics  # noqa: F401
from .metrics import ISPRSMetric

__all__ = ['ISPRSMetric']
