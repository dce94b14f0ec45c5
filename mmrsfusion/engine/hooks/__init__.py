from .checkpoint_fit_hook import CheckpointFitHook
from .consistency_check_hook import (ConsistencyCheckHook,
                                     check_modality_spec)
from .log_test_metrics_hook import LogTestMetricsHook
from .progress_hook import ProgressHook
from .random_state_hook import (RandomStateHook, capture_random_states,
                                restore_random_states)
from .trainable_checkpoint_hook import TrainableCheckpointHook

__all__ = [
    'CheckpointFitHook', 'ConsistencyCheckHook', 'check_modality_spec',
    'ProgressHook', 'RandomStateHook', 'capture_random_states',
    'restore_random_states', 'LogTestMetricsHook', 'TrainableCheckpointHook'
]
