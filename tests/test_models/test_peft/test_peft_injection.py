"""PEFT wrappers injected into the frozen encoder in place (MFNet's
Adapter / MMAdapter / LoRA / MMLoRA; MoBaNet's CPIA around each stage's
first block): equations, zero-init identity, merged inference, state-dict
transparency, frozen-vs-trainable, gradients through a real optimizer step,
pattern errors."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper

import mmrsfusion  # noqa: F401
from mmrsfusion.models.backbones import MultiStreamViT
from mmrsfusion.models.peft import (AttnAdapter, FFNAdapter, LoRALinear,
                                    PerModality, PreBlockWrapper, inject_peft,
                                    merge_lora, peft_wrappers, unmerge_lora)

MODS = [dict(name='rgb', channels=3), dict(name='dsm', channels=1)]
TINY = dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=128)
FAMILY = dict(
    dinov2=dict(arch=TINY, encoder_cfg=dict(img_size=56)),
    sam=dict(
        arch=dict(TINY, global_attn_indexes=[1, 3]),
        encoder_cfg=dict(img_size=64, window_size=2, out_channels=32)))
MMADAPTER = [
    dict(type='AttnAdapter', targets='layers.*.attn'),
    dict(type='FFNAdapter', targets='layers.*.ffn', cross_modal=True),
]
ADAPTER = [
    dict(type='AttnAdapter', targets='layers.*.attn'),
    dict(type='FFNAdapter', targets='layers.*.ffn', scale=0.5),
]
MMLORA = [
    dict(type='LoRALinear', targets='layers.*.attn.qkv', rank=4,
         enable=(True, False, True)),
    dict(type='LoRALinear',
         targets=['layers.*.ffn.layers.0.0', 'layers.*.ffn.layers.1'],
         rank=4, alpha=4, cross_modal=True),
]
LORA = [dict(type='LoRALinear', targets='layers.*.attn.qkv', rank=4,
             enable=(True, False, True))]
PER_MODALITY_ATTN = [dict(type='PerModality', targets='layers.*.attn')]


def build(family='sam', peft=None, **kwargs):
    kwargs.setdefault('out_indices', [3])
    model = MultiStreamViT(
        MODS, family=family, aux_embed='shared', peft=peft,
        **FAMILY[family], **kwargs)
    model.init_weights()
    return model


def randomize_lora(model):
    with torch.no_grad():
        for m in peft_wrappers(model):
            if isinstance(m, LoRALinear):
                m.lora_b.normal_(0, 0.5)


def test_lora_linear_equation():
    torch.manual_seed(0)
    base = nn.Linear(8, 12).requires_grad_(False)
    lora = LoRALinear(base, num_modalities=2, rank=2, alpha=1,
                      enable=(True, False, True))
    assert lora.lora_a.shape == (2, 4, 8) and lora.lora_b.shape == (2, 8, 2)
    assert not lora.lora_b.any()  # B zero-initialised
    with torch.no_grad():
        lora.lora_b.normal_()
    x = torch.randn(2 * 3, 5, 8)  # modality-major
    out = lora(x)
    expected = []
    for m, x_m in enumerate(x.view(2, 3, 5, 8)):
        y = base(x_m)
        for g, rows in ((0, slice(0, 4)), (1, slice(8, 12))):
            a = lora.lora_a[m, g * 2:(g + 1) * 2]
            b = lora.lora_b[m, g * 4:(g + 1) * 4]
            y[..., rows] += 0.5 * x_m @ a.T @ b.T  # s = alpha / r
        expected.append(y)
    torch.testing.assert_close(out, torch.cat(expected))


@pytest.mark.parametrize('cross_modal', [False, True])
def test_lora_linear_under_cpu_autocast(cross_modal):
    """bf16 autocast (benchmark / test --amp): the forward runs, in the
    base's autocast dtype, close to fp32."""
    torch.manual_seed(0)
    base = nn.Linear(8, 12).requires_grad_(False)
    lora = LoRALinear(base, num_modalities=2, rank=2, alpha=1,
                      enable=(True, False, True), cross_modal=cross_modal)
    with torch.no_grad():
        lora.lora_b.normal_()
    x = torch.randn(2 * 3, 5, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = lora(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), lora(x), atol=0.1, rtol=0.05)


def test_cross_modal_lora_equation_and_lambda_gradients():
    torch.manual_seed(0)
    base = nn.Linear(8, 6).requires_grad_(False)
    lora = LoRALinear(base, num_modalities=2, rank=2, alpha=2,
                      cross_modal=True)
    with torch.no_grad():
        lora.lora_b.normal_()
        lora.mix.copy_(torch.tensor([0.3, 0.8]))
    x, y = torch.randn(2, 3, 4, 8)
    out_x, out_y = lora(torch.cat([x, y])).view(2, 3, 4, 6)
    u_x = x @ lora.lora_a[0].T @ lora.lora_b[0].T
    u_y = y @ lora.lora_a[1].T @ lora.lora_b[1].T
    torch.testing.assert_close(out_x, base(x) + 0.3 * u_x + 0.7 * u_y)
    torch.testing.assert_close(out_y, base(y) + 0.8 * u_y + 0.2 * u_x)
    (out_x.sum() + out_y.sum()).backward()
    assert lora.mix.grad.abs().min() > 0
    with pytest.raises(RuntimeError, match='cross-modal'):
        lora.merge()
    with pytest.raises(ValueError, match='2 modalities'):
        LoRALinear(base, num_modalities=3, cross_modal=True)
    with pytest.raises(TypeError, match='nn.Linear'):
        LoRALinear(nn.Conv2d(3, 3, 1), num_modalities=2)


def index_add_reference(lora, x, enable):
    """LoRALinear's function written plainly: the update ``s B_m A_m x_m``
    added to the enabled output groups by ``index_add``, mixed across the
    modalities with a flipped copy."""
    group = lora.group_features
    index = torch.cat([torch.arange(g * group, (g + 1) * group)
                       for g, on in enumerate(enable) if on])
    u = torch.stack([x_m @ d_m.T for x_m, d_m in zip(
        x.unflatten(0, (lora.num_modalities, -1)), lora.delta_weight())])
    if lora.cross_modal:
        lam = lora.mix.view(2, *[1] * (u.ndim - 1))
        u = lam * u + (1 - lam) * u.flip(0)
    return lora.base(x).index_add(-1, index, u.flatten(0, 1))


@pytest.mark.parametrize('enable,cross_modal', [((True, False, True), False),
                                                ((True, ), True),
                                                ((False, True, True), True)])
def test_lora_linear_forward_and_gradients_equal_the_plain_formula(
        enable, cross_modal):
    """The in-place update and the view-based mixing (which keep less for
    backward) compute the same outputs and gradients as index_add and a
    flipped copy, in float64."""
    torch.manual_seed(0)
    base = nn.Linear(8, 12).double().requires_grad_(False)
    lora = LoRALinear(base, num_modalities=2, rank=2, alpha=1,
                      enable=enable, cross_modal=cross_modal).double()
    with torch.no_grad():
        lora.lora_b.normal_()
        if cross_modal:
            lora.mix.copy_(torch.tensor([0.3, 0.8]))
    x = torch.randn(2 * 3, 5, 8, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2 * 3, 5, 12, dtype=torch.float64)
    params = [x, lora.lora_a, lora.lora_b] + ([lora.mix] if cross_modal
                                               else [])
    results = []
    for fn in (lora, lambda x: index_add_reference(lora, x, enable)):
        out = fn(x)
        grads = torch.autograd.grad((out * weights).sum(), params)
        results.append((out, *grads))
    for ours, reference in zip(*results):
        torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)


def saved_for_backward(fn, module):
    """Bytes of the distinct storages autograd keeps for the backward of
    ``fn()``, the module's parameters left out."""
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(saved.values()), out


@pytest.mark.parametrize('enable,cross_modal', [((True, False, True), False),
                                                ((True, ), True)])
def test_lora_linear_keeps_its_input_and_one_update_for_backward(
        enable, cross_modal):
    """Backward keeps the input x, the rank-r projection A x and (when
    mixed across modalities) the update once, as the authors' LoRA does:
    no flipped copy of the update, no copy for index_add."""
    base = nn.Linear(16, 96).requires_grad_(False)
    lora = LoRALinear(base, num_modalities=2, rank=2,
                      enable=enable, cross_modal=cross_modal)
    x = torch.randn(2 * 2, 50, 16, requires_grad=True)
    nbytes, out = saved_for_backward(lambda: lora(x), lora)
    ax = x.nbytes // 16 * lora.lora_a.shape[1]  # A x: (M, T, G_e * r)
    update = out.nbytes // 96 * lora.lora_b.shape[1]  # (M, T, G_e * out/G)
    small = 64  # 1 - lambda_m
    assert nbytes <= x.nbytes + ax + (update if cross_modal else 0) + small


def test_adapter_equations():
    torch.manual_seed(0)
    attn = nn.Linear(8, 8).requires_grad_(False)
    wrapped = AttnAdapter(attn, num_modalities=2, embed_dims=8)
    assert wrapped.adapters[0].fc1.out_features == 2  # C / 4
    x = torch.randn(2 * 3, 5, 8)
    a = attn(x).view(2, 3, 5, 8)
    expected = torch.stack([a_m + ad(a_m)
                            for a_m, ad in zip(a, wrapped.adapters)])
    torch.testing.assert_close(wrapped(x), expected.flatten(0, 1))

    calls = []
    attn.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    torch.testing.assert_close(wrapped(x), expected.flatten(0, 1),
                               rtol=0, atol=0)
    assert calls == [3, 3]  # the attention runs per modality

    ffn = FFNMock()
    n, ident = torch.randn(2, 2 * 3, 5, 8)
    mm = FFNAdapter(ffn, num_modalities=2, embed_dims=8, cross_modal=True)
    with torch.no_grad():
        mm.mix.copy_(torch.tensor([0.25, 0.6]))
    nx, ny = n.view(2, 3, 5, 8)
    ax, ay = mm.adapters[0](nx), mm.adapters[1](ny)
    mlp = ffn(n, identity=ident).view(2, 3, 5, 8)
    expected = torch.stack([mlp[0] + 0.25 * ax + 0.75 * ay,
                            mlp[1] + 0.6 * ay + 0.4 * ax])
    calls.clear()
    ffn.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    torch.testing.assert_close(mm(n, identity=ident), expected.flatten(0, 1))
    assert calls == [3, 3]  # the MLP too, each with its own identity

    single = FFNAdapter(ffn, num_modalities=1, embed_dims=8, scale=0.5)
    torch.testing.assert_close(
        single(nx, identity=ident[:3]),
        ffn(nx, identity=ident[:3]) + 0.5 * single.adapters[0](nx))


class FFNMock(nn.Module):
    """An FFN with the mmcv signature, ``identity + MLP(x)``."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x, identity=None):
        return (x if identity is None else identity) + F.gelu(self.fc(x))


@pytest.mark.parametrize('family', ['sam', 'dinov2'])
@pytest.mark.parametrize('peft', [MMLORA, LORA])
def test_lora_starts_equal_to_the_frozen_encoder(family, peft):
    plain = build(family)
    model = build(family, peft=peft)
    model.encoder.load_state_dict(plain.encoder.state_dict(), strict=False)
    x = torch.randn(2, 4, 64, 48)
    plain.eval(), model.eval()
    with torch.no_grad():
        expected, out = plain(x), model(x)
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
        randomize_lora(model)
        assert not torch.allclose(model(x)[0], expected[0])


@pytest.mark.parametrize('family', ['sam', 'dinov2'])
def test_merged_lora_equals_unmerged(family):
    model = build(family, peft=MMLORA)
    randomize_lora(model)
    model.eval()
    x = torch.randn(2, 4, 64, 48)
    with torch.no_grad():
        unmerged = model(x)
        assert merge_lora(model) == 4  # the qkv LoRAs; MLP ones are mixed
        merged = model(x)
    torch.testing.assert_close(merged, unmerged, rtol=1e-5, atol=1e-5)
    qkv = model.encoder.layers[0].attn.qkv
    assert qkv.merged and 'merged_weight' not in model.state_dict()
    # W + s B_m A_m per modality
    delta = torch.zeros_like(qkv.base.weight)
    delta[:64] = 0.25 * qkv.lora_b[1, :64] @ qkv.lora_a[1, :4]
    delta[128:] = 0.25 * qkv.lora_b[1, 64:] @ qkv.lora_a[1, 4:]
    torch.testing.assert_close(qkv.merged_weight[1], qkv.base.weight + delta)
    model.train()  # training unmerges
    assert not qkv.merged
    model.eval()
    merge_lora(model)
    unmerge_lora(model)
    with torch.no_grad():
        torch.testing.assert_close(model(x), unmerged, rtol=0, atol=0)


@pytest.mark.parametrize('peft,per_block', [(MMADAPTER, 4 * 2_128 + 2),
                                            (MMLORA, 2_048 + 2 * 1_538)])
def test_state_dict_is_transparent_and_trainable_means_requires_grad(
        peft, per_block, tmp_path):
    plain = build('sam')
    model = build('sam', peft=peft)
    frozen = set(model.frozen_keys())
    # the frozen encoder keeps its key names (pretrained files load as is)
    assert frozen == set(plain.frozen_keys())
    assert not any('.base.' in k for k in model.state_dict())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all('.base.' not in n for n in trainable)
    state = set(model.state_dict())
    assert state == frozen | trainable
    assert sum(p.numel() for p in model.parameters()
               if p.requires_grad) == 4 * per_block
    # load_frozen (strict) from a converted file fills the frozen part only
    src = build('sam')
    with torch.no_grad():
        for p in src.encoder.parameters():
            p.normal_()
    path = str(tmp_path / 'frozen.pth')
    torch.save({'state_dict': src.encoder.state_dict()}, path)
    lora_before = {k: v.clone() for k, v in model.state_dict().items()
                   if k not in frozen}
    model.load_frozen(path)
    for key, value in src.encoder.state_dict().items():
        assert torch.equal(model.state_dict()[f'encoder.{key}'], value), key
    for key, value in lora_before.items():
        assert torch.equal(model.state_dict()[key], value), key
    # a missing frozen tensor is reported by its frozen name
    partial = dict(src.encoder.state_dict())
    del partial['layers.0.attn.qkv.weight']
    torch.save({'state_dict': partial}, path)
    with pytest.raises(ValueError, match=r'layers\.0\.attn\.qkv\.weight'):
        model.load_frozen(path)


def test_mmadapter_training_step_leaves_frozen_weights_unchanged():
    torch.manual_seed(0)
    model = build('sam', peft=MMADAPTER)
    model.train()
    assert not any(m.training for m in model.encoder.modules()
                   if not any(m is w or m in set(w.modules())
                              for w in peft_wrappers(model)))
    assert all(w.training and not w.base.training
               for w in peft_wrappers(model))
    optim = build_optim_wrapper(
        model, dict(type='OptimWrapper',
                    optimizer=dict(type='SGD', lr=0.1, momentum=0.9,
                                   weight_decay=5e-4)))
    frozen = {k: v.clone() for k, v in model.state_dict().items()
              if k in set(model.frozen_keys())}
    mix = model.encoder.layers[2].ffn.mix
    mix_before = mix.detach().clone()
    loss = sum(o.square().mean() for o in model(torch.randn(2, 4, 64, 64)))
    optim.update_params(loss)
    assert all(p.grad is None for n, p in model.named_parameters()
               if not p.requires_grad)
    for key, value in frozen.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert not torch.equal(mix.detach(), mix_before)  # lambdas learn


def test_shared_aux_embedding_is_the_frozen_one():
    model = build('sam')
    assert len(model.aux_embeds) == 0
    rgb = torch.randn(1, 1, 64, 64)
    x = torch.cat([rgb.expand(-1, 3, -1, -1), rgb], dim=1)
    model.eval()
    with torch.no_grad():
        out = model(x)[0]
    torch.testing.assert_close(out[0], out[1])  # DSM replicated = RGB
    with pytest.raises(ValueError, match="aux_embed='shared' takes 1- or 3"):
        MultiStreamViT([dict(name='rgb', channels=3),
                        dict(name='sar', channels=2)], family='sam',
                       aux_embed='shared', **FAMILY['sam'])


def test_injection_by_pattern_and_errors():
    model = build('sam', peft=MMLORA, out_indices=[1])  # blocks 0, 1 run
    wrapped = {type(m.base).__name__ for m in peft_wrappers(model)}
    assert wrapped == {'Linear'}
    assert isinstance(model.encoder.layers[1].attn.qkv, LoRALinear)
    assert isinstance(model.encoder.layers[1].ffn.layers[1], LoRALinear)
    assert not isinstance(model.encoder.layers[2].attn.qkv, LoRALinear)
    assert len(peft_wrappers(model)) == 6
    with pytest.raises(ValueError, match="'layers.*.attn.qkvv' matches no"):
        build('sam', peft=[dict(type='LoRALinear',
                                targets='layers.*.attn.qkvv')])
    with pytest.raises(TypeError, match='not a registered PEFT wrapper'):
        build('sam', peft=[dict(type='CPIA', targets='layers.*.attn')])
    with pytest.raises(ValueError, match='batch_streams=True'):
        build('sam', peft=LORA, batch_streams=False)
    enc = nn.Sequential(nn.Sequential(nn.Linear(4, 4)), nn.Linear(4, 4))
    names = inject_peft(enc, [dict(type='LoRALinear', targets='*.0')],
                        num_modalities=1, embed_dims=4)
    assert names == ['0.0']  # '*' is one name component


@pytest.mark.parametrize('peft', [MMADAPTER, ADAPTER])
def test_adapters_in_dinov2_blocks(peft):
    """The same wrappers in mmpretrain VisionTransformer blocks (CLS token
    included): the streams change, and only where the adapters act."""
    plain = build('dinov2', out_indices=[1, 3])
    model = build('dinov2', peft=peft, out_indices=[1, 3])
    model.encoder.load_state_dict(plain.encoder.state_dict(), strict=False)
    x = torch.randn(1, 4, 56, 42)
    plain.eval(), model.eval()
    with torch.no_grad():
        outs, expected = model(x), plain(x)
        assert [o.shape for o in outs] == [(2, 1, 64, 4, 3)] * 2
        assert not torch.allclose(outs[0], expected[0])
        for wrapper in peft_wrappers(model):  # zero the adapters' outputs
            for adapter in wrapper.adapters:
                adapter.fc2.weight.zero_()
                adapter.fc2.bias.zero_()
        for out, ref in zip(model(x), expected):
            torch.testing.assert_close(out, ref)


CPIA = dict(type='CPIA')
TAPS = [0, 2, 3]  # stages start at blocks 0, 1, 3


@pytest.mark.parametrize('family', ['sam', 'dinov2'])
def test_cpia_is_injected_around_each_stage_first_block(family):
    model = build(family, peft=LORA, stage_adapter=CPIA, out_indices=TAPS)
    layers = model.encoder.layers
    assert [isinstance(layer, PreBlockWrapper)
            for layer in layers] == [True, True, False, True]
    for layer, cpia in zip([layers[0], layers[1], layers[3]],
                           model.stage_adapters):
        assert layer.adapter is cpia  # by reference, not a submodule
        assert not any(m is cpia for m in layer.modules())
        assert isinstance(layer.base.attn.qkv, LoRALinear)  # inside
    assert len(peft_wrappers(model)) == 3 + 4
    # unchanged keys: the LoRA model's plus the CPIA modules' where they are
    lora = build(family, peft=LORA, out_indices=TAPS)
    cpia_keys = {f'stage_adapters.{k}'
                 for k in model.stage_adapters.state_dict()}
    assert set(model.state_dict()) == set(lora.state_dict()) | cpia_keys
    assert set(model.frozen_keys()) == set(lora.frozen_keys())
    # (parameter names in a wrapped block gain '.base.', state-dict keys
    # do not)
    assert {n.replace('.base.', '.') for n, p in model.named_parameters()
            if p.requires_grad} == \
        {n for n, p in lora.named_parameters() if p.requires_grad} | \
        {f'stage_adapters.{n}'
         for n, _ in model.stage_adapters.named_parameters()}
    # a checkpoint of it loads into a fresh one, CPIA included
    fresh = build(family, peft=LORA, stage_adapter=CPIA, out_indices=TAPS)
    assert not torch.equal(fresh.stage_adapters[1].up.weight,
                           model.stage_adapters[1].up.weight)
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.encoder.layers[1].adapter.up.weight,
                       model.stage_adapters[1].up.weight)


@pytest.mark.parametrize('family', ['sam', 'dinov2'])
def test_stage_adapter_is_plain_injection(family):
    """``stage_adapter=CPIA`` builds what injecting PreBlockWrappers by
    hand into a model without it builds: the forward has no CPIA path."""
    model = build(family, stage_adapter=CPIA, out_indices=TAPS).eval()
    plain = build(family, out_indices=TAPS).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    x = torch.randn(2, 4, 64, 48)
    with torch.no_grad():
        without = plain(x)
        names = inject_peft(
            plain.encoder, [
                dict(type='PreBlockWrapper', targets=f'layers.{i}',
                     adapter=cpia, num_extra_tokens=model.num_extra_tokens)
                for i, cpia in zip((0, 1, 3), model.stage_adapters)
            ],
            num_modalities=2)
        assert names == ['layers.0', 'layers.1', 'layers.3']
        outs = model(x)
        for out, ref, plain_out in zip(outs, plain(x), without):
            torch.testing.assert_close(out, ref, rtol=0, atol=0)
            assert not torch.allclose(out, plain_out)


def reference_backbone(model, x):
    """MoBaNet's backbone written out: CPIA in the reference code's form
    (``x_m + z + (z * gamma_m + beta_m)``) on the patch tokens before each
    stage's first block, the plain frozen blocks on the stacked streams
    ``(M * B, *S, C)``, the tap transform at each tap. Returns S tensors
    ``(M, B, C, h, w)``."""
    streams, hw = model.embed(x)  # (M, B, *S, C)
    e = model.num_extra_tokens
    starts = [0] + [i + 1 for i in model.out_indices[:-1]]
    outs = []
    for i in range(model.out_indices[-1] + 1):
        block = model.encoder.layers[i]
        if i in starts:
            cpia = model.stage_adapters[starts.index(i)]
            tokens = streams.flatten(2, -2)  # (M, B, E + N, C)
            patches = tokens[:, :, e:]
            z = cpia.up(cpia.fuse(torch.cat(
                [cpia.down[m](patches[m]) for m in range(2)], dim=-1)))
            patches = torch.stack([
                patches[m] + (z + (z * cpia.gamma[m] + cpia.beta[m]))
                for m in range(2)
            ])
            streams = torch.cat([tokens[:, :, :e], patches], dim=2) \
                .unflatten(2, streams.shape[2:-1])
            block = block.base
        streams = block(streams.flatten(0, 1)).unflatten(0, (2, -1))
        if i in model.out_indices:
            out = streams.flatten(2, -2)[:, :, e:]
            if model.tap_transform == 'norm':
                out = model.encoder.ln1(out)
            outs.append(out.unflatten(2, hw).permute(0, 1, 4, 2, 3))
    return outs


@pytest.mark.parametrize('family', ['sam', 'dinov2'])
def test_cpia_backbone_equals_reference(family):
    model = build(family, stage_adapter=CPIA, out_indices=TAPS).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():  # LayerScale 1e-5 would hide blocks
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2 +
                    (p.ndim == 1))
        x = torch.randn(2, 4, 60, 45, generator=gen)
        outs, expected = model(x), reference_backbone(model, x)
    assert len(outs) == 3
    for out, ref in zip(outs, expected):
        torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_merged_lora_loads_and_trains_safely():
    """Loading other LoRA weights into a merged model drops the stale
    merged weight (the forward is that of the loaded weights); a merged
    forward that would need LoRA gradients raises instead of sending
    none."""
    model = build('dinov2', peft=LORA)
    randomize_lora(model)
    other = build('dinov2', peft=LORA)
    randomize_lora(other)
    other.eval()
    x = torch.randn(2, 4, 56, 56)
    with torch.no_grad():
        expected = other(x)
    model.eval()
    merge_lora(model)
    model.load_state_dict(other.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
    merge_lora(model)
    with pytest.raises(RuntimeError, match='merged.*no gradient'):
        model(x)


@pytest.mark.parametrize('family', ['sam', 'dinov2'])
@pytest.mark.parametrize('peft', [MMLORA, LORA])
def test_per_modality_attention_equals_the_stacked_batch(family, peft):
    """PerModality runs each attention (with its q/v LoRA inside) on one
    modality's batch at a time: the same outputs and gradients as the
    stacked batch, the same state-dict keys (checkpoints load either way),
    and the inner LoRA uses the weights of the modality it sees."""
    torch.manual_seed(0)
    stacked = build(family, peft=peft)
    randomize_lora(stacked)
    model = build(family, peft=peft + PER_MODALITY_ATTN)
    assert model.state_dict().keys() == stacked.state_dict().keys()
    model.load_state_dict(stacked.state_dict())
    attn = model.encoder.layers[0].attn
    assert isinstance(attn, PerModality)
    calls, stacked_calls = [], []
    attn.base.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    stacked.encoder.layers[0].attn.register_forward_hook(
        lambda m, i, o: stacked_calls.append(len(i[0])))

    x = torch.randn(2, 4, 64, 48)
    grads = []
    for m in (stacked, model):
        m.train()
        m.zero_grad()
        out = m(x)
        out[-1].square().mean().backward()
        grads.append({k: p.grad for k, p in m.named_parameters()
                      if p.requires_grad})
    # one call per modality, each on half the stacked batch
    assert len(stacked_calls) == 1
    assert calls == [stacked_calls[0] // 2] * 2
    assert all(w.modality is None for w in peft_wrappers(model))
    with torch.no_grad():
        expected = stacked.eval()(x)
        torch.testing.assert_close(model.eval()(x), expected, rtol=0, atol=0)
    assert grads[0].keys() == {k.replace('.base.', '.')
                               for k in grads[1]}
    for key, grad in grads[1].items():
        torch.testing.assert_close(grad, grads[0][key.replace('.base.', '.')])

    # near miss: every stream with the first modality's LoRA
    qkv = model.encoder.layers[0].attn.base.qkv
    with torch.no_grad():
        qkv.lora_a[1] = qkv.lora_a[0]
        qkv.lora_b[1] = qkv.lora_b[0]
        assert not torch.allclose(model(x)[0], expected[0])


def test_per_modality_merged_lora_and_cross_modal_error():
    torch.manual_seed(0)
    model = build('sam', peft=MMLORA + PER_MODALITY_ATTN)
    randomize_lora(model)
    model.eval()
    x = torch.randn(2, 4, 64, 48)
    with torch.no_grad():
        unmerged = model(x)
        assert merge_lora(model) == 4
        torch.testing.assert_close(model(x), unmerged, rtol=1e-5, atol=1e-5)

    # a cross-modal wrapper needs both modalities at once
    wrong = build('sam', peft=MMLORA + [
        dict(type='PerModality', targets='layers.*.ffn')])
    with pytest.raises(RuntimeError, match='mixes the two modalities'):
        wrong(x)
    assert all(w.modality is None for w in peft_wrappers(wrong))
    # listed first, it hides the names the LoRA targets
    with pytest.raises(ValueError, match=r'layers\.\*\.attn\.qkv'):
        build('sam', peft=PER_MODALITY_ATTN + MMLORA)
