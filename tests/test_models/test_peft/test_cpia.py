import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmrsfusion.models.peft import CPIA


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def streams(m=2, b=2, n=6, c=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(m, b, n, c, generator=gen)


@torch.no_grad()
def randomize(module, seed=1):
    gen = torch.Generator().manual_seed(seed)
    for param in module.parameters():
        param.copy_(torch.randn(param.shape, generator=gen) * 0.3)


def reference_prompts(cpia, x):
    """Eq. 5-8 / the reference code, written out per modality."""
    downs = [
        F.linear(x[m], cpia.down[m].weight, cpia.down[m].bias)
        for m in range(len(x))
    ]
    z = F.linear(
        F.linear(torch.cat(downs, -1), cpia.fuse.weight, cpia.fuse.bias),
        cpia.up.weight, cpia.up.bias)
    return [z + (z * cpia.gamma[m] + cpia.beta[m]) for m in range(len(x))]


@pytest.mark.parametrize('c,expected', [(768, 520_512), (1024, 923_392)])
def test_additive_parameter_count_per_stage(c, expected):
    with torch.device('meta'):
        cpia = CPIA(c)
    assert n_params(cpia) == expected


@pytest.mark.parametrize('m', [2, 3, 4])
def test_parameter_count_general(m):
    c, c_p, d = 64, 16, 8
    with torch.device('meta'):
        additive = CPIA(c, num_modalities=m)
        adapter = CPIA(
            c, num_modalities=m, mode='adapter', adapter_ratio=0.125)
    shared = m * (c * c_p + c_p) + (m * c_p * c_p + c_p) + (c_p * c + c) \
        + 2 * m * c
    assert n_params(additive) == shared
    per_stream = (c * d + d) + c * d + (d * c + c)  # down, prompt, up
    assert n_params(adapter) == shared + m * per_stream


def test_gamma_beta_init():
    cpia = CPIA(4096)
    assert cpia.gamma.shape == cpia.beta.shape == (2, 4096)
    assert abs(cpia.gamma.mean().item() - 1) < 0.005
    assert abs(cpia.gamma.std().item() - 0.02) < 0.002
    assert abs(cpia.beta.mean().item()) < 0.005
    assert abs(cpia.beta.std().item() - 0.02) < 0.002


@pytest.mark.parametrize('m', [2, 3])
def test_additive_equation(m):
    cpia = CPIA(32, num_modalities=m)
    x = streams(m=m)
    out = cpia(x)
    prompts = reference_prompts(cpia, x)
    assert out.shape == x.shape
    for i in range(m):
        # x_m <- x_m + z + (z * gamma_m + beta_m)
        torch.testing.assert_close(out[i], x[i] + prompts[i])
    torch.testing.assert_close(cpia.prompts(x), torch.stack(prompts))


def test_adapter_equation():
    cpia = CPIA(32, mode='adapter', adapter_ratio=0.5).eval()
    x = streams()
    # zero-initialised W_up: the adapter starts as the identity
    assert torch.equal(cpia(x), x)
    randomize(cpia)
    prompts = reference_prompts(cpia, x)
    out = cpia(x)
    for m in range(2):
        hidden = F.relu(
            F.linear(x[m], cpia.adapter_down[m].weight,
                     cpia.adapter_down[m].bias) +
            F.linear(prompts[m], cpia.adapter_prompt[m].weight))
        expected = x[m] + F.linear(hidden, cpia.adapter_up[m].weight,
                                   cpia.adapter_up[m].bias)
        torch.testing.assert_close(out[m], expected)
    assert cpia.adapter_down[0].out_features == 16  # r_a * C
    assert cpia.adapter_prompt[0].bias is None


def test_adapter_dropout_only_in_training():
    cpia = CPIA(32, mode='adapter', adapter_dropout=0.5)
    randomize(cpia)
    x = streams()
    cpia.eval()
    assert torch.equal(cpia(x), cpia(x))
    cpia.train()
    torch.manual_seed(0)
    assert not torch.equal(cpia(x), cpia(x))


def test_gradients_reach_every_parameter():
    for mode in CPIA.MODES:
        cpia = CPIA(32, mode=mode)
        randomize(cpia)
        cpia(streams()).square().sum().backward()
        for name, param in cpia.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, \
                (mode, name)


def test_invalid():
    with pytest.raises(ValueError, match='mode'):
        CPIA(32, mode='prompt')
    with pytest.raises(ValueError, match='at least 2'):
        CPIA(32, num_modalities=1)
    with pytest.raises(ValueError, match='3 streams'):
        CPIA(32)(streams(m=3))


def test_built_from_registry():
    cpia = MODELS.build(
        dict(type='CPIA', embed_dims=32, num_modalities=3, mode='adapter'))
    assert isinstance(cpia, CPIA) and cpia.num_modalities == 3


def test_adapter_starts_as_identity_despite_init_cfg():
    """A Linear init_cfg (here constant 0.5) must not undo the zero
    up-projections: the adapter term is 0 after init_weights."""
    cpia = CPIA(embed_dims=16, num_modalities=2, mode='adapter',
                init_cfg=dict(type='Constant', layer='Linear', val=0.5))
    cpia.init_weights()
    assert cpia.down[0].weight.eq(0.5).all()  # the init_cfg did run
    for up in cpia.adapter_up:
        assert not up.weight.any() and not up.bias.any()
    x = torch.randn(2, 3, 5, 16)
    prompts = cpia.prompts(x)
    cpia.eval()
    # adapter output = x exactly: W_up = 0, b_up = 0
    torch.testing.assert_close(cpia(x), x)
    assert prompts.abs().sum() > 0
