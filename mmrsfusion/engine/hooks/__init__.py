from .checkpoint_fit_hook import (CheckpointFitHook, checkpoint_mismatch,
                                  describe_mismatch)
from .consistency_check_hook import (ConsistencyCheckHook,
                                     check_modality_spec)
from .random_state_hook import (RandomStateHook, capture_random_states,
                                restore_random_states)
from .trainable_checkpoint_hook import (TrainableCheckpointHook,
                                        attach_frozen, frozen_owners,
                                        load_trainable_checkpoint,
                                        strip_frozen, trainable_keys)

__all__ = [
    'CheckpointFitHook', 'checkpoint_mismatch', 'describe_mismatch',
    'ConsistencyCheckHook', 'check_modality_spec', 'RandomStateHook',
    'capture_random_states', 'restore_random_states',
    'TrainableCheckpointHook', 'attach_frozen', 'frozen_owners',
    'load_trainable_checkpoint', 'strip_frozen', 'trainable_keys'
]
