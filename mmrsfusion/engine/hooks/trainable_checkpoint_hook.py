"""Checkpoints that hold only what was trained, saved and loaded by the
runner (the library: :mod:`mmrsfusion.checkpoint.trainable`)."""
from mmengine.hooks import Hook

from mmseg.registry import HOOKS
from mmrsfusion.checkpoint import attach_frozen, strip_frozen
from .checkpoint_fit_hook import loading_file


@HOOKS.register_module()
class TrainableCheckpointHook(Hook):
    """Save checkpoints without the frozen pretrained weights; re-attach them
    from the pretrained file when a checkpoint is loaded.

    ``before_save_checkpoint``: removes from ``checkpoint['state_dict']`` the
    keys of every frozen part (``<module path>.<frozen_keys()>``, e.g.
    ``backbone.encoder.*``) whose module has a ``frozen_checkpoint``, and
    records the file, the number of tensors and a checksum in
    ``checkpoint['meta']['frozen_weights']``. Without a file (random frozen
    weights) the frozen tensors are kept, with a warning.

    ``after_load_checkpoint`` (``load_from``, resume, ``tools/test.py``):
    re-attaches the missing frozen tensors from the module's own
    ``frozen_checkpoint`` (warning when that file is not the recorded one or
    its weights differ from the recorded checksum), so the model is loaded
    completely; fails if they are missing and there is no file. Full
    checkpoints load as before.

    The optimizer state holds nothing for frozen parameters (they never get
    a gradient), so resuming is unaffected.

    Add it to a config with ``custom_hooks = [dict(type=
    'TrainableCheckpointHook')]``. Its priority is ``'VERY_LOW'``, so that
    other hooks have written their part of a checkpoint before it strips
    the frozen weights. (Not combined with ``EMAHook``, whose EMA state dict
    would still hold the frozen weights.)
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        records = strip_frozen(checkpoint, runner.model, runner.logger)
        dropped = sum(r['num_tensors'] for r in records.values())
        if dropped:
            runner.logger.info(
                f'TrainableCheckpointHook: saving without {dropped} frozen '
                f'tensors ({", ".join(records)}); they are re-attached from '
                + ', '.join(r['frozen_checkpoint'] for r in records.values())
                + ' on loading')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        attach_frozen(checkpoint, runner.model, runner.logger,
                      loading_file(runner))
