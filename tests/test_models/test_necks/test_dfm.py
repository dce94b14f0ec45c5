"""DFMNeck (MFNet's deep fusion module): exact parameter count, the
pyramid and SE-fusion equations, one norm type for all modalities."""
import pytest
import torch
import torch.nn.functional as F

import mmrsfusion  # noqa: F401
from mmrsfusion.models.necks import DFMNeck


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('norm', [dict(type='mmpretrain.LN2d', eps=1e-6),
                                  dict(type='BN')])
def test_parameter_count(norm):
    neck = DFMNeck(in_channels=256, num_modalities=2, norm_cfg=norm)
    assert n_params(neck) == 1_643_136
    norms = [type(p[0][1]).__name__ for p in neck.pyramids]
    assert len(set(norms)) == 1  # one norm for both modalities


def test_equations():
    torch.manual_seed(0)
    c = 32
    neck = DFMNeck(in_channels=c, num_modalities=2, se_ratio=4).eval()
    with torch.no_grad():
        for p in neck.parameters():
            p.normal_(0, 0.3)
    x = torch.randn(2, 3, c, 6, 4)
    outs = neck((torch.randn(1), x))  # the last input is used
    assert [o.shape for o in outs] == [(3, c, 24, 16), (3, c, 12, 8),
                                       (3, c, 6, 4), (3, c, 3, 2)]

    def se(layer, t):
        w = F.relu(layer.conv1.conv(t.mean((2, 3), keepdim=True)))
        return t * torch.sigmoid(layer.conv2.conv(w))

    def ln2d(norm, t):
        t = t.permute(0, 2, 3, 1)
        t = F.layer_norm(t, (c, ), norm.weight, norm.bias, 1e-6)
        return t.permute(0, 3, 1, 2)

    levels = [[], [], [], []]
    for x_m, pyr in zip(x, neck.pyramids):
        up1, norm, _, up2 = pyr[0]
        t = F.conv_transpose2d(x_m, up1.weight, up1.bias, stride=2)
        t = F.gelu(ln2d(norm, t))
        levels[0].append(F.conv_transpose2d(t, up2.weight, up2.bias, 2))
        levels[1].append(
            F.conv_transpose2d(x_m, pyr[1].weight, pyr[1].bias, stride=2))
        levels[2].append(x_m)
        levels[3].append(F.max_pool2d(x_m, 2))
    for out, maps, fusion in zip(outs, levels, neck.fusions):
        expected = se(fusion[0], maps[0]) + se(fusion[1], maps[1])
        torch.testing.assert_close(out, expected)


def test_bad_input_names_the_expected_shape():
    with pytest.raises(ValueError, match=r'\(M=2, B, C=256, h, w\)'):
        DFMNeck(num_modalities=2)((torch.randn(1, 2, 256, 4, 4), ))
    with pytest.raises(ValueError, match='DFMNeck: give modalities'):
        DFMNeck()
    with pytest.raises(ValueError, match=r'DFMNeck\.num_modalities=3 but '
                       r'the modality spec has 2'):
        DFMNeck(modalities=[dict(name='a', channels=3),
                            dict(name='b', channels=1)], num_modalities=3)
