from .geometric import MultiModalPad, MultiModalRandomRotate
from .loading import (LoadMultiModalImageFromFiles, normalize_elevation,
                      read_raster)
from .modality_presence import PackMultiModalSegInputs, RandomModalityDrop
from .optical_only import OpticalOnly

__all__ = [
    'LoadMultiModalImageFromFiles', 'normalize_elevation', 'read_raster',
    'OpticalOnly', 'MultiModalPad', 'MultiModalRandomRotate',
    'PackMultiModalSegInputs', 'RandomModalityDrop'
]
