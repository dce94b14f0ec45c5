"""DGFM and DGFMNeck: the fusion formula, the init, parameter counts."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmseg.registry import MODELS

import mmrsfusion  # noqa: F401
from mmrsfusion.models.necks import DGFM, DGFMNeck


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def randomise(module: nn.Module, seed: int = 0) -> None:
    """Give every parameter (zero-initialised ones included) random values,
    so that the gate is far from its 0.5 start."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


def test_dgfm_output_is_gated_mixture_of_its_own_gate():
    torch.manual_seed(0)
    m = DGFM(64)
    randomise(m)
    x, y = torch.randn(2, 64, 5, 7), torch.randn(2, 64, 5, 7)

    # the gate computed step by step from the module's submodules
    r, d = m.reduce_x(x), m.reduce_y(y)
    assert r.shape == (2, 8, 5, 7)  # C' = C / 8
    h = m.gate[0](torch.cat([r, d, (r - d).abs()], dim=1))
    h = F.gelu(F.group_norm(h, 1, m.gate[1].weight, m.gate[1].bias))
    g = torch.sigmoid(m.gate[3](h))
    assert g.shape == x.shape
    assert 0.05 < g.std()  # really not a constant gate
    torch.testing.assert_close(m.compute_gate(x, y), g)

    mixed = g * x + (1 - g) * y
    expected = F.layer_norm(
        mixed.permute(0, 2, 3, 1), (64, ), m.norm.weight, m.norm.bias,
        m.norm.eps).permute(0, 3, 1, 2)
    torch.testing.assert_close(m(x, y), expected)


def test_dgfm_gate_is_half_at_init_and_after_init_weights():
    torch.manual_seed(0)
    # an init_cfg that would overwrite every conv must not touch the gate
    m = DGFM(32, init_cfg=dict(type='Normal', layer='Conv2d', std=1.))
    x, y = torch.randn(3, 32, 4, 4), torch.randn(3, 32, 4, 4)
    assert torch.equal(m.compute_gate(x, y), torch.full_like(x, 0.5))
    m.init_weights()
    assert torch.equal(m.compute_gate(x, y), torch.full_like(x, 0.5))
    assert m.reduce_x.weight.std() > 0.5  # the init_cfg did run
    # hence DGFM starts as LayerNorm((X + Y) / 2)
    torch.testing.assert_close(m(x, y), m.norm((x + y) / 2))


def test_dgfm_gate_learns():
    torch.manual_seed(0)
    m = DGFM(32)
    x, y = torch.randn(2, 32, 4, 4), torch.randn(2, 32, 4, 4)
    (m(x, y) * torch.randn(2, 32, 4, 4)).sum().backward()
    assert m.gate[3].weight.grad.abs().sum() > 0
    assert m.gate[3].bias.grad.abs().sum() > 0


def test_dgfm_parameter_counts_vit_b():
    m = DGFM(768)
    assert m.hidden_channels == 96
    assert n_params(m.norm) == 1536
    assert n_params(m) - n_params(m.norm) == 249792
    # layout of the count: r, d, gate conv, GroupNorm, last conv (+ bias)
    assert [p.numel() for p in m.parameters()] == [
        73728, 73728, 27648, 96, 96, 73728, 768, 768, 768
    ]


def test_dgfm_parameter_counts_vit_l():
    m = DGFM(1024)
    assert n_params(m) - n_params(m.norm) == 1774592 // 4
    assert n_params(m.norm) == 8192 // 4


@pytest.mark.parametrize('fusion,per_stage', [('dgfm', 249792 + 1536 +
                                                196608), ('mean', 196608)])
def test_neck_parameter_counts_vit_b(fusion, per_stage):
    neck = MODELS.build(
        dict(type='DGFMNeck', in_channels=[768] * 4, fusion=fusion))
    assert n_params(neck) == 4 * per_stage
    for proj in neck.projections:
        assert proj.bias is None and n_params(proj) == 196608


def _stage_feats(m=2, b=2, channels=(16, 16, 24, 32), hw=(5, 6), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(m, b, c, *hw, generator=gen) for c in channels)


def test_neck_dgfm_forward_and_modalities():
    torch.manual_seed(0)
    neck = DGFMNeck(in_channels=[16, 16, 24, 32], out_channels=8)
    randomise(neck)
    feats = _stage_feats()
    fused = neck(feats)
    fused2, modal = neck(feats, return_modalities=True)
    assert len(fused) == len(modal) == 4
    for s, f in enumerate(feats):
        expected = neck.projections[s](neck.fusions[s](f[0], f[1]))
        assert fused[s].shape == (2, 8, 5, 6)
        torch.testing.assert_close(fused[s], expected)
        torch.testing.assert_close(fused2[s], expected)
        assert modal[s].shape == (2, 2, 8, 5, 6)
        for i in range(2):
            torch.testing.assert_close(modal[s][i],
                                       neck.projections[s](f[i]))


def test_neck_mean_fusion_any_number_of_modalities():
    torch.manual_seed(0)
    neck = DGFMNeck(in_channels=16, num_stages=3, out_channels=8,
                    fusion='mean')
    assert not hasattr(neck, 'fusions')
    feats = _stage_feats(m=3, channels=(16, 16, 16))
    fused, modal = neck(feats, return_modalities=True)
    for s, f in enumerate(feats):
        torch.testing.assert_close(
            fused[s], neck.projections[s]((f[0] + f[1] + f[2]) / 3))
        assert modal[s].shape == (3, 2, 8, 5, 6)


def test_neck_errors():
    with pytest.raises(ValueError, match='fusion'):
        DGFMNeck(in_channels=16, fusion='sum')
    neck = DGFMNeck(in_channels=16, num_stages=2)
    with pytest.raises(ValueError, match="exactly 2 modalities.*'mean'"):
        neck(_stage_feats(m=3, channels=(16, 16)))
    with pytest.raises(ValueError, match='expected 2 stages'):
        neck(_stage_feats(channels=(16, 16, 16)))
    with pytest.raises(ValueError, match=r'\(M, B, C, h, w\)'):
        neck([torch.randn(2, 16, 4, 4)] * 2)
