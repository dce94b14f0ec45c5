from .config import (bind_config_spec, check_slide_cfg, load_config,
                     positive_pair)
from .installed_configs import (list_configs, register_config_scope,
                                resolve_config)
from .modality_spec import (KINDS, Modality, ModalitySpec, count_modalities,
                            takes_modalities)
from .pipeline import pipeline_transforms
from .progress import Progress

__all__ = [
    'KINDS', 'Modality', 'ModalitySpec', 'count_modalities',
    'takes_modalities', 'bind_config_spec', 'load_config',
    'positive_pair', 'check_slide_cfg', 'pipeline_transforms', 'Progress',
    'list_configs', 'resolve_config', 'register_config_scope'
]
