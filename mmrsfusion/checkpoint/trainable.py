"""Checkpoints that hold only what was trained: the key tables, stripping the
frozen part before saving and re-attaching it when loading.

A model whose backbone keeps a large frozen part loaded from a pretrained
file (:class:`~mmrsfusion.models.backbones.MultiStreamViT`: ``frozen_keys()``,
``frozen_checkpoint``, ``load_frozen()``) need not save that part: it can be
re-read from the same file.
:class:`~mmrsfusion.engine.hooks.TrainableCheckpointHook` drops it
(:func:`strip_frozen`) from every checkpoint the runner saves and re-attaches
it (:func:`attach_frozen`) whenever the runner loads one (``load_from``,
``--resume``, ``tools/test.py CONFIG CKPT``), so loading stays complete
(strict). For a MoBaNet ViT-L the saved weights shrink
from about 1.25 GB to about 36 MB.

Any submodule with a ``frozen_keys()`` method (keys relative to itself) and a
``frozen_checkpoint`` attribute (the file, or None) takes part; its keys in
the segmentor's state dict are prefixed with its attribute path, e.g.
``backbone.encoder.*``.

Outside a runner (e.g. ``mmseg.apis.init_model``), load such a checkpoint
with :func:`load_trainable_checkpoint`.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import (_load_checkpoint,
                                        _load_checkpoint_to_model)

from .fit import checkpoint_mismatch, fit_error
from .frozen_keys import frozen_owners, prefixed_keys, unwrap_model
from .spec import check_checkpoint_spec

#: ``checkpoint['meta']`` key recording what was dropped, per module path:
#: ``{'backbone': {'frozen_checkpoint': str, 'num_tensors': int,
#: 'checksum': float}}``.
META_KEY = 'frozen_weights'


@torch.no_grad()
def frozen_checksum(module: nn.Module) -> float:
    """Sum (float64) of the module's frozen tensors: a cheap fingerprint of
    which pretrained weights are loaded."""
    own = module.state_dict()
    return float(
        sum(own[key].detach().double().sum().item()
            for key in module.frozen_keys()))


def strip_frozen(checkpoint: dict,
                 model: nn.Module,
                 logger: Optional[MMLogger] = None) -> Dict[str, dict]:
    """Remove from ``checkpoint['state_dict']`` the frozen tensors of every
    frozen owner of ``model`` that has a ``frozen_checkpoint`` file, and
    record them in ``checkpoint['meta'][META_KEY]``.

    Owners without a file (random frozen weights) keep their tensors in the
    checkpoint (a warning says so): nothing could re-create them.

    Returns:
        dict: What was recorded in the meta, per module path.
    """
    logger = logger or MMLogger.get_current_instance()
    state_dict = checkpoint['state_dict']
    records = {}
    for path, module in frozen_owners(model):
        keys = prefixed_keys(path, module)
        source = module.frozen_checkpoint
        if source is None:
            logger.warning(
                f'TrainableCheckpointHook: {path or "the model"} has no '
                f'frozen_checkpoint (its frozen weights are random), so its '
                f'{len(keys)} frozen tensors are kept in the checkpoint')
            continue
        for key in keys:
            state_dict.pop(key, None)
        records[path] = dict(
            frozen_checkpoint=str(source),
            num_tensors=len(keys),
            checksum=frozen_checksum(module))
    if records:
        checkpoint.setdefault('meta', {})[META_KEY] = records
    return records


def attach_frozen(checkpoint: dict,
                  model: nn.Module,
                  logger: Optional[MMLogger] = None,
                  filename: Optional[str] = None) -> List[str]:
    """Put back into ``checkpoint['state_dict']`` (or ``checkpoint`` itself
    when it has no ``state_dict``) the frozen tensors of ``model`` that are
    missing from it, read from each owner's own ``frozen_checkpoint`` with
    its ``load_frozen()`` (conversion of official files, pos-embed resizing
    and shape checks included; the live model is loaded too).

    A checkpoint holding all frozen tensors (a full one) is left as it is.

    Returns:
        list[str]: The keys put back.

    Raises:
        InvalidCheckpointError: If frozen tensors are missing and the
            checkpoint does not fit the rest of the model either (another
            architecture's, or a part of one): that is the error, named
            with ``filename``, not the missing frozen weights.
        RuntimeError: If frozen tensors are missing from a checkpoint that
            fits the rest of the model, and the owner has no
            ``frozen_checkpoint`` to read them from.
    """
    logger = logger or MMLogger.get_current_instance()
    state_dict = checkpoint.get('state_dict', checkpoint)
    records = (checkpoint.get('meta') or {}).get(META_KEY, {})
    attached = []
    for path, module in frozen_owners(model):
        keys = prefixed_keys(path, module)
        missing = [
            k for k in keys
            if k not in state_dict and f'module.{k}' not in state_dict
        ]
        if not missing:
            continue
        name = path or 'the model'
        record = records.get(path, {})
        recorded = record.get('frozen_checkpoint')
        source = module.frozen_checkpoint
        if source is None:
            mismatch = checkpoint_mismatch(state_dict, model)
            mismatch['missing_other'] = []  # the frozen keys, named below
            if any(mismatch.values()):
                raise fit_error(filename, model, mismatch,
                                partial_hint=False)
            raise RuntimeError(
                f'The checkpoint lacks {len(missing)} frozen tensors of '
                f'{name} (it was saved without them'
                f'{f", from {recorded}" if recorded else ""}) and {name} has '
                f'no frozen_checkpoint to re-attach them from: set it, e.g. '
                f'--cfg-options model.{path + "." if path else ""}'
                f'frozen_checkpoint={recorded or "PATH"}')
        if recorded is not None and osp.normpath(str(recorded)) != \
                osp.normpath(str(source)):
            logger.warning(
                f'TrainableCheckpointHook: the checkpoint was trained with '
                f'the frozen weights of {recorded}; re-attaching those of '
                f'{source}')
        module.load_frozen(source)
        if 'checksum' in record:
            checksum = frozen_checksum(module)
            expected = record['checksum']
            if abs(checksum - expected) > 1e-6 * max(1., abs(expected)):
                logger.warning(
                    f'TrainableCheckpointHook: the frozen weights in {source} '
                    f'differ from those the checkpoint was trained with '
                    f'(checksum {checksum!r} vs {expected!r}): the results '
                    f'will not be those of the trained model')
        own = module.state_dict()
        prefix = f'{path}.' if path else ''
        for key in module.frozen_keys():
            if prefix + key in missing:
                state_dict[prefix + key] = own[key]
        attached.extend(missing)
        logger.info(f'TrainableCheckpointHook: re-attached {len(missing)} '
                    f'frozen tensors of {name} from {source}')
    return attached


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
    first, with the message ``tools/test.py`` gives (:func:`fit_error`).

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
        raise fit_error(filename, model, mismatch, partial_hint=False)
    attach_frozen(checkpoint, model, filename=filename)
    return _load_checkpoint_to_model(
        unwrap_model(model), checkpoint, strict,
        revise_keys=list(revise_keys))
