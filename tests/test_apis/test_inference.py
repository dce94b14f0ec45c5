"""The Python API (``mmrsfusion.apis``): ``init_model`` loads every weight
that was trained or pretrained (frozen parts re-attached from their file),
and ``inference_model`` on files or arrays per modality predicts what the
test loop (``tools/test.py``'s ``test_step`` on the config's test dataset)
predicts for the same tile, for every model family; modalities left out
are absent. Fixtures: ``conftest.py``."""
import logging
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger

from mmseg.registry import DATASETS
from mmrsfusion.apis import inference_model, init_model
from mmrsfusion.io import read_raster

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_init_model_loads_every_weight(trained):
    family, config, options, path, original = trained
    model = init_model(config, path, cfg_options=options)
    own = model.state_dict()
    for key, value in original.state_dict().items():
        assert torch.equal(own[key], value), key
    if family == 'mobanet':  # the checkpoint left the frozen ViT out
        saved = torch.load(path, weights_only=False)['state_dict']
        assert not any(k.startswith('backbone.encoder.') for k in saved)
    assert model.dataset_meta['classes'][0] == 'impervious_surface'


def test_inference_model_equals_the_test_loop(trained, data_root):
    family, config, options, path, _ = trained
    model = init_model(config, path, cfg_options=options)
    dataset = DATASETS.build(model.cfg.test_dataloader.dataset)
    expected = model.test_step(pseudo_collate([dataset[0]]))[0]
    info = dataset.get_data_info(0)
    keys = dict(rgb='img_path', dsm='dsm_path', nir='nir_path')
    files = {m: info[keys[m]] for m in model.modalities.names}
    got = inference_model(model, files)
    assert torch.equal(got.seg_logits.data, expected.seg_logits.data)
    assert torch.equal(got.pred_sem_seg.data, expected.pred_sem_seg.data)
    # arrays in the files' units give the same
    arrays = {m: read_raster(f) for m, f in files.items()}
    got = inference_model(model, [arrays])[0]
    assert torch.equal(got.seg_logits.data, expected.seg_logits.data)
    # a modality left out is absent, as model.absent makes it
    left = model.modalities.names[-1]
    partial = inference_model(
        model, {m: f for m, f in files.items() if m != left})
    model.absent = [left]
    try:
        absent = model.test_step(pseudo_collate([dataset[0]]))[0]
    finally:
        model.absent = None
    assert torch.equal(partial.seg_logits.data, absent.seg_logits.data)
    assert not torch.equal(partial.seg_logits.data,
                           expected.seg_logits.data)


def test_bad_inputs_are_named(trained):
    _, config, options, path, _ = trained
    model = init_model(config, path, cfg_options=options)
    with pytest.raises(ValueError, match=r"inputs\[0\]: unknown modalities "
                       r"\['lidar'\]"):
        inference_model(model, {'lidar': np.zeros((8, 8))})
    with pytest.raises(ValueError, match=r'inputs\[0\]: no modality given'):
        inference_model(model, {})
    with pytest.raises(ValueError, match=r"modality 'rgb': expected an "
                       r'\(H, W\) or \(H, W, bands\) array'):
        inference_model(model, {'rgb': np.zeros(4)})


def test_init_model_without_checkpoint_keeps_the_init_report_quiet():
    """Without a log file, mmengine's ``init_weights`` logs one INFO record
    per parameter; ``init_model`` keeps warnings only while it runs and
    gives the logger its level back."""
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    logger.addHandler(handler)
    level = logger.level
    try:
        model = init_model(
            osp.join(ROOT, 'configs', 'mobanet', 'demo_tinyvit_synthetic.py'),
            cfg_options={'model.backbone.frozen_checkpoint': None})
        logger.info('after')
    finally:
        logger.removeHandler(handler)
    assert not any(r.levelno < logging.WARNING and
                   'calling `init_weights`' in r.getMessage()
                   for r in records)
    assert records[-1].getMessage() == 'after' and logger.level == level
    assert model.training is False
