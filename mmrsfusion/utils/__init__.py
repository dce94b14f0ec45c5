from .checkpoint import (InvalidCheckpointError, UnsafeCheckpointError,
                         checkpoint_safe_globals,
                         load_checkpoint_safely, save_checkpoint_atomically)
from .checkpoint_spec import check_checkpoint_spec, save_checkpoint_spec
from .config import (bind_config_spec, check_slide_cfg, load_config,
                     positive_pair)
from .modality_spec import (KINDS, Modality, ModalitySpec, count_modalities,
                            takes_modalities)
from .pipeline import pipeline_transforms

__all__ = [
    'KINDS', 'Modality', 'ModalitySpec', 'count_modalities',
    'takes_modalities',
    'bind_config_spec', 'check_checkpoint_spec', 'save_checkpoint_spec',
    'InvalidCheckpointError', 'UnsafeCheckpointError',
    'checkpoint_safe_globals',
    'load_checkpoint_safely', 'save_checkpoint_atomically', 'load_config',
    'positive_pair', 'check_slide_cfg', 'pipeline_transforms'
]
