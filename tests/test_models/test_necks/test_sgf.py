"""SGF / SGFNeck: the equations against a pixel-by-pixel reference that
keeps only the present modalities, the presence mask (absent modalities
never computed, never attended), exact parameter counts."""
import itertools

import pytest
import torch

from mmrsfusion.models.necks import SGF, SGFNeck
from mmrsfusion.models.necks.sgf import ModalityProjector

C, M, K = 16, 3, 5


def feats(b=2, h=6, w=5, channels=C, m=M, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(m, b, channels, h, w, generator=gen)


@torch.no_grad()
def module(seed=0, **kwargs):
    """An SGF whose weights are all non-trivial (default inits give outputs
    too small to tell near misses apart)."""
    sgf = SGF(C, M, K, sp_heads=8, rp_heads=4, **kwargs).eval()
    gen = torch.Generator().manual_seed(seed)
    for p in sgf.parameters():
        p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return sgf


def reference(sgf, x, presence, joint=True):
    """SGF of one scale written pixel by pixel, with the absent modalities
    simply left out of every set (no masks). ``joint=False``: the near miss
    that normalises the prototype weights per modality."""
    out_f, out_r = [], []
    for b in range(x.shape[1]):
        present = [m for m in range(M) if presence[b, m]]
        f_se = torch.stack(
            [sgf.projectors[m](x[m, b:b + 1])[0] for m in present])
        scores = sgf.semantic_filter(f_se)  # (P, K, h, w)
        p, _, h, w = scores.shape
        if joint:
            weights = scores.permute(1, 0, 2, 3).reshape(K, -1).softmax(1)
        else:
            weights = scores.flatten(2).softmax(dim=2).permute(
                1, 0, 2).reshape(K, -1) / p
        values = f_se.permute(0, 2, 3, 1).reshape(-1, C)
        protos = weights @ values  # (K, C)
        fused = x.new_zeros(C, h, w)
        rob = x.new_zeros(M, h, w)
        for i in range(h):
            for j in range(w):
                tokens = f_se[:, :, i, j][None]  # (1, P, C)
                sp, _ = sgf.spatial_perceptron(protos[None], tokens, tokens)
                q = sp.mean(dim=1, keepdim=True)
                out, att = sgf.robustness_perceptron(q, tokens, tokens)
                fused[:, i, j] = out[0, 0]
                rob[present, i, j] = att[0, 0]
        out_f.append(fused)
        out_r.append(rob)
    return torch.stack(out_f), torch.stack(out_r)


def all_subsets(m=M):
    return [s for r in range(1, m + 1)
            for s in itertools.combinations(range(m), r)]


def mask_of(subsets, m=M):
    return torch.tensor([[i in s for i in range(m)] for s in subsets])


@torch.no_grad()
def test_matches_pixelwise_reference_for_every_subset():
    sgf = module().double()  # float64: agreement to 1e-10
    subsets = all_subsets()
    presence = mask_of(subsets)
    x = feats(b=len(subsets)).double()
    fused, rob = sgf(x, presence)
    ref_f, ref_r = reference(sgf, x, presence)
    assert fused.shape == (len(subsets), C, 6, 5)
    assert rob.shape == (len(subsets), M, 6, 5)
    torch.testing.assert_close(fused, ref_f, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(rob, ref_r, atol=1e-10, rtol=1e-10)
    # robustness: 0 where absent, a distribution over the present ones
    assert (rob.permute(0, 2, 3, 1)[~presence[:, None, None].expand(
        -1, 6, 5, -1)] == 0).all()
    torch.testing.assert_close(
        rob.sum(dim=1), torch.ones(len(subsets), 6, 5, dtype=torch.double))


@torch.no_grad()
def test_reference_tells_a_near_miss():
    """Prototype weights normalised per modality instead of jointly, or a
    residual added to the fused map, give other outputs."""
    sgf = module()
    x = feats(b=1)
    presence = torch.ones(1, M, dtype=torch.bool)
    fused, _ = sgf(x, presence)
    torch.testing.assert_close(fused, reference(sgf, x, presence)[0],
                               atol=1e-4, rtol=1e-4)
    per_modality, _ = reference(sgf, x, presence, joint=False)
    assert (fused - per_modality).abs().max() > 1e-3
    assert (fused + x.mean(0) - reference(sgf, x, presence)[0]).abs().max() \
        > 1e-3


class Recorder:
    """Inputs and outputs of every projector call."""

    def __init__(self, sgf):
        self.calls = {m: [] for m in range(M)}
        for m, proj in enumerate(sgf.projectors):
            proj.register_forward_hook(
                lambda mod, args, out, m=m: self.calls[m].append(
                    (args[0].clone(), out.clone())))


@torch.no_grad()
def test_removing_a_modality_changes_no_computation_of_the_others():
    x = feats(b=3)
    full = torch.ones(3, M, dtype=torch.bool)
    for dropped in range(M):
        sgf = module()
        rec_full, = [Recorder(sgf)]
        sgf(x, full)
        partial = full.clone()
        partial[1, dropped] = False  # sample 1 loses one modality
        sgf_b = module()
        rec = Recorder(sgf_b)
        sgf_b(x, partial)
        for m in range(M):
            (inp_f, out_f), = rec_full.calls[m]
            if m != dropped:
                (inp, out), = rec.calls[m]
                # same inputs, bit-identical outputs for every sample
                assert torch.equal(inp, inp_f) and torch.equal(out, out_f)
            else:
                (inp, out), = rec.calls[m]
                # the absent sample is not computed at all
                assert inp.shape[0] == 2
                assert torch.equal(out, out_f[[0, 2]])


@torch.no_grad()
def test_single_modality_outputs_finite_and_robustness_one():
    sgf = module()
    for m in range(M):
        presence = torch.zeros(2, M, dtype=torch.bool)
        presence[:, m] = True
        x = feats(b=2) * 50  # large activations stay finite too
        fused, rob = sgf(x, presence)
        assert torch.isfinite(fused).all()
        assert torch.equal(rob[:, m], torch.ones(2, 6, 5))
        # values of absent modalities do not matter at all
        y = x.clone()
        y[[i for i in range(M) if i != m]] = float('nan')
        fused_y, _ = sgf(y, presence)
        assert torch.equal(fused, fused_y)


@torch.no_grad()
def test_mixed_batch_equals_each_sample_alone():
    sgf = module().double()  # float64: any leak across samples shows
    subsets = all_subsets()
    presence = mask_of(subsets)
    x = feats(b=len(subsets), seed=3).double()
    fused, rob = sgf(x, presence)
    for b in range(len(subsets)):
        f1, r1 = sgf(x[:, b:b + 1], presence[b:b + 1])
        torch.testing.assert_close(fused[b:b + 1], f1, atol=1e-12, rtol=0)
        torch.testing.assert_close(rob[b:b + 1], r1, atol=1e-12, rtol=0)


def test_parameter_counts():
    proj = ModalityProjector(C)
    assert sum(p.numel() for p in proj.parameters()) == \
        C * (121 + 49 + 9 + 3) + C * C + C
    sgf = SGF(C, M, K)
    mha = 4 * C * C + 4 * C
    assert sum(p.numel() for p in sgf.parameters()) == \
        M * (C * 182 + C * C + C) + (C * K + K) + 2 * mha
    assert sgf.spatial_perceptron.num_heads == 8
    assert sgf.robustness_perceptron.num_heads == 4
    assert [m.kernel_size for m in proj][:3] == [(11, 11), (7, 7), (3, 3)]
    assert all(m.groups == C for m in list(proj)[:3])


def test_neck_per_stage_masks_and_errors():
    torch.manual_seed(0)
    neck = SGFNeck([8, 16], num_modalities=2, num_classes=3).eval()
    inputs = [feats(b=2, h=8, w=8, channels=8, m=2),
              feats(b=2, h=4, w=4, channels=16, m=2)]
    with torch.no_grad():
        fused, rob = neck(inputs, return_robustness=True)
        assert [f.shape for f in fused] == [(2, 8, 8, 8), (2, 16, 4, 4)]
        assert [r.shape for r in rob] == [(2, 2, 8, 8), (2, 2, 4, 4)]
        only0 = torch.tensor([[True, False]] * 2)
        only1 = torch.tensor([[False, True]] * 2)
        fused2, rob2 = neck(inputs, presence=[only0, only1],
                            return_robustness=True)
        assert torch.equal(rob2[0][:, 0], torch.ones(2, 8, 8))
        assert torch.equal(rob2[1][:, 1], torch.ones(2, 4, 4))
        # stage 0 under only0 equals the single-stage SGF under only0
        f0, _ = neck.fusions[0](inputs[0], only0)
        assert torch.equal(fused2[0], f0)
    with pytest.raises(ValueError, match='expected 2 stages'):
        neck(inputs[:1])
    with pytest.raises(ValueError, match='divisible by sp_heads'):
        SGF(12, 2, 3, sp_heads=8)


def test_gradients_reach_every_part():
    sgf = SGF(C, M, K).train()
    fused, rob = sgf(feats(b=2))
    (fused.square().mean() + rob.square().mean()).backward()
    for name, p in sgf.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
