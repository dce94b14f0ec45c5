from .geometric import MultiModalPad, MultiModalRandomRotate
from .loading import LoadMultiModalImageFromFiles
from .random_modality_drop import RandomModalityDrop
from .run_pipeline import run_pipeline
from .optical_only import OpticalOnly
from .windowed_loading import LoadMultiModalRandomWindow

__all__ = [
    'LoadMultiModalImageFromFiles', 'OpticalOnly', 'MultiModalPad',
    'MultiModalRandomRotate', 'RandomModalityDrop', 'run_pipeline',
    'LoadMultiModalRandomWindow'
]
