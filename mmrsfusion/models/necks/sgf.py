"""SGF: semantic-guided fusion of M modality feature maps (SGMA).

Per scale, for the modality maps ``f_m`` (C channels) of the modalities
present in a sample::

    f_se_m = MP_m(f_m)              # dw 11x11 -> dw 7x7 -> dw 3x3 -> pw 1x1
    c_m    = CSF(f_se_m)            # shared 1x1 conv C -> K classes
    p      = sum_{m, x} softmax_{m, x}(c_m(x)) f_se_m(x)        # (K, C)
    a(x)   = mean_k SP(query=p_k, keys=values={f_se_m(x)}_m)     # (C,)
    f(x), r(x) = RP(query=a(x), keys=values={f_se_m(x)}_m)

``SP`` and ``RP`` are multi-head attentions over the modalities at each
pixel; an absent modality is left out of their key/value set (a key
padding mask), of the prototype softmax and of the projectors. ``r_m(x)``,
RP's attention weight of modality m averaged over heads, is the
robustness map (0 where m is absent; sums to 1 over m).

Choices the paper leaves open (documented, not guessed silently):

- the projector's depth-wise convolutions run in sequence (11 -> 7 -> 3),
  each with a bias, then the point-wise one;
- the prototype weights are a softmax of the class scores over all pixels
  of all present modalities of the sample (OCR's spatial gather), one set
  of prototypes per sample;
- the fused map is RP's output itself (no residual, no norm).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmseg.registry import MODELS
from mmrsfusion.utils import ModalitySpec, count_modalities

Presence = Union[None, Tensor, Sequence[Tensor]]


class ModalityProjector(nn.Sequential):
    """Depth-wise 11x11, 7x7, 3x3 then point-wise 1x1 convolutions.

    Shapes: (N, C, h, w) -> (N, C, h, w).
    Parameters: ``C * (121 + 49 + 9 + 3) + C * C + C``.
    """

    def __init__(self, channels: int, kernels: Sequence[int] = (11, 7, 3)):
        layers = [
            nn.Conv2d(channels, channels, k, padding=k // 2, groups=channels)
            for k in kernels
        ]
        layers.append(nn.Conv2d(channels, channels, 1))
        super().__init__(*layers)


class SGF(BaseModule):
    """Semantic-guided fusion at one scale.

    Args:
        channels (int): C of every modality map and of the output.
        num_modalities (int): M (one projector each).
        num_classes (int): K, the class-aware semantic filter's outputs.
        sp_heads (int): Heads of the Spatial Perceptron. Defaults to 8.
        rp_heads (int): Heads of the Robustness Perceptron. Defaults to 4.
        kernels (Sequence[int]): Depth-wise kernels of the projectors.

    Shapes:
        forward: feats (M, B, C, h, w), presence (B, M) bool ->
        fused (B, C, h, w), robustness (B, M, h, w).
    """

    def __init__(self,
                 channels: int,
                 num_modalities: int,
                 num_classes: int,
                 sp_heads: int = 8,
                 rp_heads: int = 4,
                 kernels: Sequence[int] = (11, 7, 3),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, heads in (('sp_heads', sp_heads), ('rp_heads', rp_heads)):
            if channels % heads:
                raise ValueError(f'SGF: channels ({channels}) must be '
                                 f'divisible by {name} ({heads})')
        self.channels = channels
        self.num_modalities = num_modalities
        self.projectors = nn.ModuleList(
            ModalityProjector(channels, kernels)
            for _ in range(num_modalities))
        self.semantic_filter = nn.Conv2d(channels, num_classes, 1)
        self.spatial_perceptron = nn.MultiheadAttention(
            channels, sp_heads, batch_first=True)
        self.robustness_perceptron = nn.MultiheadAttention(
            channels, rp_heads, batch_first=True)

    def project(self, feats: Tensor, presence: Tensor) -> Tensor:
        """Each present (modality, sample) map through its modality's
        projector; absent entries stay 0 and are never computed."""
        out = feats.new_zeros(feats.shape)
        for m, projector in enumerate(self.projectors):
            idx = presence[:, m].nonzero().squeeze(1)
            if idx.numel():
                out[m, idx] = projector(feats[m, idx])
        return out

    def prototypes(self, f_se: Tensor, presence: Tensor) -> Tensor:
        """Global class prototypes (B, K, C) of each sample."""
        m, b, c, h, w = f_se.shape
        scores = self.semantic_filter(f_se.flatten(0, 1)).unflatten(0, (m, b))
        scores = scores.masked_fill(~presence.t()[..., None, None, None],
                                    float('-inf'))
        # (B, K, M*h*w): softmax over every pixel of the present modalities
        weights = scores.permute(1, 2, 0, 3, 4).flatten(2).softmax(dim=2)
        values = f_se.permute(1, 0, 3, 4, 2).reshape(b, m * h * w, c)
        return torch.bmm(weights, values)

    def forward(self, feats: Tensor,
                presence: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        m, b, c, h, w = feats.shape
        if m != self.num_modalities or c != self.channels:
            raise ValueError(
                f'SGF: expected (M={self.num_modalities}, B, '
                f'C={self.channels}, h, w) features, got {tuple(feats.shape)}')
        if presence is None:
            presence = feats.new_ones((b, m), dtype=torch.bool)
        f_se = self.project(feats, presence)
        protos = self.prototypes(f_se, presence)  # (B, K, C)
        k = protos.shape[1]
        # per pixel: the M modality tokens as keys / values
        tokens = f_se.permute(1, 3, 4, 0, 2).reshape(b * h * w, m, c)
        absent = (~presence).repeat_interleave(h * w, dim=0)  # (BHW, M)
        queries = protos[:, None].expand(b, h * w, k, c).reshape(-1, k, c)
        spatial, _ = self.spatial_perceptron(
            queries, tokens, tokens, key_padding_mask=absent,
            need_weights=False)
        query = spatial.mean(dim=1, keepdim=True)  # (BHW, 1, C)
        fused, weights = self.robustness_perceptron(
            query, tokens, tokens, key_padding_mask=absent,
            need_weights=True, average_attn_weights=True)
        fused = fused.reshape(b, h, w, c).permute(0, 3, 1, 2)
        robustness = weights.reshape(b, h, w, m).permute(0, 3, 1, 2)
        return fused.contiguous(), robustness.contiguous()


@MODELS.register_module()
class SGFNeck(BaseModule):
    """SGF at every scale of a multi-stream backbone (SGMA's neck).

    Reads the per-stage (M, B, C_s, h_s, w_s) maps of
    :class:`MultiStreamEncoder` or :class:`MultiStreamViT` and returns one
    fused (B, C_s, h_s, w_s) map per stage for any mmseg decode head.

    Args:
        in_channels (Sequence[int]): C_s of each stage.
        num_classes (int): K of the class-aware semantic filter.
        modalities (ModalitySpec, optional): The model's spec (handed down
            by the segmentor); M is its length.
        num_modalities (int, optional): M, when built without a spec.
        sp_heads (int): Spatial Perceptron heads. Defaults to 8.
        rp_heads (int): Robustness Perceptron heads. Defaults to 4.
        kernels (Sequence[int]): Projector depth-wise kernels.
        init_cfg (dict, optional): Initialisation config.

    ``forward(inputs, presence=None, return_robustness=False)``:
    ``presence`` is None (all present), one (B, M) bool mask for every
    stage, or a sequence of one mask per stage (SGMA's modality-aware
    sampling picks a modality per stage). With ``return_robustness`` it
    returns ``(fused, robustness)``, ``robustness`` being one (B, M, h_s,
    w_s) map per stage.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_classes: int,
                 modalities: Optional[ModalitySpec] = None,
                 num_modalities: Optional[int] = None,
                 sp_heads: int = 8,
                 rp_heads: int = 4,
                 kernels: Sequence[int] = (11, 7, 3),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = list(in_channels)
        self.num_modalities = num_modalities = count_modalities(
            modalities, num_modalities, 'SGFNeck')
        self.fusions = nn.ModuleList(
            SGF(c, num_modalities, num_classes, sp_heads, rp_heads, kernels)
            for c in self.in_channels)

    def forward(self,
                inputs: Sequence[Tensor],
                presence: Presence = None,
                return_robustness: bool = False):
        if len(inputs) != len(self.fusions):
            raise ValueError(f'SGFNeck: expected {len(self.fusions)} stages, '
                             f'got {len(inputs)}')
        if presence is None or isinstance(presence, Tensor):
            presence = [presence] * len(inputs)
        fused: List[Tensor] = []
        robustness: List[Tensor] = []
        for sgf, feats, mask in zip(self.fusions, inputs, presence):
            if feats.dim() != 5:
                raise ValueError(f'SGFNeck: expected (M, B, C, h, w) stage '
                                 f'maps, got shape {tuple(feats.shape)}')
            out, rob = sgf(feats, mask)
            fused.append(out)
            robustness.append(rob)
        if return_robustness:
            return tuple(fused), tuple(robustness)
        return tuple(fused)
