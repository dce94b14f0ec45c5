"""UNetFormerHead (MFNet's decoder): exact parameter count, the global
window attention and weighted-fusion equations, odd input sizes, and a
loss that falls when trained on learnable synthetic data."""
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmengine.structures import PixelData

import mmrsfusion  # noqa: F401
from mmrsfusion.models.decode_heads.unetformer_head import (
    GlobalLocalAttention, WeightedFusion)

HEAD = dict(type='UNetFormerHead', in_channels=[256] * 4,
            in_index=[0, 1, 2, 3], channels=64, num_classes=6,
            dropout_ratio=0.1, norm_cfg=dict(type='BN'))


def test_parameter_count_and_shapes():
    head = MODELS.build(HEAD)
    assert sum(p.numel() for p in head.parameters()) == 515_102
    assert head.conv_seg.bias is None
    assert head.b4.attn.relative_position_bias_table.shape == (225, 8)
    head.eval()
    for h, w in ((64, 64), (60, 44)):  # 44 / 8: reflect-padded windows
        feats = [torch.randn(1, 256, -(-h // s), -(-w // s))
                 for s in (1, 2, 4, 8)]
        assert head(feats).shape == (1, 6, h, w)
    tiny = [torch.randn(1, 256, 12 // s, 12 // s) for s in (1, 2, 4, 8)]
    with pytest.raises(ValueError, match='1x1 map cannot be reflect-padded'):
        head(tiny)


def test_global_branch_is_window_attention_with_relative_bias():
    torch.manual_seed(0)
    ws, heads, c = 2, 2, 8
    gla = GlobalLocalAttention(c, heads, ws, dict(type='BN')).eval()
    with torch.no_grad():
        gla.relative_position_bias_table.normal_()
    x = torch.randn(1, c, 4, 4)
    captured = {}
    gla.attn_x.register_forward_hook(
        lambda m, i, o: captured.setdefault('attn', i[0][:, :, :4, :4]))
    gla(x)
    qkv = gla.qkv(x)  # (1, 3c, 4, 4)
    d = c // heads
    expected = torch.zeros(1, c, 4, 4)
    # relative position bias of tokens (i, j) -> (k, l) in one window
    for wi in range(2):
        for wj in range(2):
            rows = slice(wi * ws, (wi + 1) * ws)
            cols = slice(wj * ws, (wj + 1) * ws)
            tokens = qkv[0, :, rows, cols].reshape(3, heads, d, ws * ws)
            q, k, v = tokens[0], tokens[1], tokens[2]  # (heads, d, n)
            pos = [(i, j) for i in range(ws) for j in range(ws)]
            bias = torch.stack([torch.stack([
                gla.relative_position_bias_table[
                    (a[0] - b[0] + ws - 1) * (2 * ws - 1) + a[1] - b[1] + ws
                    - 1] for b in pos]) for a in pos])  # (n, n, heads)
            att = (q.transpose(1, 2) @ k) * d**-0.5 + bias.permute(2, 0, 1)
            out = att.softmax(-1) @ v.transpose(1, 2)  # (heads, n, d)
            expected[0, :, rows, cols] = out.permute(0, 2, 1).reshape(
                c, ws, ws)
    torch.testing.assert_close(captured['attn'], expected)


def test_weighted_fusion_equation():
    torch.manual_seed(0)
    wf = WeightedFusion(16, 8, dict(type='BN'), dict(type='ReLU6')).eval()
    with torch.no_grad():
        wf.weights.copy_(torch.tensor([3., -1.]))  # ReLU -> (3, 0)
    x, res = torch.randn(1, 8, 3, 3), torch.randn(1, 16, 6, 6)
    expected = wf.post_conv(3 / (3 + 1e-8) * wf.pre_conv(res))
    torch.testing.assert_close(wf(x, res), expected)
    with torch.no_grad():
        wf.weights.fill_(1.)
    up = F.interpolate(x, size=(6, 6), mode='bilinear', align_corners=False)
    expected = wf.post_conv((wf.pre_conv(res) + up) / (2 + 1e-8))
    torch.testing.assert_close(wf(x, res), expected)


def test_loss_falls_on_learnable_data():
    torch.manual_seed(0)
    head = MODELS.build(dict(HEAD, in_channels=[16] * 4, channels=16,
                             num_heads=2, num_classes=3, dropout_ratio=0.))
    feats = [torch.randn(2, 16, 64 // s, 64 // s) for s in (1, 2, 4, 8)]
    labels = (feats[0][:, :3].argmax(1, keepdim=True))  # from the input
    labels = F.interpolate(labels.float(), scale_factor=4).long()
    samples = [SegDataSample(gt_sem_seg=PixelData(data=lab)) for lab in labels]
    optim = torch.optim.AdamW(head.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = head.loss(feats, samples, dict())['loss_ce']
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
