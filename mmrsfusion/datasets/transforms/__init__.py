from .geometric import MultiModalPad, MultiModalRandomRotate
from .loading import (LoadMultiModalImageFromFiles, normalize_elevation,
                      read_raster)
from .modality_presence import RandomModalityDrop
from .optical_only import OpticalOnly
from .windowed_loading import LoadMultiModalRandomWindow, read_tiff_window

__all__ = [
    'LoadMultiModalImageFromFiles', 'normalize_elevation', 'read_raster',
    'OpticalOnly', 'MultiModalPad', 'MultiModalRandomRotate',
    'RandomModalityDrop',
    'LoadMultiModalRandomWindow', 'read_tiff_window'
]
