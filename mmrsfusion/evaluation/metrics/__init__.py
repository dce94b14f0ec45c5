from .isprs_metric import ISPRSMetric
from .per_scene_metric import PerSceneMetric

__all__ = ['ISPRSMetric', 'PerSceneMetric']
