"""How a checkpoint differs from a model: what
:class:`~mmrsfusion.engine.hooks.CheckpointFitHook` refuses, in words, and
loading outside a runner that refuses the same
(:func:`load_trainable_checkpoint`)."""
import re
from typing import Dict, List, Sequence

import torch.nn as nn
from mmengine.runner.checkpoint import (_load_checkpoint,
                                        _load_checkpoint_to_model)

from .serialization import InvalidCheckpointError
from .spec import check_checkpoint_spec
from .trainable import attach_frozen, trainable_keys, unwrap_model

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


def misfit_error(name: str, model: nn.Module,
                 mismatch: Dict[str, List[str]],
                 hint: str = '') -> InvalidCheckpointError:
    """The error for checkpoint ``name`` that does not fit ``model``
    (``mismatch`` from :func:`checkpoint_mismatch`, ``hint`` appended)."""
    return InvalidCheckpointError(
        f'Checkpoint {name} does not fit the model of the config '
        f'({type(unwrap_model(model)).__name__}): '
        f'{describe_mismatch(mismatch)}. It was trained with another '
        f'architecture or config: use that config, or the checkpoint trained '
        f'with this one.{hint}')


def load_trainable_checkpoint(model: nn.Module,
                              filename: str,
                              map_location: str = 'cpu',
                              strict: bool = True,
                              revise_keys: Sequence = ((r'^module\.', ''), )
                              ) -> dict:
    """Load a checkpoint into ``model`` outside a runner, after checking
    its recorded modality spec against the model's
    (:func:`~mmrsfusion.checkpoint.spec.check_checkpoint_spec`),
    re-attaching the frozen weights it was saved without
    (:func:`attach_frozen`). With ``strict``, a checkpoint of another
    model (trained keys missing, unexpected keys, other shapes) is refused
    first, as ``tools/test.py`` refuses it (:func:`misfit_error`).

    Returns:
        dict: The loaded checkpoint.
    """
    checkpoint = _load_checkpoint(filename, map_location=map_location)
    if not isinstance(checkpoint, dict):
        raise TypeError(f'{filename}: expected a dict checkpoint')
    spec = getattr(unwrap_model(model), 'modalities', None)
    if spec is not None:
        check_checkpoint_spec(checkpoint, spec, filename)
    mismatch = checkpoint_mismatch(
        checkpoint.get('state_dict', checkpoint), model, revise_keys)
    mismatch['missing_other'] = []  # frozen: re-attached below
    if strict and any(mismatch.values()):
        raise misfit_error(filename, model, mismatch)
    attach_frozen(checkpoint, model)
    return _load_checkpoint_to_model(
        unwrap_model(model), checkpoint, strict,
        revise_keys=list(revise_keys))
