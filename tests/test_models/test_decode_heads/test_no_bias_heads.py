"""MoBaNet's heads: mmseg's UPerHead / FCNHead, and the bias-free-classifier
variants that reproduce the reference parameter counts exactly and, with
ReLU6 and activation-free lateral convs, the reference function."""
import pytest
import torch
import torch.nn.functional as F

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
# MoBaNet's reference: ReLU6 everywhere, lateral convs conv + BN only.
REFERENCE = dict(act_cfg=dict(type='ReLU6'), lateral_act_cfg=None)
# Small sizes for the function tests.
SMALL_UPER = dict(UPER, in_channels=[16] * 4, channels=8, num_classes=5)
SMALL_AUX = dict(AUX, in_channels=16, channels=8, num_classes=5)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def build(head_type, cfg, seed=0, **kwargs):
    """A head in eval mode with every weight and BN statistic random."""
    torch.manual_seed(seed)
    head = MODELS.build(dict(type=head_type, **cfg, **kwargs))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in head.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith('running_var'):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.5)
    return head.eval()


def feats(sizes=(12, 12, 12, 12), channels=16, scale=1., seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randn(2, channels, s, s, generator=gen) * scale for s in sizes
    ]


def conv_bn(x, module, act=None):
    """An mmcv ConvModule (conv -> BN -> act) written out."""
    conv, bn = module.conv, module.bn
    x = F.conv2d(x, conv.weight, conv.bias, padding=conv.padding)
    x = F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                     False, 0., bn.eps)
    return x if act is None else act(x)


def up(x, like):
    return F.interpolate(
        x, size=like.shape[2:], mode='bilinear', align_corners=False)


def reference_upernet(head, inputs):
    """MoBaNet's reference UperNet (eval): PPM and bottleneck, FPN convs and
    fpn bottleneck conv-BN-ReLU6; lateral convs conv-BN without activation;
    bias-free 1x1 classifier."""
    act = F.relu6
    c4 = inputs[-1]
    pooled = [
        up(conv_bn(F.adaptive_avg_pool2d(c4, scale), stage[1], act), c4)
        for scale, stage in zip(head.psp_modules.pool_scales,
                                head.psp_modules)
    ]
    p = [conv_bn(torch.cat([c4] + pooled, 1), head.bottleneck, act)]
    for x, lateral in zip(inputs[-2::-1], head.lateral_convs[::-1]):
        lat = conv_bn(x, lateral)  # no activation
        p.insert(0, lat + up(p[0], lat))
    outs = [conv_bn(x, m, act) for x, m in zip(p[:-1], head.fpn_convs)]
    outs = [outs[0]] + [up(x, outs[0]) for x in outs[1:] + [p[-1]]]
    out = conv_bn(torch.cat(outs, 1), head.fpn_bottleneck, act)
    return F.conv2d(out, head.conv_seg.weight)


@pytest.mark.parametrize('sizes', [(12, 12, 12, 12), (16, 8, 4, 2)])
def test_upernet_computes_the_reference_function(sizes):
    """Same outputs as the reference UperNet written out above, on the
    MoBaNet layout (4 maps of one size) and on a pyramid; mmseg's defaults
    (ReLU, activated laterals), same weights, are a measurable near miss."""
    x = feats(sizes)
    ours = build('UPerHeadNoBias', SMALL_UPER, **REFERENCE)
    default = build('UPerHeadNoBias', SMALL_UPER)
    default.load_state_dict(ours.state_dict())
    with torch.no_grad():
        expected = reference_upernet(ours, x)
        torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)
        assert (default(x) - expected).abs().max() > 0.1


def test_lateral_conv_passes_negative_values():
    """lateral_act_cfg=None: conv + BN only, negative values pass; the
    default ('act_cfg') activates the laterals, as mmseg does."""
    x = feats()[0]
    ours = build('UPerHeadNoBias', SMALL_UPER, **REFERENCE)
    default = build('UPerHeadNoBias', SMALL_UPER)
    with torch.no_grad():
        for i in range(3):
            assert ours.lateral_convs[i](x).min() < -1
            assert default.lateral_convs[i](x).min() >= 0
    assert not hasattr(ours.lateral_convs[0], 'activate')
    assert isinstance(default.lateral_convs[0].activate, torch.nn.ReLU)


def act_blocks(head):
    """Every conv-BN-activation block of a head (not the laterals)."""
    if hasattr(head, 'fpn_convs'):
        return [m[1] for m in head.psp_modules] + [
            head.bottleneck, *head.fpn_convs, head.fpn_bottleneck
        ]
    return list(head.convs)


def test_configured_activation_clamps_at_6():
    """act_cfg=ReLU6 in every conv-BN-activation block (PPM, bottleneck,
    FPN convs, fpn bottleneck; aux head): outputs in [0, 6], reaching 6 on
    large inputs; with mmseg's default ReLU they exceed 6."""
    gen = torch.Generator().manual_seed(2)
    relu6 = dict(act_cfg=dict(type='ReLU6'))
    for head_type, cfg, kwargs in (('UPerHeadNoBias', SMALL_UPER, REFERENCE),
                                   ('FCNHeadNoBias', SMALL_AUX, relu6)):
        pairs = zip(act_blocks(build(head_type, cfg, **kwargs)),
                    act_blocks(build(head_type, cfg)))
        for ours, relu in pairs:
            x = torch.randn(2, ours.conv.in_channels, 6, 6,
                            generator=gen) * 20
            with torch.no_grad():
                out = ours(x)
                assert out.min() == 0 and out.max() == 6, ours
                assert relu(x).max() > 6, relu


def test_aux_head_computes_the_reference_function():
    """Reference aux head (eval): conv 3x3 -> BN -> ReLU6 -> bias-free 1x1
    classifier (dropout inactive)."""
    x = feats(scale=5.)
    head = build('FCNHeadNoBias', SMALL_AUX, act_cfg=dict(type='ReLU6'))
    with torch.no_grad():
        expected = F.conv2d(conv_bn(x[0], head.convs[0], F.relu6),
                            head.conv_seg.weight)
        torch.testing.assert_close(head(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('head_type,cfg,count', [
    ('UPerHead', UPER, 669568 + 6),
    ('UPerHeadNoBias', UPER, 669568),
    ('FCNHead', AUX, 591872 + 6),
    ('FCNHeadNoBias', AUX, 591872),
])
def test_parameter_counts(head_type, cfg, count):
    """Exact counts; the activation choices add no parameters."""
    head = MODELS.build(dict(type=head_type, **cfg))
    assert n_params(head) == count
    assert (head.conv_seg.bias is None) == head_type.endswith('NoBias')
    if head_type == 'UPerHeadNoBias':
        assert n_params(MODELS.build(dict(type=head_type, **cfg,
                                          **REFERENCE))) == count


def test_reference_totals_for_heads():
    """UperNet + 2 aux heads as in the MoBaNet parameter table."""
    uper = MODELS.build(dict(type='UPerHeadNoBias', **UPER, **REFERENCE))
    aux = [
        MODELS.build(
            dict(type='FCNHeadNoBias', **AUX, act_cfg=dict(type='ReLU6')))
        for _ in range(2)
    ]
    assert n_params(uper) == 669568
    assert sum(map(n_params, aux)) == 1183744


@pytest.mark.parametrize('head_type,cfg', [('UPerHeadNoBias', UPER),
                                           ('FCNHeadNoBias', AUX)])
def test_no_bias_heads_init_and_forward(head_type, cfg):
    head = MODELS.build(dict(type=head_type, **cfg))
    head.init_weights()  # mmseg's Normal init of conv_seg, without a bias
    assert 0 < head.conv_seg.weight.std() < 0.05
    x = [torch.randn(2, 256, 19, 19) for _ in range(4)]
    assert head(x).shape == (2, 6, 19, 19)


def test_invalid_lateral_act_cfg():
    with pytest.raises(ValueError, match='lateral_act_cfg'):
        MODELS.build(dict(type='UPerHeadNoBias', **SMALL_UPER,
                          lateral_act_cfg='ReLU'))
