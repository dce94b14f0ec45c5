from .geometric import MultiModalPad, MultiModalRandomRotate
from .loading import (LoadMultiModalImageFromFiles, normalize_elevation,
                      read_raster)
from .modality_presence import PackMultiModalSegInputs, RandomModalityDrop
from .optical_only import OpticalOnly
from .windowed_loading import LoadMultiModalRandomWindow, read_tiff_window

__all__ = [
    'LoadMultiModalImageFromFiles', 'normalize_elevation', 'read_raster',
    'OpticalOnly', 'MultiModalPad', 'MultiModalRandomRotate',
    'PackMultiModalSegInputs', 'RandomModalityDrop',
    'LoadMultiModalRandomWindow', 'read_tiff_window'
]
