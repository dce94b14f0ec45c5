"""Presence through sliding-window inference, for every model family:
batched windows carry each sample's (M,) presence (repeated with the
windows), so the logits do not depend on ``test_cfg.batch_windows`` and a
sample of a mixed-presence batch gets what it gets alone."""
import os.path as osp

import pytest
import torch
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmrsfusion.utils import load_config

ROOT = osp.join(osp.dirname(__file__), '..', '..')
FAMILIES = {
    'mobanet': ('configs/mobanet/demo_tinyvit_synthetic.py',
                {'model.backbone.frozen_checkpoint': None}),
    'mfnet': ('configs/mfnet/demo_tinysam_mmadapter_synthetic.py',
              {'model.backbone.frozen_checkpoint': None}),
    'sgma': ('configs/sgma/demo_r18_synthetic_rdn.py', {}),
}
SLIDE = dict(mode='slide', crop_size=(64, 64), stride=(48, 48))


def build(family):
    config, options = FAMILIES[family]
    cfg = load_config(osp.join(ROOT, config),
                      dict(options, **{'model.test_cfg': SLIDE}))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def mixed_batch(model, b=2, h=112, w=112):
    """Raw inputs and a presence where sample 0 lacks its last modality."""
    gen = torch.Generator().manual_seed(3)
    x = torch.rand((b, model.modalities.num_channels, h, w),
                   generator=gen) * 255
    presence = torch.ones(b, len(model.modalities), dtype=torch.bool)
    presence[0, -1] = False
    return x, presence


def slide(model, inputs, presence, k):
    model.test_cfg.batch_windows = k
    metas = [dict(img_shape=inputs.shape[2:], ori_shape=inputs.shape[2:])
             ] * inputs.shape[0]
    with torch.no_grad():
        inputs, presence = model.apply_presence(inputs, presence)
        return model.inference(inputs, metas, presence)


@pytest.mark.parametrize('family', list(FAMILIES))
def test_batch_windows_and_mixed_presence(family):
    model = build(family)
    x, presence = mixed_batch(model)
    inputs = model.data_preprocessor(dict(inputs=list(x)), False)['inputs']
    ref = slide(model, inputs, presence, 1)
    for k in (2, 4):
        assert (slide(model, inputs, presence, k) - ref).abs().max() <= 1e-5
    # each sample as it gets alone (the presence follows its windows)
    for i in range(x.shape[0]):
        alone = slide(model, inputs[i:i + 1], presence[i:i + 1], 4)
        assert (alone[0] - ref[i]).abs().max() <= 1e-5
    # the absent modality changes sample 0 only
    full = slide(model, inputs, torch.ones_like(presence), 4)
    assert (full[0] - ref[0]).abs().max() > 1e-4
    assert (full[1] - ref[1]).abs().max() <= 1e-5


@pytest.mark.parametrize('batch_windows', [1, 2, 4])
def test_sgma_test_step_with_presence_from_data_samples(batch_windows):
    """The issue's case: SGMA's demo config, slide windows 64 / stride 48,
    ``batch_windows`` 2 on a 112 x 112 batch of two samples with different
    presence, through ``test_step`` (data preprocessor included)."""
    model = build('sgma')
    model.test_cfg.batch_windows = batch_windows
    x, presence = mixed_batch(model)
    samples = []
    for p in presence:
        sample = SegDataSample(metainfo=dict(
            img_shape=(112, 112), ori_shape=(112, 112)))
        sample.gt_sem_seg = PixelData(
            data=torch.zeros(1, 112, 112, dtype=torch.long))
        sample.set_data(dict(presence=p))
        samples.append(sample)
    out = model.test_step(dict(inputs=list(x), data_samples=samples))
    inputs = model.data_preprocessor(dict(inputs=list(x)), False)['inputs']
    ref = slide(model, inputs, presence, 1)
    for i, sample in enumerate(out):
        assert (sample.seg_logits.data - ref[i]).abs().max() <= 1e-5
