"""Refuse a checkpoint that does not fit the model, instead of loading what
fits and testing (or training) the rest from its initial weights."""
import re
from typing import Dict, List, Optional, Sequence

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.runner.checkpoint import find_latest_checkpoint

from mmseg.registry import HOOKS
from mmrsfusion.utils import InvalidCheckpointError
from .trainable_checkpoint_hook import _unwrap, trainable_keys

#: Keys named per kind of mismatch in a message.
SHOWN = 5


def checkpoint_mismatch(state_dict: dict, model: nn.Module,
                        revise_keys: Sequence = ((r'^module\.', ''), )
                        ) -> Dict[str, List[str]]:
    """How ``state_dict`` (frozen parts already re-attached) differs from
    ``model``'s, keys revised as mmengine loads them.

    Returns:
        dict: ``missing_trainable`` (see :func:`trainable_keys`),
        ``missing_other``, ``unexpected`` and ``mis_shaped`` (``'key:
        checkpoint shape vs model shape'``); each list empty if it fits.
    """
    revised = {}
    for key, value in state_dict.items():
        for pattern, repl in revise_keys:
            key = re.sub(pattern, repl, key)
        revised[key] = value
    own = _unwrap(model).state_dict()
    trainable = set(trainable_keys(model))
    missing = [k for k in own if k not in revised]
    return dict(
        missing_trainable=[k for k in missing if k in trainable],
        missing_other=[k for k in missing if k not in trainable],
        unexpected=[k for k in revised if k not in own],
        mis_shaped=[
            f'{k}: {tuple(revised[k].shape)} in the checkpoint vs '
            f'{tuple(own[k].shape)} in the model' for k in own
            if k in revised and hasattr(revised[k], 'shape')
            and tuple(revised[k].shape) != tuple(own[k].shape)
        ])


def describe_mismatch(mismatch: Dict[str, List[str]]) -> str:
    """The mismatch in words, the first :data:`SHOWN` keys of each kind."""
    words = dict(missing_trainable='missing trained keys',
                 missing_other='missing other keys',
                 unexpected='unexpected keys',
                 mis_shaped='keys of another shape')
    parts = []
    for kind, keys in mismatch.items():
        if keys:
            more = f', ... ({len(keys) - SHOWN} more)' \
                if len(keys) > SHOWN else ''
            parts.append(f'{len(keys)} {words[kind]}: '
                         f'{", ".join(keys[:SHOWN])}{more}')
    return '; '.join(parts)


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

    @staticmethod
    def _file(runner) -> Optional[str]:
        # the file the runner is loading, chosen as Runner.load_or_resume
        # does (the hook only receives the checkpoint's content)
        if runner._resume and runner._load_from is None:
            return find_latest_checkpoint(runner.work_dir)
        return runner._load_from

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        mismatch = checkpoint_mismatch(
            checkpoint.get('state_dict', checkpoint), runner.model)
        if not any(mismatch.values()):
            return
        text = describe_mismatch(mismatch)
        name = self._file(runner)
        if self.allow_partial and not runner._resume:
            runner.logger.warning(
                f'CheckpointFitHook: loading {name} partially '
                f'(allow_partial=True): {text}')
            return
        model = type(_unwrap(runner.model)).__name__
        raise InvalidCheckpointError(
            f'Checkpoint {name} does not fit the model of the config '
            f'({model}): {text}. It was trained with another architecture '
            'or config: use that config, or the checkpoint trained with '
            'this one. (To start training from a checkpoint that fits '
            'only partly, set default_hooks.checkpoint_fit.allow_partial='
            'True.)')
