from .checkpoint import (InvalidCheckpointError, UnsafeCheckpointError,
                         checkpoint_safe_globals,
                         load_checkpoint_safely, save_checkpoint_atomically)
from .config import check_slide_cfg, load_config, positive_pair
from .pipeline import pipeline_transforms
from .modality import (KINDS, Modality, fill_modalities, parse_modalities,
                       split_modalities, total_channels)
from .presence import (PRESENCE_KEY, sample_presence, stack_presence,
                       zero_absent)

__all__ = [
    'KINDS', 'Modality', 'fill_modalities', 'parse_modalities',
    'split_modalities', 'total_channels', 'PRESENCE_KEY',
    'sample_presence', 'stack_presence', 'zero_absent',
    'InvalidCheckpointError', 'UnsafeCheckpointError',
    'checkpoint_safe_globals',
    'load_checkpoint_safely', 'save_checkpoint_atomically', 'load_config',
    'positive_pair', 'check_slide_cfg', 'pipeline_transforms'
]
