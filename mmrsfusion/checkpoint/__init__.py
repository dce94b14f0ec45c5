"""The checkpoint library: weights-only safe loading and atomic saving
(:mod:`.serialization`, which importing this package installs as mmengine's
loader of local files), checkpoints without the frozen pretrained weights
(:mod:`.trainable`), how a checkpoint fits a model (:mod:`.fit`) and the
modality spec it records (:mod:`.spec`), and the official DINOv2 / SAM
weights with their verified download (:mod:`.download`). The
runner hooks that use it are in :mod:`mmrsfusion.engine.hooks`."""
from .download import (OFFICIAL_WEIGHTS, DownloadError, OfficialWeights,
                       VerificationError, fetch_official, official_weights)
from .fit import checkpoint_mismatch, describe_mismatch, fit_error
from .frozen_keys import frozen_owners, trainable_keys, unwrap_model
from .serialization import (InvalidCheckpointError, UnsafeCheckpointError,
                            checkpoint_safe_globals, get_state_dict,
                            load_checkpoint_file, load_checkpoint_safely,
                            save_checkpoint_atomically)
from .spec import check_checkpoint_spec, save_checkpoint_spec
from .trainable import (META_KEY, attach_frozen, load_trainable_checkpoint,
                        strip_frozen)

__all__ = [
    'checkpoint_mismatch', 'describe_mismatch', 'fit_error', 'InvalidCheckpointError',
    'UnsafeCheckpointError', 'checkpoint_safe_globals', 'get_state_dict',
    'load_checkpoint_file', 'load_checkpoint_safely',
    'save_checkpoint_atomically', 'META_KEY', 'attach_frozen',
    'frozen_owners', 'load_trainable_checkpoint', 'strip_frozen',
    'trainable_keys', 'unwrap_model', 'check_checkpoint_spec',
    'save_checkpoint_spec', 'OFFICIAL_WEIGHTS', 'DownloadError',
    'OfficialWeights', 'VerificationError', 'fetch_official',
    'official_weights'
]
