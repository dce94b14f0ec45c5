"""The key tables of models with a frozen part: which submodules own frozen
weights (``frozen_keys()`` + ``frozen_checkpoint``) and which keys a
checkpoint must hold (see :mod:`.trainable`)."""
from typing import List, Tuple

import torch.nn as nn
from mmengine.model import BaseTTAModel, is_model_wrapper


def unwrap_model(model: nn.Module) -> nn.Module:
    """The segmentor inside DDP-style wrappers and TTA models (their
    checkpoints hold the segmentor's keys, as mmengine loads them)."""
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def frozen_owners(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """The submodules of ``model`` that have a frozen part, as
    ``(attribute path, module)`` (path ``''`` for the model itself)."""
    owners = []
    for name, module in unwrap_model(model).named_modules():
        if callable(getattr(module, 'frozen_keys', None)) and hasattr(
                module, 'frozen_checkpoint'):
            owners.append((name, module))
    return owners


def prefixed_keys(path: str, module: nn.Module) -> List[str]:
    """The frozen keys of ``module`` as keys of the segmentor's state dict
    (``module`` is at attribute path ``path``)."""
    prefix = f'{path}.' if path else ''
    return [prefix + key for key in module.frozen_keys()]


def trainable_keys(model: nn.Module) -> List[str]:
    """The keys of ``model``'s state dict that a checkpoint must hold: all
    but the frozen parts of :func:`frozen_owners` (which are re-attached
    from their pretrained files)."""
    frozen = {
        key
        for path, module in frozen_owners(model)
        for key in prefixed_keys(path, module)
    }
    return [k for k in unwrap_model(model).state_dict() if k not in frozen]
