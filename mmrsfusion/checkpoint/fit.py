"""How a checkpoint differs from a model: what
:class:`~mmrsfusion.engine.hooks.CheckpointFitHook` (and
:func:`~.trainable.attach_frozen`, before re-attaching anything) refuses,
in words."""
import re
from typing import Dict, List, Sequence

import torch.nn as nn

from .frozen_keys import trainable_keys, unwrap_model
from .serialization import InvalidCheckpointError

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
    own = unwrap_model(model).state_dict()
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


def fit_error(filename, model: nn.Module, mismatch: Dict[str, List[str]],
              partial_hint: bool = True) -> InvalidCheckpointError:
    """The error for a checkpoint ``filename`` that does not fit ``model``
    (``mismatch`` from :func:`checkpoint_mismatch`); ``partial_hint`` adds
    how to train from a checkpoint that fits only partly."""
    hint = (' (To start training from a checkpoint that fits only partly, '
            'set default_hooks.checkpoint_fit.allow_partial=True.)'
            if partial_hint else '')
    return InvalidCheckpointError(
        f'Checkpoint {filename} does not fit the model of the config '
        f'({type(unwrap_model(model)).__name__}): '
        f'{describe_mismatch(mismatch)}. It was trained with another '
        'architecture or config: use that config, or the checkpoint trained '
        f'with this one.{hint}')
