"""HardPixelCrossEntropyLoss against a hand computation."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmseg.registry import MODELS

import mmrsfusion  # noqa: F401
from mmrsfusion.models.losses import HardPixelCrossEntropyLoss

IGNORE = 255


def make_batch(seed=0, b=2, k=4, h=6, w=5):
    gen = torch.Generator().manual_seed(seed)
    main = torch.randn(b, k, h, w, generator=gen)
    aux = torch.randn(b, k, h, w, generator=gen)
    label = torch.randint(0, k, (b, h, w), generator=gen)
    label[0, 0, :3] = IGNORE
    return main, aux, label


def hand_loss(main, aux, label, class_weight=None):
    """Mean (class-weighted) CE of aux over pixels where argmax(main) is
    wrong and the label is not ignored, pixel by pixel."""
    b, k, h, w = aux.shape
    num, den = 0., 0.
    for i in range(b):
        for y in range(h):
            for x in range(w):
                t = int(label[i, y, x])
                if t == IGNORE or int(main[i, :, y, x].argmax()) == t:
                    continue
                logits = aux[i, :, y, x].tolist()
                lse = math.log(sum(math.exp(v) for v in logits))
                wt = 1. if class_weight is None else class_weight[t]
                num += wt * (lse - logits[t])
                den += wt
    return num / den, den


def test_equals_hand_computed_masked_ce():
    main, aux, label = make_batch()
    loss = HardPixelCrossEntropyLoss(loss_weight=1.)
    expected, count = hand_loss(main, aux, label)
    assert 0 < count < label.numel() - 3  # some pixels hard, some not
    assert loss(aux, main, label).item() == pytest.approx(expected, rel=1e-5)
    # label as (B, 1, H, W), as the segmentor stacks it
    assert loss(aux, main, label[:, None]).item() == pytest.approx(
        expected, rel=1e-5)
    # hard_mask is exactly that set of pixels
    omega = loss.hard_mask(main, label)
    assert int(omega.sum()) == count
    assert not omega[label == IGNORE].any()


def test_loss_weight_is_lambda_aux_and_class_weight():
    main, aux, label = make_batch(seed=1)
    expected, _ = hand_loss(main, aux, label)
    loss = MODELS.build(
        dict(type='HardPixelCrossEntropyLoss', loss_weight=0.01))
    assert loss.loss_name == 'loss_hard_ce'
    assert loss(aux, main, label).item() == pytest.approx(
        0.01 * expected, rel=1e-5)

    cw = [0.5, 1.0, 2.0, 3.0]
    expected_w, _ = hand_loss(main, aux, label, class_weight=cw)
    loss_w = HardPixelCrossEntropyLoss(loss_weight=1., class_weight=cw)
    assert loss_w(aux, main, label).item() == pytest.approx(
        expected_w, rel=1e-5)


def test_main_logits_upsampled_to_label_size():
    main, aux, label = make_batch(seed=2, h=8, w=8)
    small = main[:, :, ::2, ::2].contiguous()
    up = F.interpolate(small, size=(8, 8), mode='bilinear',
                       align_corners=False)
    loss = HardPixelCrossEntropyLoss(loss_weight=1.)
    expected, _ = hand_loss(up, aux, label)
    assert loss(aux, small, label).item() == pytest.approx(
        expected, rel=1e-5)


def test_empty_omega_gives_zero_with_valid_graph():
    _, aux, label = make_batch(seed=3)
    label[label == IGNORE] = 0
    perfect = F.one_hot(label, 4).permute(0, 3, 1, 2).float()
    aux.requires_grad_()
    loss = HardPixelCrossEntropyLoss(loss_weight=1.)
    out = loss(aux, perfect, label)
    assert out.item() == 0 and not torch.isnan(out)
    out.backward()
    assert aux.grad is not None and torch.equal(aux.grad,
                                                torch.zeros_like(aux))
    # all pixels ignored: also 0, also with class weights
    aux.grad = None
    all_ignored = torch.full_like(label, IGNORE)
    out = HardPixelCrossEntropyLoss(class_weight=[1, 2, 3, 4])(
        aux, perfect, all_ignored)
    assert out.item() == 0
    out.backward()
    assert not torch.isnan(aux.grad).any()


def test_main_logits_get_no_gradient():
    main, aux, label = make_batch(seed=4)
    main.requires_grad_()
    aux.requires_grad_()
    HardPixelCrossEntropyLoss(loss_weight=1.)(aux, main, label).backward()
    assert main.grad is None
    assert aux.grad.abs().sum() > 0
    # only hard pixels receive gradient
    omega = HardPixelCrossEntropyLoss().hard_mask(main, label)
    per_pixel = aux.grad.abs().sum(1)
    assert (per_pixel[~omega] == 0).all() and (per_pixel[omega] > 0).all()
