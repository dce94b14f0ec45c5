"""MultiStreamViT on tiny ViTs (width 64, depth 4, 4 heads; patch 14 for
DINOv2, 16 for SAM), plus the full-size parameter counts on 'meta'."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import save_checkpoint
from mmpretrain.models.backbones import ViTSAM, VisionTransformer
from mmpretrain.models.utils import resize_pos_embed

from mmrsfusion.models.backbones import MultiStreamViT
from mmrsfusion.models.peft import BasePEFTWrapper

MODS = [dict(name='rgb', channels=3), dict(name='dsm', channels=1)]
TINY = dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=128)
TINY_SAM = dict(TINY, global_attn_indexes=[1, 3])
# Pretrained grid 4x4 for both (DINOv2 56 / 14, SAM 64 / 16).
ENC = dict(
    dinov2=dict(img_size=56),
    sam=dict(img_size=64, window_size=2, out_channels=32))
ARCH = dict(dinov2=TINY, sam=TINY_SAM)


@torch.no_grad()
def randomize(module, seed=0):
    """Give every weight a non-trivial value (LayerScale 1e-5 and zero
    pos-embeds would hide mistakes); 1-D weights (norms, layer scales)
    around 1."""
    gen = torch.Generator().manual_seed(seed)
    for name, param in module.named_parameters():
        noise = torch.randn(param.shape, generator=gen) * 0.2
        one = param.ndim == 1 and name.endswith(('weight', 'gamma'))
        param.copy_(noise + (1. if one else 0.))


def tiny(family='dinov2', modalities=MODS, seed=0, **kwargs):
    cfg = dict(
        modalities=modalities,
        family=family,
        arch=ARCH[family],
        out_indices=[0, 1, 2, 3],
        encoder_cfg=ENC[family])
    cfg.update(kwargs)
    model = MultiStreamViT(**cfg)
    model.init_weights()
    randomize(model.encoder, seed)
    model.init_aux_embeds()
    return model


def stacked(b=2, h=60, w=45, channels=4, seed=1):
    return torch.randn(
        b, channels, h, w, generator=torch.Generator().manual_seed(seed))


def n_params(module, trainable=True):
    return sum(p.numel() for p in module.parameters()
               if p.requires_grad == trainable)


@pytest.mark.parametrize('family', ['dinov2', 'sam'])
@pytest.mark.parametrize('hw', [(56, 56), (60, 45), (70, 84)])
def test_output_shapes(family, hw):
    model = tiny(family, stage_adapter=dict(type='CPIA'))
    p = model.patch_size
    assert p == (14 if family == 'dinov2' else 16)
    outs = model(stacked(h=hw[0], w=hw[1]))
    grid = (math.ceil(hw[0] / p), math.ceil(hw[1] / p))
    assert len(outs) == model.num_stages == 4
    for out, channels in zip(outs, model.out_channels):
        assert out.shape == (2, 2, channels, *grid)
        assert out.is_contiguous()
    assert model.out_channels == [64] * 4


def test_sam_neck_taps():
    model = tiny('sam', tap_transform='neck')
    assert model.out_channels == [32] * 4
    assert [o.shape for o in model(stacked())] == [(2, 2, 32, 4, 3)] * 4


@pytest.mark.parametrize('family', ['dinov2', 'sam'])
def test_input_is_zero_padded_not_resized(family):
    model = tiny(family, stage_adapter=dict(type='CPIA')).eval()
    x = stacked(h=60, w=45)
    p = model.patch_size
    padded = F.pad(x, (0, -45 % p, 0, -60 % p))
    assert padded.shape[-1] % p == 0 and padded.shape[-2] % p == 0
    with torch.no_grad():
        for a, b in zip(model(x), model(padded)):
            assert torch.equal(a, b)


def official_dinov2_pos_encoding(pos_embed, h, w):
    """``DinoVisionTransformer.interpolate_pos_encoding`` of the official
    DINOv2 code (github facebookresearch/dinov2, hub defaults
    ``interpolate_offset=0.1``, ``interpolate_antialias=False``) for a
    padded input of h x w patches, written out step by step."""
    n = pos_embed.shape[1] - 1
    m = int(math.sqrt(n))
    assert n == m * m
    if h * w == n and h == w:  # the official `npatch == N and w == h`
        return pos_embed
    patch = pos_embed[:, 1:].float().reshape(1, m, m, -1).permute(0, 3, 1, 2)
    patch = F.interpolate(
        patch,
        scale_factor=(float(h + 0.1) / m, float(w + 0.1) / m),
        mode='bicubic',
        antialias=False)
    assert patch.shape[-2:] == (h, w)
    patch = patch.permute(0, 2, 3, 1).reshape(1, h * w, -1)
    return torch.cat([pos_embed[:, :1], patch], dim=1).to(pos_embed.dtype)


def embedded_rgb_tokens(model, x):
    """The optical stream after ``embed`` and the same stream's patch
    embedding alone (so the added positions are their difference)."""
    p = model.patch_size
    with torch.no_grad():
        streams, hw = model.embed(x)
        padded = F.pad(x, (0, -x.shape[-1] % p, 0, -x.shape[-2] % p))
        rgb = model.encoder.patch_embed.projection(padded[:, :3])
    assert hw == tuple(rgb.shape[-2:])
    return streams[0], rgb.flatten(2).transpose(1, 2), hw


@pytest.mark.parametrize('hw', [(84, 70), (70, 70), (112, 42), (56, 56)])
def test_dinov2_pos_embed_follows_the_official_rule(hw):
    """DINOv2 (default ``pos_embed_resize='dinov2'``): the positions added
    to the tokens are the official code's, computed independently here, on
    grids (6x5, 5x5, 8x3 from the 4x4 grid) where ``size=(h, w)`` samples
    elsewhere; the pretrained grid itself (4x4) is used unresized."""
    model = tiny('dinov2')
    tokens, rgb, (h, w) = embedded_rgb_tokens(model, stacked(b=1, h=hw[0],
                                                             w=hw[1]))
    pos = model.encoder.pos_embed
    expected = official_dinov2_pos_encoding(pos, h, w)
    torch.testing.assert_close(tokens[:, 1:] - rgb, expected[:, 1:],
                               rtol=1e-5, atol=1e-5)
    # CLS token + its own position, never resized
    torch.testing.assert_close(tokens[:, 0], (model.encoder.cls_token +
                                              pos[:, :1])[:, 0])
    size_rule = resize_pos_embed(pos, (4, 4), (h, w), 'bicubic', 1)
    if (h, w) == (4, 4):
        assert torch.equal(expected, pos)
    else:  # the test can tell the two rules apart
        assert (expected - size_rule).abs().max() > 0.05
    assert model.pos_embed_resize == 'dinov2'


def cubic_resample(values, points, a=-0.75):
    """1-D cubic convolution (Keys, ``a = -0.75`` as PyTorch's bicubic;
    border samples repeated) of ``values`` at the real positions
    ``points``, written out independently of ``F.interpolate``."""
    base = points.floor()
    t = points - base
    weights = [
        ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
        ((a + 2) * t - (a + 3)) * t * t + 1,
        ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1,
    ]
    weights.append(1 - sum(weights))
    out = torch.zeros_like(points)
    for k, weight in zip(range(-1, 3), weights):
        index = (base.long() + k).clamp(0, len(values) - 1)
        out += weight * values[index]
    return out


def test_dinov2_rule_samples_at_offset_positions():
    """The real 37x37 DINOv2 grid resized to 19x23 (a 266 x 322 input): a
    pos-embed varying along one axis per channel is sampled at output
    pixel ``i`` -> ``(i + 0.5) * 37 / (h + 0.1) - 0.5`` (the official
    rule's points), not at ``size=``'s ``(i + 0.5) * 37 / h - 0.5``."""
    model = tiny('dinov2', encoder_cfg=dict(img_size=518))
    gen = torch.Generator().manual_seed(0)
    f, g = torch.randn(2, 37, generator=gen, dtype=torch.float64)
    pos = torch.zeros(1, 1 + 37 * 37, 64)
    pos[0, 1:, 0] = f[:, None].expand(37, 37).flatten().float()
    pos[0, 1:, 1] = g[None, :].expand(37, 37).flatten().float()
    h, w = 19, 23
    out = model.resized_pos_embed(pos, (h, w))[0, 1:].reshape(h, w, 64)
    i, j = torch.arange(h).double(), torch.arange(w).double()
    official_r = cubic_resample(f, (i + 0.5) * 37 / (h + 0.1) - 0.5)
    official_c = cubic_resample(g, (j + 0.5) * 37 / (w + 0.1) - 0.5)
    for col in range(w):
        torch.testing.assert_close(out[:, col, 0].double(), official_r,
                                   rtol=0, atol=1e-5)
    for row in range(h):
        torch.testing.assert_close(out[row, :, 1].double(), official_c,
                                   rtol=0, atol=1e-5)
    size_r = cubic_resample(f, (i + 0.5) * 37 / h - 0.5)
    assert (official_r - size_r).abs().max() > 0.05


@pytest.mark.parametrize('family,kwargs', [('sam', {}),
                                           ('dinov2',
                                            dict(pos_embed_resize='size'))])
def test_pos_embed_size_rule(family, kwargs):
    """SAM (default) and DINOv2 with ``pos_embed_resize='size'``:
    mmpretrain's ``resize_pos_embed``, bicubic to ``size=(h, w)``."""
    model = tiny(family, **kwargs)
    assert model.pos_embed_resize == 'size'
    x = stacked(b=1, h=84, w=70)  # grid 6x5 (DINOv2) / 6x5 (SAM, padded)
    p = model.patch_size
    with torch.no_grad():
        streams, hw = model.embed(x)
        padded = F.pad(x, (0, -70 % p, 0, -84 % p))
        rgb = model.encoder.patch_embed.projection(padded[:, :3])
        pos = model.encoder.pos_embed
        if family == 'dinov2':
            grid = pos[:, 1:].reshape(1, 4, 4, 64).permute(0, 3, 1, 2)
        else:
            grid = pos.permute(0, 3, 1, 2)
        pos_hw = F.interpolate(
            grid, size=hw, mode='bicubic', align_corners=False)
        expected = (rgb + pos_hw).flatten(2).transpose(1, 2)
        tokens = model.patch_tokens(streams)[0]  # rgb stream
        torch.testing.assert_close(tokens, expected, rtol=1e-5, atol=1e-5)


def test_rgb_stream_matches_mmpretrain_vit():
    """Without adapters the optical stream is exactly mmpretrain's own
    VisionTransformer forward (raw taps; the final norm after the last)."""
    # mmpretrain resizes the pos-embed to size=(h, w)
    model = tiny('dinov2', pos_embed_resize='size').eval()
    ref = VisionTransformer(
        arch=TINY,
        img_size=56,
        patch_size=14,
        layer_scale_init_value=1e-5,
        out_type='featmap',
        out_indices=[0, 1, 2, 3])
    ref.load_state_dict(model.encoder.state_dict())
    ref.eval()
    raw = tiny('dinov2', tap_transform='none',
               pos_embed_resize='size').eval()
    raw.load_state_dict(model.state_dict())
    x = stacked(h=60, w=45)
    with torch.no_grad():
        expected = ref(x[:, :3])
        normed, unnormed = model(x), raw(x)
    for i in range(3):
        torch.testing.assert_close(unnormed[i][0], expected[i])
    torch.testing.assert_close(normed[3][0], expected[3])
    # the norm at taps is the frozen final norm, applied to every tap only
    torch.testing.assert_close(
        normed[1],
        model.encoder.ln1(unnormed[1].permute(0, 1, 3, 4, 2)).permute(
            0, 1, 4, 2, 3))


def test_rgb_stream_matches_mmpretrain_vit_sam():
    model = tiny('sam', tap_transform='neck').eval()
    ref = ViTSAM(
        arch=TINY_SAM,
        img_size=64,
        patch_size=16,
        window_size=2,
        out_channels=32,
        out_indices=[1, 3])
    ref.load_state_dict(model.encoder.state_dict())
    ref.eval()
    x = stacked(h=60, w=45)
    with torch.no_grad():
        expected, outs = ref(x[:, :3]), model(x)
    torch.testing.assert_close(outs[1][0], expected[0])
    torch.testing.assert_close(outs[3][0], expected[1])


def test_sam_window_and_global_attention_with_rel_pos():
    model = tiny('sam')
    layers = model.encoder.layers
    assert [layer.window_size for layer in layers] == [2, 0, 2, 0]
    # rel-pos tables: 2 * window - 1 (windowed), 2 * grid - 1 (global)
    assert layers[0].attn.rel_pos_h.shape == (3, 16)
    assert layers[1].attn.rel_pos_h.shape == (7, 16)
    assert not hasattr(model.encoder, 'ln1')  # SAM: no final norm


@pytest.mark.parametrize('family', ['dinov2', 'sam'])
def test_frozen_parameters_and_eval_mode(family):
    model = tiny(family, stage_adapter=dict(type='CPIA'))
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {f'encoder.{n}' for n, _ in
                      model.encoder.named_parameters()}
    assert all(n.startswith(('aux_embeds.', 'stage_adapters.'))
               for n, p in model.named_parameters() if p.requires_grad)
    # the frozen modules, not the CPIA wrappers around the stages' blocks
    frozen_modules = [m for m in model.encoder.modules()
                      if not isinstance(m, BasePEFTWrapper)]
    assert model.train() is model
    assert not any(m.training for m in frozen_modules)
    assert model.aux_embeds.training and model.stage_adapters[0].training
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train(True)
    assert not any(m.training for m in frozen_modules)


def test_frozen_dropout_inactive_in_train_mode():
    model = tiny(
        encoder_cfg=dict(ENC['dinov2'], drop_rate=0.5, drop_path_rate=0.5),
        stage_adapter=dict(type='CPIA')).train()
    x = stacked()
    for a, b in zip(model(x), model(x)):
        assert torch.equal(a, b)


@pytest.mark.parametrize('family', ['dinov2', 'sam'])
def test_training_step_keeps_frozen_weights_bit_identical(family):
    model = tiny(family, stage_adapter=dict(type='CPIA')).train()
    frozen = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    trainable = {
        n: p.detach().clone()
        for n, p in model.named_parameters() if p.requires_grad
    }
    # every parameter handed over, as an mmengine optimizer wrapper does
    optim = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.05)
    loss = sum(out.square().mean() for out in model(stacked()))
    loss.backward()
    cpia = model.stage_adapters[0]
    for name, param in cpia.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert model.aux_embeds['dsm'].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.encoder.parameters())
    optim.step()
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, frozen[key]), key
    changed = [
        n for n, p in model.named_parameters()
        if p.requires_grad and not torch.equal(p, trainable[n])
    ]
    assert set(changed) == set(trainable)


@pytest.mark.parametrize('family', ['dinov2', 'sam'])
def test_batched_streams_equal_stream_by_stream(family):
    batched = tiny(family).eval()
    randomize(batched.aux_embeds, seed=3)
    one_by_one = tiny(family, batch_streams=False).eval()
    one_by_one.load_state_dict(batched.state_dict())
    x = stacked(h=60, w=45)
    with torch.no_grad():
        for a, b in zip(batched(x), one_by_one(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # CPIA runs in a wrapper that sees all streams as one batch
    with pytest.raises(ValueError, match='batch_streams=True'):
        tiny(family, stage_adapter=dict(type='CPIA'), batch_streams=False)


def test_three_modalities():
    mods = MODS + [dict(name='sar', channels=2, kind='band')]
    model = tiny(
        modalities=mods, aux_embed='native', stage_adapter=dict(type='CPIA'))
    assert model.num_modalities == 3
    assert len(model.stage_adapters[0].down) == 3
    assert model.aux_embeds['sar'].in_channels == 2
    outs = model(stacked(channels=6))
    assert [o.shape for o in outs] == [(3, 2, 64, 5, 4)] * 4
    loss = sum(o.mean() for o in outs)
    loss.backward()
    assert model.aux_embeds['sar'].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="aux_embed='native'"):
        MultiStreamViT(mods, arch=TINY, aux_embed='replicate')


@pytest.mark.parametrize('name', ['modalities', 'values', 'd.s.m'])
def test_modality_names_that_cannot_key_an_embedding(name):
    # the trainable embeddings are keyed by modality name in a ModuleDict
    mods = [MODS[0], dict(MODS[1], name=name)]
    with pytest.raises(ValueError, match=f"modalities: '{name}' cannot name"):
        MultiStreamViT(mods, arch=TINY)
    assert len(MultiStreamViT(mods, arch=TINY, aux_embed='shared')
               .aux_embeds) == 0  # no embedding of its own: no key needed


def test_aux_embed_initialised_from_optical():
    replicate = tiny()
    native = tiny(aux_embed='native')
    native.encoder.load_state_dict(replicate.encoder.state_dict())
    native.init_aux_embeds()
    optical = replicate.encoder.patch_embed.projection
    assert torch.equal(replicate.aux_embeds['dsm'].weight, optical.weight)
    assert torch.equal(replicate.aux_embeds['dsm'].bias, optical.bias)
    assert native.aux_embeds['dsm'].weight.shape == (64, 1, 14, 14)
    torch.testing.assert_close(native.aux_embeds['dsm'].weight,
                               optical.weight.sum(1, keepdim=True))
    # 'native' has C * 2 * p * p fewer parameters (301,056 for ViT-B)
    assert n_params(replicate) - n_params(native) == 64 * 2 * 14 * 14
    # ... and computes the same: a DSM replicated to 3 channels through the
    # optical conv == the DSM through the summed kernel
    x = stacked()
    with torch.no_grad():
        a, _ = replicate.embed(x)
        b, _ = native.embed(x)
        rgb_of_dsm, _ = replicate.embed(
            torch.cat([x[:, 3:].expand(-1, 3, -1, -1), x[:, 3:]], 1))
    torch.testing.assert_close(a[1], b[1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(a[1], rgb_of_dsm[0])


def test_native_embed_of_three_channel_aux_is_a_copy():
    mods = [dict(name='rgb', channels=3), dict(name='irrg', channels=3)]
    model = tiny(modalities=mods, aux_embed='native')
    assert torch.equal(model.aux_embeds['irrg'].weight,
                       model.encoder.patch_embed.projection.weight)


class SpyStageAdapter(torch.nn.Module):
    """Records the shapes it sees; adds 1."""
    seen = []

    def __init__(self, embed_dims, num_modalities):
        super().__init__()

    def forward(self, x):
        self.seen.append(tuple(x.shape))
        return x + 1.


def test_stage_adapters_see_patch_tokens_only():
    for family, n_tokens in (('dinov2', 20), ('sam', 12)):
        SpyStageAdapter.seen.clear()
        plain = tiny(family).eval()
        model = tiny(family, stage_adapter=dict(type=SpyStageAdapter))
        model.eval()
        with torch.no_grad():
            outs, expected = model(stacked()), plain(stacked())
        assert SpyStageAdapter.seen == [(2, 2, n_tokens, 64)] * 4
        assert not torch.allclose(outs[0], expected[0])


def test_full_size_trainable_counts_reference_form():
    """The reference form (replicate aux embed + additive CPIA) on the
    full-size DINOv2 ViT-B / ViT-L, built on 'meta' (no memory, no init)."""
    expected = dict(base=(452_352, 2_082_048), large=(603_136, 3_693_568))
    for arch, (aux, cpia) in expected.items():
        with torch.device('meta'):
            model = MultiStreamViT(
                MODS, arch=arch, stage_adapter=dict(type='CPIA'))
        assert n_params(model.aux_embeds) == aux
        assert n_params(model.stage_adapters) == cpia
        assert n_params(model) == aux + cpia
        assert model.encoder.pos_embed.shape[1] == 1 + 37 * 37
        assert model.patch_size == 14
    with torch.device('meta'):
        native = MultiStreamViT(MODS, arch='base', aux_embed='native')
    assert n_params(native.aux_embeds) == 452_352 - 301_056


@pytest.mark.parametrize('family,arch,depth,taps,width', [
    ('dinov2', 'small', 12, [2, 5, 8, 11], 384),
    ('dinov2', 'base', 12, [2, 5, 8, 11], 768),
    ('dinov2', 'large', 24, [5, 11, 17, 23], 1024),
    ('dinov2', 'giant', 40, [9, 19, 29, 39], 1536),
    ('sam', 'base', 12, [2, 5, 8, 11], 768),
    ('sam', 'large', 24, [5, 11, 17, 23], 1024),
    ('sam', 'huge', 32, [7, 15, 23, 31], 1280),
])
def test_full_size_archs_and_default_taps(family, arch, depth, taps, width):
    with torch.device('meta'):
        model = MultiStreamViT(MODS, family=family, arch=arch)
    assert model.out_indices == taps
    assert model.encoder.num_layers == depth
    assert model.embed_dims == width
    if family == 'sam':
        assert model.encoder.pos_embed.shape == (1, 64, 64, width)
        assert model.patch_size == 16
    if arch == 'giant':  # SwiGLU as in dinov2_vitg14: w12 8192, w3 4096
        ffn = model.encoder.layers[0].ffn
        assert ffn.w12.weight.shape == (8192, 1536)
        assert ffn.w3.weight.shape == (1536, 4096)


def save_encoder(model, path, drop=(), extra=None):
    state = {
        k: v
        for k, v in model.encoder.state_dict().items() if k not in drop
    }
    state.update(extra or {})
    save_checkpoint(dict(state_dict=state, meta=dict(note='test')), str(path))
    return str(path)


def test_load_frozen_resizes_pos_embed_and_returns_frozen_keys(tmp_path):
    src = tiny(seed=5)
    path = save_encoder(src, tmp_path / 'enc.pth')
    dst = tiny(encoder_cfg=dict(img_size=84))  # a 6x6 pos-embed grid
    keys = dst.load_frozen(path)
    assert keys == dst.frozen_keys()
    assert set(keys) == {f'encoder.{k}' for k in dst.encoder.state_dict()}
    for key, value in src.encoder.state_dict().items():
        if key != 'pos_embed':
            assert torch.equal(dst.encoder.state_dict()[key], value), key
    torch.testing.assert_close(
        dst.encoder.pos_embed,
        resize_pos_embed(src.encoder.pos_embed, (4, 4), (6, 6), 'bicubic',
                         1))


@pytest.mark.parametrize('how', ['frozen_checkpoint', 'init_cfg'])
def test_init_weights_loads_frozen_then_inits_aux(tmp_path, how):
    src = tiny(seed=7)
    path = save_encoder(src, tmp_path / 'enc.pth')
    kwargs = dict(frozen_checkpoint=path) if how == 'frozen_checkpoint' \
        else dict(init_cfg=dict(type='Pretrained', checkpoint=path))
    model = MultiStreamViT(
        MODS, arch=TINY, encoder_cfg=ENC['dinov2'], **kwargs)
    assert model.frozen_checkpoint == path
    model.init_weights()
    for key, value in src.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value), key
    assert torch.equal(model.aux_embeds['dsm'].weight,
                       src.encoder.patch_embed.projection.weight)


def test_pretrained_init_cfg_options_are_refused():
    with pytest.raises(ValueError, match=r"takes only 'checkpoint'.*"
                       r"\['prefix'\]"):
        MultiStreamViT(MODS, arch=TINY, encoder_cfg=ENC['dinov2'],
                       init_cfg=dict(type='Pretrained', checkpoint='x.pth',
                                     prefix='backbone.'))
    with pytest.raises(ValueError, match='name different files'):
        MultiStreamViT(MODS, arch=TINY, encoder_cfg=ENC['dinov2'],
                       frozen_checkpoint='a.pth',
                       init_cfg=dict(type='Pretrained', checkpoint='b.pth'))


def test_load_frozen_fails_loudly_on_architecture_mismatch(tmp_path):
    wide = MultiStreamViT(
        MODS, arch=dict(TINY, embed_dims=96), encoder_cfg=ENC['dinov2'])
    path = save_encoder(wide, tmp_path / 'vit_wide.pth')
    with pytest.raises(ValueError) as err:
        tiny().load_frozen(path)
    message = str(err.value)
    assert 'vit_wide.pth' in message
    assert 'patch_embed.projection.weight: (96, 3, 14, 14) in the ' \
        'checkpoint, (64, 3, 14, 14) in the backbone' in message
    # a SAM encoder into a DINOv2 backbone
    sam_path = save_encoder(tiny('sam'), tmp_path / 'sam.pth')
    with pytest.raises(ValueError, match=r'sam\.pth.*pos_embed: '
                       r'\(1, 4, 4, 64\) in the checkpoint, \(1, 17, 64\)'):
        tiny().load_frozen(sam_path)


def test_load_frozen_reports_missing_and_unexpected(tmp_path, monkeypatch):
    src = tiny()
    warnings = []
    logger = MMLogger.get_current_instance()
    monkeypatch.setattr(logger, 'warning', warnings.append)
    path = save_encoder(
        src,
        tmp_path / 'partial.pth',
        drop=('ln1.weight', ),
        extra={'head.fc.weight': torch.zeros(3)})
    with pytest.raises(ValueError,
                       match=r'partial\.pth.*missing.*ln1\.weight'):
        tiny().load_frozen(path)
    tiny().load_frozen(path, strict=False)
    assert any('missing' in w and 'ln1.weight' in w for w in warnings)
    assert any('unexpected' in w and 'head.fc.weight' in w for w in warnings)
    with pytest.raises(ValueError, match='no checkpoint'):
        tiny().load_frozen()


def test_trainable_only_checkpoint_reattaches_frozen_backbone(tmp_path):
    path = save_encoder(tiny(seed=11), tmp_path / 'pretrained.pth')
    trained = MultiStreamViT(
        MODS,
        arch=TINY,
        encoder_cfg=ENC['dinov2'],
        stage_adapter=dict(type='CPIA'),
        frozen_checkpoint=path)
    trained.init_weights()
    optim = torch.optim.SGD(trained.parameters(), lr=0.1)
    sum(o.mean() for o in trained(stacked())).backward()
    optim.step()
    frozen = set(trained.frozen_keys())
    light = {k: v for k, v in trained.state_dict().items() if k not in frozen}
    assert light and not any(k.startswith('encoder.') for k in light)

    fresh = MultiStreamViT(
        MODS,
        arch=TINY,
        encoder_cfg=ENC['dinov2'],
        stage_adapter=dict(type='CPIA'),
        frozen_checkpoint=path)  # no init_weights: as tools/test.py builds
    assert set(fresh.load_frozen()) == frozen
    missing, unexpected = fresh.load_state_dict(light, strict=False)
    assert set(missing) == frozen and not unexpected
    trained.eval(), fresh.eval()
    with torch.no_grad():
        for a, b in zip(trained(stacked()), fresh(stacked())):
            assert torch.equal(a, b)


@pytest.mark.parametrize('kwargs,match', [
    (dict(family='clip'), 'family'),
    (dict(arch='tiny'), 'arch for dinov2'),
    (dict(family='sam', arch='giant'), 'arch for sam'),
    (dict(aux_embed='zeros'), 'aux_embed'),
    (dict(out_indices=[3, 1]), 'out_indices'),
    (dict(out_indices=[0, 12]), r'out_indices.*\[0, 12\)'),
    (dict(out_indices=[-1, 2]), r'out_indices.*got \[-1, 2\]'),
    (dict(tap_transform='neck'), 'tap_transform'),
    (dict(pos_embed_resize='bilinear'), 'pos_embed_resize'),
    (dict(modalities=[dict(name='dsm', channels=1)] + MODS[:1]),
     'modalities'),
])
def test_invalid_config(kwargs, match):
    cfg = dict(modalities=MODS, arch='base')
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=match), torch.device('meta'):
        MultiStreamViT(**cfg)


def test_registered_in_mmseg():
    from mmseg.registry import MODELS
    with torch.device('meta'):
        model = MODELS.build(
            dict(type='MultiStreamViT', modalities=MODS, arch='small'))
    assert isinstance(model, MultiStreamViT)
    assert model.embed_dims == 384
