from .geometric import MultiModalPad, MultiModalRandomRotate
from .loading import LoadMultiModalImageFromFiles
from .modality_presence import RandomModalityDrop
from .optical_only import OpticalOnly
from .windowed_loading import LoadMultiModalRandomWindow

__all__ = [
    'LoadMultiModalImageFromFiles', 'OpticalOnly', 'MultiModalPad',
    'MultiModalRandomRotate', 'RandomModalityDrop',
    'LoadMultiModalRandomWindow'
]
