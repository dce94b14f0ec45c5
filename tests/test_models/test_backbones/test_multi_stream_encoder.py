"""MultiStreamEncoder: one shared backbone for M modalities, channel
adaptation, absent streams not encoded, frozen mode."""
import pytest
import torch

from mmengine.registry import init_default_scope

from mmrsfusion.models.backbones import MultiStreamEncoder

init_default_scope('mmseg')

MODS = [dict(name='rgb', channels=3), dict(name='dsm', channels=1),
        dict(name='nir', channels=1)]
R18 = dict(type='ResNetV1c', depth=18, base_channels=8, stem_channels=8)


def build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(backbone=R18, modalities=MODS)
    cfg.update(kwargs)
    return MultiStreamEncoder(**cfg).eval()


def stacked(b=2, h=64, w=48, c=5, seed=1):
    return torch.randn(b, c, h, w,
                       generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_each_stream_is_the_shared_backbone_on_its_modality():
    enc = build()
    x = stacked()
    outs = enc(x)
    assert [tuple(o.shape) for o in outs] == [(3, 2, 8, 16, 12),
                                              (3, 2, 16, 8, 6),
                                              (3, 2, 32, 4, 3),
                                              (3, 2, 64, 2, 2)]
    images = [x[:, :3], x[:, 3:4].repeat(1, 3, 1, 1),
              x[:, 4:5].repeat(1, 3, 1, 1)]
    for m, img in enumerate(images):
        for o, ref in zip(outs, enc.encoder(img)):
            torch.testing.assert_close(o[m], ref, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_absent_streams_are_not_encoded():
    enc = build()
    x = stacked(b=3)
    seen = []
    enc.encoder.register_forward_hook(
        lambda mod, args, out: seen.append(args[0].shape[0]))
    presence = torch.tensor([[True, False, True], [True, True, True],
                             [False, False, True]])
    outs = enc(x, presence)
    full = enc(x)
    assert seen == [6, 9]  # only the 6 present images, then all 9
    for o, f in zip(outs, full):
        keep = presence.t()
        assert (o[~keep] == 0).all()
        torch.testing.assert_close(o[keep], f[keep], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r'expected \(3, 3\)'):
        enc(x, presence[:, :2])


def test_channel_adapters():
    mods = MODS + [dict(name='sar', channels=2)]
    with pytest.raises(ValueError, match="'sar' has 2 channels"):
        build(modalities=mods)
    enc = build(modalities=mods, channel_adapter='conv')
    assert set(enc.adapters) == {'dsm', 'nir', 'sar'}
    # initialised to average the bands: a constant input stays constant
    x = torch.full((1, 7, 32, 32), 0.7)
    streams = enc.streams(x)
    torch.testing.assert_close(streams, torch.full_like(streams, 0.7))
    assert sum(p.numel() for p in enc.adapters.parameters()) == \
        (1 * 3 + 3) * 2 + (2 * 3 + 3)


def test_frozen_backbone():
    enc = build(frozen=True).train()
    assert not any(p.requires_grad for p in enc.encoder.parameters())
    assert not any(m.training for m in enc.encoder.modules())
    trainable = build().train()
    assert all(p.requires_grad for p in trainable.parameters())


def test_pvt_v2_b2_through_mmseg_timm_wrapper():
    """The paper's encoder: timm's pvt_v2_b2 via mmseg's TIMMBackbone
    (24.85M parameters, Table IX), 4 stages of 64/128/320/512 channels."""
    enc = MultiStreamEncoder(
        backbone=dict(type='TIMMBackbone', model_name='pvt_v2_b2',
                      features_only=True, pretrained=False,
                      out_indices=(0, 1, 2, 3)),
        modalities=MODS).eval()
    assert sum(p.numel() for p in enc.parameters()) == 24_849_856
    with torch.no_grad():
        outs = enc(stacked(b=1, h=64, w=64),
                   torch.tensor([[True, False, True]]))
    assert [tuple(o.shape) for o in outs] == [(3, 1, 64, 16, 16),
                                              (3, 1, 128, 8, 8),
                                              (3, 1, 320, 4, 4),
                                              (3, 1, 512, 2, 2)]
    assert all((o[1] == 0).all() for o in outs)


@torch.no_grad()
def test_mmpretrain_backbone():
    """An mmpretrain backbone through the registry's scope prefix."""
    enc = build(backbone=dict(type='mmpretrain.ResNet', depth=18,
                              base_channels=8, out_indices=(0, 1, 2, 3)))
    outs = enc(stacked(b=1, h=64, w=64))
    assert type(enc.encoder).__module__.startswith('mmpretrain.')
    assert [tuple(o.shape) for o in outs] == [(3, 1, 8, 16, 16),
                                              (3, 1, 16, 8, 8),
                                              (3, 1, 32, 4, 4),
                                              (3, 1, 64, 2, 2)]
