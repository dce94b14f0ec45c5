from .trainable_checkpoint_hook import (TrainableCheckpointHook,
                                        attach_frozen, frozen_owners,
                                        load_trainable_checkpoint,
                                        strip_frozen)

__all__ = [
    'TrainableCheckpointHook', 'attach_frozen', 'frozen_owners',
    'load_trainable_checkpoint', 'strip_frozen'
]
