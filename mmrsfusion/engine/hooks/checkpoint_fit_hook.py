"""Refuse a checkpoint that does not fit the model, instead of loading what
fits and testing (or training) the rest from its initial weights."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.runner.checkpoint import find_latest_checkpoint

from mmseg.registry import HOOKS
from mmrsfusion.checkpoint import (checkpoint_mismatch, describe_mismatch,
                                   fit_error)


def loading_file(runner) -> Optional[str]:
    """The checkpoint file ``runner`` is loading, chosen as
    ``Runner.load_or_resume`` does (hooks only receive its content)."""
    if runner._resume and runner._load_from is None:
        return find_latest_checkpoint(runner.work_dir)
    return runner._load_from


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Stop with an error naming the file and the first differing keys when
    a loaded checkpoint (``tools/test.py CONFIG CKPT``, ``load_from``,
    ``--resume``) does not fit the model: trained keys missing, unexpected
    keys, or tensors of another shape (see :func:`checkpoint_mismatch`).
    mmengine loads such a checkpoint non-strictly, logging the mismatch,
    and the rest of the model keeps its initial weights: the metrics of
    another architecture's checkpoint would look legitimate.

    Runs after :class:`TrainableCheckpointHook` has re-attached the frozen
    weights (priority ``'LOWEST'``).

    Args:
        allow_partial (bool): For training from ``load_from`` only (not
            for resuming, and ``tools/test.py`` sets it False): load what
            fits and log the rest, e.g. to start from a checkpoint of a
            related architecture. Set it in a config with
            ``default_hooks = dict(checkpoint_fit=dict(allow_partial=True))``.
    """

    priority = 'LOWEST'

    def __init__(self, allow_partial: bool = False) -> None:
        self.allow_partial = allow_partial

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        mismatch = checkpoint_mismatch(
            checkpoint.get('state_dict', checkpoint), runner.model)
        if not any(mismatch.values()):
            return
        text = describe_mismatch(mismatch)
        name = loading_file(runner)
        if self.allow_partial and not runner._resume:
            runner.logger.warning(
                f'CheckpointFitHook: loading {name} partially '
                f'(allow_partial=True): {text}')
            return
        raise fit_error(name, runner.model, mismatch)
