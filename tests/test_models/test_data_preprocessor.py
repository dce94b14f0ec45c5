"""MultiModalSegDataPreProcessor: per-channel normalisation from the spec,
padding, batch augments in training only."""
import pytest
import torch
import torch.nn as nn
from mmengine.structures import PixelData

import mmrsfusion  # noqa: F401
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmrsfusion.models import MultiModalSegDataPreProcessor

SPEC = [
    dict(name='rgb', channels=3, kind='optical', mean=[100., 110., 120.],
         std=[50., 40., 30.]),
    dict(name='dsm', channels=1, kind='elevation', mean=[0.5], std=[0.25]),
    dict(name='nir', channels=1, kind='band', mean=[1000.], std=[200.]),
]
MEAN = torch.tensor([100., 110., 120., 0.5, 1000.]).view(-1, 1, 1)
STD = torch.tensor([50., 40., 30., 0.25, 200.]).view(-1, 1, 1)


def _batch(sizes=((6, 7), (6, 7)), seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for h, w in sizes:
        inputs.append(torch.rand(5, h, w, generator=g) * 255)
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 6, (1, h, w), generator=g))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


@MODELS.register_module(force=True)
class _AddThousand(nn.Module):
    """Test batch augment: adds ``value`` and counts its calls."""

    def __init__(self, value=1000.):
        super().__init__()
        self.value = value
        self.calls = 0

    def forward(self, inputs, data_samples):
        self.calls += 1
        return inputs + self.value, data_samples


@MODELS.register_module(force=True)
class _TimesTwo(nn.Module):

    def forward(self, inputs, data_samples):
        return inputs * 2, data_samples


def test_registered_and_normalises_per_channel():
    pp = MODELS.build(
        dict(type='MultiModalSegDataPreProcessor', modalities=SPEC))
    assert isinstance(pp, MultiModalSegDataPreProcessor)
    data = _batch()
    raw = torch.stack(data['inputs'])
    out = pp(data, training=False)
    assert out['inputs'].shape == (2, 5, 6, 7)
    torch.testing.assert_close(out['inputs'], (raw - MEAN) / STD)
    # training: same normalisation (no padding needed here)
    out = pp(_batch(), training=True)
    torch.testing.assert_close(out['inputs'], (raw - MEAN) / STD)


def test_spec_errors_name_the_modality():
    bad = [dict(SPEC[0]), dict(SPEC[1], mean=[0., 1.])]
    with pytest.raises(ValueError, match=r"modalities\[1\]\.mean: 2 "
                       r"value\(s\) but the modality 'dsm' has 1"):
        MultiModalSegDataPreProcessor(modalities=bad)
    bad = [dict(SPEC[0], std=[1., 1.]), SPEC[1]]
    with pytest.raises(ValueError, match=r"modalities\[0\]\.std: 2 "
                       r"value\(s\) but the modality 'rgb' has 3"):
        MultiModalSegDataPreProcessor(modalities=bad)
    bad = [SPEC[0], dict(name='dsm', channels=1, kind='elevation')]
    with pytest.raises(ValueError, match=r"\(dsm\): missing 'mean'"):
        MultiModalSegDataPreProcessor(modalities=bad)
    bad = [SPEC[0], dict(SPEC[1], std=[0.])]
    with pytest.raises(ValueError, match=r'\(dsm\): must be positive'):
        MultiModalSegDataPreProcessor(modalities=bad)


def test_bgr_to_rgb_is_refused():
    for key in ('bgr_to_rgb', 'rgb_to_bgr'):
        with pytest.raises(ValueError, match='mix modalities'):
            MultiModalSegDataPreProcessor(modalities=SPEC, **{key: True})


def test_wrong_channel_count_is_reported():
    pp = MultiModalSegDataPreProcessor(modalities=SPEC)
    data = _batch()
    data['inputs'] = [x[:4] for x in data['inputs']]
    with pytest.raises(ValueError, match=r'expected \(5, H, W\).*rgb:3'):
        pp(data, training=False)


def test_padding_to_size_in_training():
    pp = MultiModalSegDataPreProcessor(
        modalities=SPEC, size=(8, 10), pad_val=0, seg_pad_val=255)
    data = _batch(((6, 7), (5, 9)))
    raw = [x.clone() for x in data['inputs']]
    out = pp(data, training=True)
    x, samples = out['inputs'], out['data_samples']
    assert x.shape == (2, 5, 8, 10)
    torch.testing.assert_close(x[0, :, :6, :7], (raw[0] - MEAN) / STD)
    torch.testing.assert_close(x[1, :, :5, :9], (raw[1] - MEAN) / STD)
    assert (x[0, :, 6:] == 0).all() and (x[0, :, :, 7:] == 0).all()
    seg = samples[0].gt_sem_seg.data
    assert seg.shape == (1, 8, 10)
    assert (seg[:, 6:] == 255).all() and (seg[:, :, 7:] == 255).all()
    assert (seg[:, :6, :7] < 6).all()


def test_padding_to_size_divisor_train_and_test_cfg():
    pp = MultiModalSegDataPreProcessor(
        modalities=SPEC, size_divisor=4, test_cfg=dict(size_divisor=8))
    out = pp(_batch(((6, 7), (6, 7))), training=True)
    assert out['inputs'].shape[-2:] == (8, 8)
    out = pp(_batch(((9, 7), (9, 7))), training=False)
    assert out['inputs'].shape[-2:] == (16, 8)
    meta = out['data_samples'][0].metainfo
    assert tuple(meta['img_padding_size']) == (0, 1, 0, 7)  # l, r, t, b
    assert tuple(meta['pad_shape']) == (16, 8)
    # without test_cfg, test batches are not padded
    pp = MultiModalSegDataPreProcessor(modalities=SPEC, size_divisor=4)
    out = pp(_batch(((9, 7), (9, 7))), training=False)
    assert out['inputs'].shape[-2:] == (9, 7)
    # neither size nor size_divisor: training pads to the batch's largest
    pp = MultiModalSegDataPreProcessor(modalities=SPEC)
    out = pp(_batch(((6, 7), (5, 9))), training=True)
    assert out['inputs'].shape[-2:] == (6, 9)
    assert (out['data_samples'][1].gt_sem_seg.data[:, 5:] == 255).all()
    with pytest.raises(ValueError, match='not both'):
        MultiModalSegDataPreProcessor(
            modalities=SPEC, size=(8, 8), size_divisor=4)


def test_batch_augments_only_in_training_after_normalisation():
    pp = MultiModalSegDataPreProcessor(
        modalities=SPEC,
        batch_augments=[dict(type='_AddThousand'),
                        dict(type='_TimesTwo')])
    assert isinstance(pp.batch_augments[0], _AddThousand)
    data = _batch()
    normalised = (torch.stack(data['inputs']) - MEAN) / STD
    out = pp(data, training=True)
    # applied in order, after normalisation: (x_norm + 1000) * 2
    torch.testing.assert_close(out['inputs'], (normalised + 1000) * 2)
    assert pp.batch_augments[0].calls == 1
    out = pp(_batch(), training=False)
    torch.testing.assert_close(out['inputs'], normalised)
    assert pp.batch_augments[0].calls == 1
    # augment modules move with the preprocessor (an nn.ModuleList)
    assert any(m is pp.batch_augments[0] for m in pp.modules())


def test_plain_callable_batch_augment():
    calls = []

    def aug(inputs, data_samples):
        calls.append(inputs.shape)
        return inputs * 0, data_samples

    pp = MultiModalSegDataPreProcessor(modalities=SPEC, batch_augments=[aug])
    out = pp(_batch(), training=True)
    assert calls == [(2, 5, 6, 7)] and (out['inputs'] == 0).all()


def test_batch_augments_inherit_the_spec():
    pp = MultiModalSegDataPreProcessor(
        modalities=SPEC,
        batch_augments=[
            dict(type='MCRM', ratio=0.5),  # takes the preprocessor's spec
            dict(type='_AddThousand'),  # takes no spec: left alone
        ])
    assert pp.batch_augments[0].targets == tuple(pp.modalities)
    with pytest.raises(ValueError, match=r'model\.data_preprocessor\.'
                       r'batch_augments\[0\]\.modalities declare different'):
        MultiModalSegDataPreProcessor(
            modalities=SPEC,
            batch_augments=[dict(type='MCRM', modalities=[
                dict(name='a', channels=4), dict(name='b', channels=1)])])
