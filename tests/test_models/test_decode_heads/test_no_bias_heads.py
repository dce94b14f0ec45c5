"""MoBaNet's heads: mmseg's UPerHead / FCNHead, and the bias-free-classifier
variants that reproduce the reference parameter counts exactly."""
import pytest
import torch

from mmseg.registry import MODELS

import mmrsfusion  # noqa: F401

NORM = dict(type='BN', requires_grad=True)
UPER = dict(
    in_channels=[256] * 4,
    in_index=[0, 1, 2, 3],
    channels=64,
    pool_scales=(1, 2, 3, 6),
    dropout_ratio=0.1,
    num_classes=6,
    norm_cfg=NORM,
    align_corners=False)
AUX = dict(
    in_channels=256,
    in_index=0,
    channels=256,
    num_convs=1,
    kernel_size=3,
    concat_input=False,
    dropout_ratio=0.1,
    num_classes=6,
    norm_cfg=NORM,
    align_corners=False)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('head_type,cfg,count', [
    ('UPerHead', UPER, 669568 + 6),
    ('UPerHeadNoBias', UPER, 669568),
    ('FCNHead', AUX, 591872 + 6),
    ('FCNHeadNoBias', AUX, 591872),
])
def test_parameter_counts(head_type, cfg, count):
    head = MODELS.build(dict(type=head_type, **cfg))
    assert n_params(head) == count
    assert (head.conv_seg.bias is None) == head_type.endswith('NoBias')


def test_reference_totals_for_heads():
    """UperNet + 2 aux heads as in the MoBaNet parameter table."""
    uper = MODELS.build(dict(type='UPerHeadNoBias', **UPER))
    aux = [MODELS.build(dict(type='FCNHeadNoBias', **AUX)) for _ in range(2)]
    assert n_params(uper) == 669568
    assert sum(map(n_params, aux)) == 1183744


@pytest.mark.parametrize('head_type,cfg', [('UPerHeadNoBias', UPER),
                                           ('FCNHeadNoBias', AUX)])
def test_no_bias_heads_init_and_forward(head_type, cfg):
    head = MODELS.build(dict(type=head_type, **cfg))
    head.init_weights()  # mmseg's Normal init of conv_seg, without a bias
    assert 0 < head.conv_seg.weight.std() < 0.05
    feats = [torch.randn(2, 256, 19, 19) for _ in range(4)]
    assert head(feats).shape == (2, 6, 19, 19)
