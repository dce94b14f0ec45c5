"""The UNetFormer decoder (MFNet's decode head): global-local transformer
blocks, weighted fusion and a feature refinement head."""
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import (ConvModule, DepthwiseSeparableConvModule,
                      build_norm_layer)
from mmengine.model.weight_init import trunc_normal_
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor

from .no_bias_heads import NoBiasConvSegMixin


def conv_bn(in_channels: int,
            out_channels: int,
            kernel_size: int,
            norm_cfg: dict,
            act_cfg: Optional[dict] = None) -> ConvModule:
    """Bias-free ``kernel_size`` conv (same padding) + norm (+ act)."""
    return ConvModule(
        in_channels,
        out_channels,
        kernel_size,
        padding=(kernel_size - 1) // 2,
        bias=False,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg)


def separable_conv_bn(channels: int, kernel_size: int,
                      norm_cfg: dict) -> DepthwiseSeparableConvModule:
    """Depthwise ``kernel_size`` conv + norm, then a pointwise conv (no
    bias, no activation)."""
    return DepthwiseSeparableConvModule(
        channels,
        channels,
        kernel_size,
        padding=(kernel_size - 1) // 2,
        bias=False,
        norm_cfg=None,
        act_cfg=None,
        dw_norm_cfg=norm_cfg)


class GlobalLocalAttention(nn.Module):
    """Global-local attention (GLA) on ``(B, C, H, W)``.

    local = ConvBN_1x1(x) + ConvBN_3x3(x); global = multi-head attention
    in non-overlapping ``ws x ws`` windows (qkv by a bias-free 1x1 conv,
    relative position bias table ``(2ws-1)^2 x heads``; the input reflect-
    padded to a multiple of ``ws``), then average-pooled along H
    (``(ws, 1)``) and along W (``(1, ws)``) and summed, both with one row
    / column of reflect padding. ``out = Proj(global + local)`` with
    ``Proj`` = depthwise ``ws x ws`` conv + BN + pointwise conv (on the
    map reflect-padded by one at the bottom / right).
    """

    def __init__(self, dim: int, num_heads: int, window_size: int,
                 norm_cfg: dict):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads)**-0.5
        self.ws = ws = window_size
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=False)
        self.local1 = conv_bn(dim, dim, 3, norm_cfg)
        self.local2 = conv_bn(dim, dim, 1, norm_cfg)
        self.proj = separable_conv_bn(dim, ws, norm_cfg)
        self.attn_x = nn.AvgPool2d((ws, 1), stride=1, padding=(ws // 2 - 1, 0))
        self.attn_y = nn.AvgPool2d((1, ws), stride=1, padding=(0, ws // 2 - 1))
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * ws - 1)**2, num_heads))
        trunc_normal_(self.relative_position_bias_table, std=.02)
        coords = torch.stack(
            torch.meshgrid(torch.arange(ws), torch.arange(ws),
                           indexing='ij')).flatten(1)  # (2, ws*ws)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
        index = (rel[..., 0] + ws - 1) * (2 * ws - 1) + rel[..., 1] + ws - 1
        self.register_buffer(
            'relative_position_index', index, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        ws, heads = self.ws, self.num_heads
        if -H % ws >= H or -W % ws >= W:
            raise ValueError(
                f'GlobalLocalAttention: a {H}x{W} map cannot be reflect-'
                f'padded to a multiple of the window {ws}; the stride-32 map '
                f'needs at least {ws // 2 + 1} pixels a side (larger inputs)')
        local = self.local2(x) + self.local1(x)
        x = F.pad(x, (0, -W % ws, 0, -H % ws), mode='reflect')
        Hp, Wp = x.shape[-2:]
        hh, ww = Hp // ws, Wp // ws
        # (B, 3*C, Hp, Wp) -> q, k, v (B*hh*ww, heads, ws*ws, C/heads)
        q, k, v = self.qkv(x).view(B, 3, heads, C // heads, hh, ws, ww,
                                   ws).permute(1, 0, 4, 6, 2, 5, 7,
                                               3).reshape(
                                                   3, B * hh * ww, heads,
                                                   ws * ws, C // heads)
        dots = (q @ k.transpose(-2, -1)) * self.scale
        bias = self.relative_position_bias_table[
            self.relative_position_index.view(-1)].view(
                ws * ws, ws * ws, -1).permute(2, 0, 1)
        attn = (dots + bias.unsqueeze(0)).softmax(dim=-1) @ v
        attn = attn.view(B, hh, ww, heads, ws, ws, C // heads).permute(
            0, 3, 6, 1, 4, 2, 5).reshape(B, C, Hp, Wp)[:, :, :H, :W]
        out = self.attn_x(F.pad(attn, (0, 0, 0, 1), mode='reflect')) + \
            self.attn_y(F.pad(attn, (0, 1, 0, 0), mode='reflect'))
        out = self.proj(F.pad(out + local, (0, 1, 0, 1), mode='reflect'))
        return out[:, :, :H, :W]


class GLTB(nn.Module):
    """Global-local transformer block on ``(B, C, H, W)``:
    ``x + GLA(BN(x))``, then ``x + MLP(BN(x))`` (1x1 convs C -> 4C -> C
    with ReLU6)."""

    def __init__(self, dim: int, num_heads: int, window_size: int,
                 norm_cfg: dict, mlp_ratio: float = 4.):
        super().__init__()
        self.norm1 = build_norm_layer(norm_cfg, dim)[1]
        self.attn = GlobalLocalAttention(dim, num_heads, window_size,
                                         norm_cfg)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Conv2d(dim, hidden, 1), nn.ReLU6(), nn.Conv2d(hidden, dim, 1))
        self.norm2 = build_norm_layer(norm_cfg, dim)[1]

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class WeightedFusion(nn.Module):
    """WF: ``x`` upsampled x2 (bilinear) to the skip map ``res``, fused as
    ``w0 * Conv1x1(res) + w1 * x`` with ``w = ReLU(weights) / (sum + eps)``
    (learnable, init 1), then ConvBNReLU6 3x3."""

    def __init__(self, in_channels: int, channels: int, norm_cfg: dict,
                 act_cfg: dict, eps: float = 1e-8):
        super().__init__()
        self.pre_conv = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.weights = nn.Parameter(torch.ones(2))
        self.eps = eps
        self.post_conv = conv_bn(channels, channels, 3, norm_cfg, act_cfg)

    def fuse(self, x: Tensor, res: Tensor) -> Tensor:
        x = F.interpolate(
            x, size=res.shape[-2:], mode='bilinear', align_corners=False)
        weights = F.relu(self.weights)
        weights = weights / (weights.sum() + self.eps)
        return self.post_conv(weights[0] * self.pre_conv(res) +
                              weights[1] * x)

    def forward(self, x: Tensor, res: Tensor) -> Tensor:
        return self.fuse(x, res)


class FeatureRefinementHead(WeightedFusion):
    """FRH: :class:`WeightedFusion` with the stride-4 map, then
    ``ReLU6(Proj(PA(x) * x + CA(x) * x) + ConvBN_1x1(x))``: PA = depthwise
    3x3 conv + sigmoid, CA = GAP -> 1x1 (C -> C/16) -> ReLU6 -> 1x1 ->
    sigmoid (bias-free), Proj = separable 3x3 conv + BN."""

    def __init__(self, in_channels: int, channels: int, norm_cfg: dict,
                 act_cfg: dict):
        super().__init__(in_channels, channels, norm_cfg, act_cfg)
        self.pa = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels),
            nn.Sigmoid())
        self.ca = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, channels // 16, 1, bias=False), nn.ReLU6(),
            nn.Conv2d(channels // 16, channels, 1, bias=False), nn.Sigmoid())
        self.shortcut = conv_bn(channels, channels, 1, norm_cfg)
        self.proj = separable_conv_bn(channels, 3, norm_cfg)
        self.act = nn.ReLU6()

    def forward(self, x: Tensor, res: Tensor) -> Tensor:
        x = self.fuse(x, res)
        shortcut = self.shortcut(x)
        x = self.pa(x) * x + self.ca(x) * x
        return self.act(self.proj(x) + shortcut)


@MODELS.register_module()
class UNetFormerHead(NoBiasConvSegMixin, BaseDecodeHead):
    """UNetFormer decoder (MFNet), as an mmseg decode head.

    On 4 maps of strides 4, 8, 16, 32 (``in_index=[0, 1, 2, 3]``)::

        x = GLTB(ConvBN_1x1(x32))                 # -> channels
        x = GLTB(WF(x, x16)); x = GLTB(WF(x, x8))
        x = FRH(x, x4)
        logits = conv_seg(Dropout2d(ConvBNReLU6_3x3(x)))   # stride 4

    mmseg upsamples the logits to the input size (bilinear). The classifier
    has no bias (the reference's).

    Args:
        num_heads (int): Heads of the GLTBs. Defaults to 8.
        window_size (int): Attention window of the GLTBs. Defaults to 8.
        **kwargs: :class:`BaseDecodeHead` arguments (``in_channels`` list
            of 4, ``channels`` = decode channels (64), ``num_classes``,
            ``dropout_ratio`` (0.1), ``norm_cfg`` (BN), ``act_cfg``
            (default ReLU6)).

    Parameters: for 4 x 256 inputs, 64 channels, 6 classes: 515,102.
    """

    def __init__(self,
                 num_heads: int = 8,
                 window_size: int = 8,
                 act_cfg: dict = dict(type='ReLU6'),
                 **kwargs):
        kwargs.setdefault('norm_cfg', dict(type='BN'))
        super().__init__(
            input_transform='multiple_select', act_cfg=act_cfg, **kwargs)
        if len(self.in_channels) != 4:
            raise ValueError('UNetFormerHead: in_channels must list 4 maps '
                             f'(strides 4, 8, 16, 32), got {self.in_channels}')
        c, norm, act = self.channels, self.norm_cfg, self.act_cfg
        self.pre_conv = conv_bn(self.in_channels[3], c, 1, norm)
        self.b4 = GLTB(c, num_heads, window_size, norm)
        self.b3 = GLTB(c, num_heads, window_size, norm)
        self.p3 = WeightedFusion(self.in_channels[2], c, norm, act)
        self.b2 = GLTB(c, num_heads, window_size, norm)
        self.p2 = WeightedFusion(self.in_channels[1], c, norm, act)
        self.p1 = FeatureRefinementHead(self.in_channels[0], c, norm, act)
        self.head_conv = conv_bn(c, c, 3, norm, act)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        x4, x8, x16, x32 = self._transform_inputs(inputs)
        x = self.b4(self.pre_conv(x32))
        x = self.b3(self.p3(x, x16))
        x = self.b2(self.p2(x, x8))
        x = self.p1(x, x4)
        return self.cls_seg(self.head_conv(x))
