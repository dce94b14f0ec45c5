"""The block-level injection point of MultiStreamViT, exercised with a
trivial registered adapter (MMAdapter / MMLoRA plug in the same way)."""
import pytest
import torch
from mmseg.registry import MODELS

from mmrsfusion.models.backbones import MultiStreamViT
from mmrsfusion.models.peft import BaseBlockAdapter, run_shared_block

MODS = [dict(name='rgb', channels=3), dict(name='dsm', channels=1)]
TINY = dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=128)
FAMILY = dict(
    dinov2=dict(arch=TINY, encoder_cfg=dict(img_size=56)),
    sam=dict(
        arch=dict(TINY, global_attn_indexes=[1, 3]),
        encoder_cfg=dict(img_size=64, window_size=2)))
CALLS = []


@MODELS.register_module(force=True)
class ToyBlockAdapter(BaseBlockAdapter):
    """Runs the block, then adds a per-modality bias (zero-initialised)."""

    def __init__(self, scale=1., **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.bias = torch.nn.Parameter(
            torch.zeros(self.num_modalities, self.embed_dims))

    def forward(self, block, x):
        CALLS.append((self.layer_index, tuple(x.shape), block))
        out = run_shared_block(block, x)
        bias = self.bias.view(x.shape[0], *[1] * (x.ndim - 2), -1)
        return out + self.scale * bias


def build(family, **kwargs):
    model = MultiStreamViT(
        MODS, family=family, out_indices=[1, 2], **FAMILY[family], **kwargs)
    model.init_weights()
    return model


@pytest.mark.parametrize('family,layout', [('dinov2', (1 + 5 * 4, )),
                                           ('sam', (4, 3))])
def test_block_adapter_wraps_every_run_block(family, layout):
    plain = build(family).eval()
    model = build(family, block_adapter=dict(type='ToyBlockAdapter'))
    model.encoder.load_state_dict(plain.encoder.state_dict())
    model.aux_embeds.load_state_dict(plain.aux_embeds.state_dict())
    # one adapter per block up to the last tap, told its index and sizes
    assert len(model.block_adapters) == 3
    assert [a.layer_index for a in model.block_adapters] == [0, 1, 2]
    assert all(a.embed_dims == 64 and a.num_modalities == 2
               for a in model.block_adapters)
    # the frozen block stays in the encoder, not in the adapter
    assert [k for k in model.state_dict() if k.startswith('block_adapters')
            ] == [f'block_adapters.{i}.bias' for i in range(3)]
    x = torch.randn(2, 4, 60, 45)
    CALLS.clear()
    model.eval()
    with torch.no_grad():
        outs, expected = model(x), plain(x)
    assert [(i, shape) for i, shape, _ in CALLS] == \
        [(i, (2, 2, *layout, 64)) for i in range(3)]
    assert all(block is model.encoder.layers[i] for i, _, block in CALLS)
    for a, b in zip(outs, expected):  # zero bias: the plain backbone
        torch.testing.assert_close(a, b)

    model.train()
    assert not any(m.training for m in model.encoder.modules())
    assert model.block_adapters.training
    sum(o.square().mean() for o in model(x)).backward()
    for adapter in model.block_adapters:
        assert adapter.bias.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.encoder.parameters())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {'aux_embeds.dsm.weight', 'aux_embeds.dsm.bias'} | {
        f'block_adapters.{i}.bias' for i in range(3)}


def test_block_adapter_changes_the_streams():
    model = build('dinov2', block_adapter=dict(type='ToyBlockAdapter'))
    reference = build('dinov2').eval()
    reference.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        model.block_adapters[0].bias[1].fill_(1.)
    x = torch.randn(1, 4, 56, 56)
    model.eval()
    with torch.no_grad():
        outs, plain = model(x), reference(x)
    torch.testing.assert_close(outs[0][0], plain[0][0])  # rgb untouched
    assert not torch.allclose(outs[0][1], plain[0][1])  # dsm shifted


def test_block_and_stage_adapters_together():
    model = build(
        'sam',
        block_adapter=dict(type='ToyBlockAdapter', scale=0.5),
        stage_adapter=dict(type='CPIA'))
    assert model.block_adapters[0].scale == 0.5
    outs = model(torch.randn(1, 4, 32, 32))
    assert [o.shape for o in outs] == [(2, 1, 64, 2, 2)] * 2


def test_base_block_adapter_runs_the_block_unchanged():
    block = torch.nn.Linear(8, 8)
    adapter = BaseBlockAdapter(embed_dims=8, num_modalities=3, layer_index=0)
    x = torch.randn(3, 2, 5, 8)
    expected = torch.stack([block(s) for s in x])
    torch.testing.assert_close(adapter(block, x), expected)
    torch.testing.assert_close(run_shared_block(block, x), expected)
    assert list(adapter.parameters()) == []
