from .config import check_slide_cfg, load_config, positive_pair
from .pipeline import pipeline_transforms
from .modality import (KINDS, Modality, fill_modalities, parse_modalities,
                       split_modalities, total_channels)
from .presence import (PRESENCE_KEY, sample_presence, stack_presence,
                       zero_absent)

__all__ = [
    'KINDS', 'Modality', 'fill_modalities', 'parse_modalities',
    'split_modalities', 'total_channels', 'PRESENCE_KEY',
    'sample_presence', 'stack_presence', 'zero_absent', 'load_config',
    'positive_pair', 'check_slide_cfg', 'pipeline_transforms'
]
