"""The frozen pretrained weights of an encoder: which tensors they are, and
loading them from a converted or official DINOv2 / SAM file."""
from typing import List

import torch.nn as nn
from mmengine.logging import MMLogger

from mmrsfusion.checkpoint import load_checkpoint_file
from .vit_checkpoint import CONVERTERS, is_official


def frozen_keys(encoder: nn.Module) -> List[str]:
    """State-dict keys of ``encoder`` that are not trainable parameters
    (``requires_grad``): the pretrained tensors, buffers included, not the
    parameters of PEFT wrappers injected into it."""
    return [
        key for key, value in encoder.state_dict(keep_vars=True).items()
        if not (isinstance(value, nn.Parameter) and value.requires_grad)
    ]


def _shape_fits(key: str, value, ref) -> bool:
    # mmpretrain's load hooks resize the pos-embed grid and SAM's rel-pos
    # tables, so only their channel width has to agree.
    if key == 'pos_embed' or key.endswith(('rel_pos_h', 'rel_pos_w')):
        return value.ndim == ref.ndim and value.shape[-1] == ref.shape[-1]
    return value.shape == ref.shape


def load_frozen_weights(encoder: nn.Module,
                        filename: str,
                        description: str,
                        strict: bool = True) -> int:
    """Load the pretrained weights of ``encoder`` from ``filename``.

    Goes through mmengine's ``CheckpointLoader``. An official DINOv2 or SAM
    file (recognised by its keys) is converted on the fly. Unexpected keys
    are logged; missing frozen weights raise (``strict``) or are logged.

    Args:
        encoder (nn.Module): The mmpretrain encoder.
        filename (str): The checkpoint.
        description (str): How errors name the encoder (family and arch).
        strict (bool): Raise if a frozen weight is missing from the file.

    Returns:
        int: The number of frozen tensors loaded.

    Raises:
        ValueError: If a tensor's shape does not fit ``encoder`` (an
            architecture mismatch), naming the file, the keys and both
            shapes; or, with ``strict``, if frozen weights are missing.
    """
    state_dict = load_checkpoint_file(filename)
    for family, convert in CONVERTERS.items():
        # By what the file is, not what we are: a file of the other family
        # then fails the shape check below, naming the keys.
        if is_official(state_dict, family):
            state_dict = convert(state_dict)
            break
    own = encoder.state_dict()
    mismatched = [
        f'{key}: {tuple(value.shape)} in the checkpoint, '
        f'{tuple(own[key].shape)} in the backbone'
        for key, value in state_dict.items()
        if key in own and not _shape_fits(key, value, own[key])
    ]
    if mismatched:
        raise ValueError(
            f'{filename} does not fit this backbone ({description}): '
            f'{len(mismatched)} shape mismatch(es): ' +
            '; '.join(mismatched[:5]) +
            ('; ...' if len(mismatched) > 5 else ''))
    missing, unexpected = encoder.load_state_dict(state_dict, strict=False)
    frozen = set(frozen_keys(encoder))
    missing = [key for key in missing if key in frozen]
    logger = MMLogger.get_current_instance()
    if unexpected:
        logger.warning(f'{filename}: {len(unexpected)} unexpected key(s) '
                       f'ignored: {", ".join(unexpected)}')
    if missing:
        message = (f'{filename}: {len(missing)} frozen weight(s) of the '
                   f'backbone ({description}) missing from the checkpoint: '
                   f'{", ".join(missing)}')
        if strict:
            raise ValueError(message)
        logger.warning(message)
    return len(frozen) - len(missing)
