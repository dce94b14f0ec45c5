"""mmseg's Python API for multimodal models: build and load a model as the
tools do, predict a tile given as files or arrays per modality."""
import copy
import logging
import os.path as osp
from contextlib import contextmanager
from typing import List, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope

from mmseg.registry import DATASETS, MODELS, TRANSFORMS
from mmseg.structures import SegDataSample
from mmrsfusion.checkpoint import load_trainable_checkpoint
from mmrsfusion.datasets.transforms import (LoadMultiModalImageFromFiles,
                                            run_pipeline)
from mmrsfusion.utils import bind_config_spec, load_config

#: A modality's input: a raster file or an (H, W[, bands]) array.
ModalityInput = Union[str, np.ndarray]


@contextmanager
def _without_init_report():
    """Keep warnings only while weights are initialised: mmengine's
    top-level ``init_weights`` logs one INFO record per parameter when the
    logger has no log file (the runner writes that report to its file)."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None):
    """Build a config's model and load a checkpoint into it, as
    ``tools/test.py`` does; the counterpart of ``mmseg.apis.init_model``.

    The config's modality spec is bound (:func:`bind_config_spec`). The
    checkpoint is loaded strictly after its recorded spec is checked
    against the config's, the frozen pretrained weights it was saved
    without re-attached from the backbone's ``frozen_checkpoint``
    (:func:`load_trainable_checkpoint`). Without a checkpoint the model is
    initialised as at the start of training (frozen weights loaded).

    Args:
        config (str | Config): Config file or object (not modified).
        checkpoint (str, optional): Checkpoint file.
        device (str): Device. Defaults to ``'cpu'``.
        cfg_options (dict, optional): Overrides, as ``--cfg-options``.

    Returns:
        The segmentor in eval mode on ``device``; ``model.cfg`` is the
        bound config, ``model.dataset_meta`` the checkpoint's dataset meta
        (classes, palette), else that of the config's test dataset class.
    """
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        init_default_scope(cfg.get('default_scope', 'mmseg'))
        bind_config_spec(cfg)
    else:
        cfg = load_config(str(config), cfg_options)
    model = MODELS.build(cfg.model)
    meta = {}
    if checkpoint is None:
        with _without_init_report():
            model.init_weights()
    else:
        meta = load_trainable_checkpoint(model, checkpoint).get('meta') or {}
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    model.dataset_meta = meta.get('dataset_meta') or dict(
        getattr(DATASETS.get(dataset.get('type')), 'METAINFO', {})
        if dataset.get('type') else {})
    model.cfg = cfg
    if device == 'cpu':
        model = revert_sync_batchnorm(model)
    return model.to(device).eval()


def build_test_pipeline(model) -> List:
    """The config's test pipeline without its label loading, built with
    the model's modality spec; it starts with
    :class:`LoadMultiModalImageFromFiles`."""
    cfg = model.cfg
    steps = cfg.get('test_pipeline') or \
        cfg.test_dataloader.dataset.get('pipeline', [])
    steps = [s for s in steps if s['type'] != 'LoadAnnotations']
    pipeline = [
        TRANSFORMS.build(
            model.modalities.bind(copy.deepcopy(s), TRANSFORMS,
                                  f'test_pipeline[{i}]'))
        for i, s in enumerate(steps)
    ]
    if not pipeline or type(pipeline[0]) is not LoadMultiModalImageFromFiles:
        raise ValueError(
            f'test_pipeline: expected LoadMultiModalImageFromFiles first '
            f'(whole tiles), got {[s["type"] for s in steps][:1]}')
    return pipeline


def tile_stem(tile: Mapping[str, ModalityInput]) -> Optional[str]:
    """The file stem naming a tile's outputs: that of its first modality
    given as a file (dict order), None if all are arrays."""
    path = next((v for v in tile.values() if isinstance(v, str)), None)
    return None if path is None else osp.splitext(osp.basename(path))[0]


def prepare_tile(model, pipeline: List, tile: Mapping[str, ModalityInput],
                 where: str) -> dict:
    """One tile (modality name -> file or array; names left out absent)
    run through ``pipeline`` (:func:`build_test_pipeline`) into the packed
    model input ``dict(inputs=(C, H, W) tensor, data_samples=...)``; the
    data sample's metainfo ``tile_stem`` is :func:`tile_stem`.

    Raises:
        ValueError: ``tile`` is not a dict, names an unknown modality or
            none (the message starts with ``where``).
    """
    if not isinstance(tile, Mapping):
        raise ValueError(
            f'{where}: expected a dict modality name -> file or array '
            f'(names of {list(model.modalities.names)}), got '
            f'{type(tile).__name__}')
    model.modalities.check_names(list(tile), where)
    if not tile:
        raise ValueError(f'{where}: no modality given; expected some of '
                         f'{list(model.modalities.names)}')
    keys = pipeline[0].path_keys
    packed = run_pipeline(
        pipeline, {keys[m.name]: tile.get(m.name) for m in model.modalities})
    packed['data_samples'].set_metainfo(dict(tile_stem=tile_stem(tile)))
    return packed


def inference_model(
    model, inputs: Union[Mapping[str, ModalityInput],
                         Sequence[Mapping[str, ModalityInput]]]
) -> Union[SegDataSample, List[SegDataSample]]:
    """Predict tiles with a model from :func:`init_model`; the counterpart
    of ``mmseg.apis.inference_model``.

    Each tile is read, normalised and predicted exactly as ``tools/test.py``
    does it (the config's test pipeline, the model's ``test_cfg``, e.g.
    sliding windows). Modalities of the spec left out of a tile are absent
    (its presence marks them so, as ``model.absent`` would).

    Args:
        model: A segmentor from :func:`init_model` (with ``cfg``).
        inputs (dict | list[dict]): Per tile, modality name -> raster file
            or (H, W[, bands]) array, in the units of the files (e.g. 0-255
            optical, raw heights).

    Returns:
        SegDataSample | list[SegDataSample]: ``pred_sem_seg`` and
        ``seg_logits`` of each tile (one sample for one dict).

    Raises:
        ValueError: An unknown modality name, no modality given, or a tile
            the loader refuses (each message names the input).
    """
    single = isinstance(inputs, Mapping)
    tiles = [inputs] if single else list(inputs)
    pipeline = build_test_pipeline(model)
    batch = [
        prepare_tile(model, pipeline, tile, f'inputs[{i}]')
        for i, tile in enumerate(tiles)
    ]
    with torch.no_grad():
        results = model.test_step(pseudo_collate(batch))
    return results[0] if single else results
