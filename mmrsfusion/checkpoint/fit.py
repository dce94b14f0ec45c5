"""How a checkpoint differs from a model: what
:class:`~mmrsfusion.engine.hooks.CheckpointFitHook` refuses, in words."""
import re
from typing import Dict, List, Sequence

import torch.nn as nn

from .trainable import trainable_keys, unwrap_model

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
