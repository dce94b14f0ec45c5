"""DGFM: difference-gated fusion of two modality feature maps (MoBaNet).

Per stage, the optical map ``X`` and the auxiliary map ``Y`` (both
(B, C, h, w)) are fused as::

    r, d = Conv1x1(X), Conv1x1(Y)                       # C -> C' = C / 8
    G    = sigmoid(Conv1x1(GELU(GN(Conv1x1([r; d; |r - d|])))))  # -> C
    F    = LayerNorm_C(G * X + (1 - G) * Y)

The last gate convolution is zero-initialised, so ``G`` starts at 0.5 and
the module starts as the mean of its inputs (followed by the LayerNorm).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.models.utils import LayerNorm2d
from torch import Tensor

from mmseg.registry import MODELS


class DGFM(BaseModule):
    """Difference-gated fusion module for one stage.

    Args:
        channels (int): Channels ``C`` of both inputs and of the output.
        reduction (int): ``C' = C // reduction``. Defaults to 8.
        norm_eps (float): Epsilon of the output LayerNorm. Defaults to 1e-5.
        init_cfg (dict, optional): Initialisation config. Whatever it does,
            :meth:`init_weights` zero-initialises the last gate convolution
            afterwards, so the gate starts at 0.5.

    Shapes:
        x, y: (B, C, h, w) -> (B, C, h, w).

    Parameters: ``2*C*C' + 3*C'*C' + 2*C' + C'*C + C`` for the gate
    (249,792 for C=768) plus ``2*C`` for the LayerNorm ``norm``.
    """

    def __init__(self,
                 channels: int,
                 reduction: int = 8,
                 norm_eps: float = 1e-5,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if channels % reduction:
            raise ValueError(f'DGFM: channels ({channels}) must be divisible '
                             f'by reduction ({reduction})')
        hidden = channels // reduction
        self.channels = channels
        self.hidden_channels = hidden
        self.reduce_x = nn.Conv2d(channels, hidden, 1, bias=False)
        self.reduce_y = nn.Conv2d(channels, hidden, 1, bias=False)
        self.gate = nn.Sequential(
            nn.Conv2d(3 * hidden, hidden, 1, bias=False),
            nn.GroupNorm(1, hidden),
            nn.GELU(),
            nn.Conv2d(hidden, channels, 1, bias=True),
            nn.Sigmoid(),
        )
        self.norm = LayerNorm2d(channels, eps=norm_eps)
        self._zero_init_gate()

    def _zero_init_gate(self) -> None:
        last = self.gate[3]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def init_weights(self) -> None:
        super().init_weights()
        self._zero_init_gate()

    def compute_gate(self, x: Tensor, y: Tensor) -> Tensor:
        """The gate ``G`` (B, C, h, w), values in (0, 1)."""
        r, d = self.reduce_x(x), self.reduce_y(y)
        return self.gate(torch.cat([r, d, (r - d).abs()], dim=1))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        g = self.compute_gate(x, y)
        return self.norm(g * x + (1 - g) * y)


@MODELS.register_module()
class DGFMNeck(BaseModule):
    """Per-stage fusion of multi-stream features, then a shared projection.

    Input is the multi-stream backbone output: a sequence of S tensors, one
    per stage, each (M, B, C_s, h, w) with the M modalities in spec order.
    For each stage the modalities are fused (``'dgfm'``: :class:`DGFM` with
    the first modality as ``X`` and the second as ``Y``, M must be 2;
    ``'mean'``: the mean over the M modalities, no parameters), then one
    1x1 convolution ``C_s -> out_channels`` without bias, shared by the
    fused map and the per-modality maps of that stage, projects it.

    Args:
        in_channels (int | Sequence[int]): Channels per stage; an int is
            used for all ``num_stages`` stages.
        out_channels (int): Projected channels. Defaults to 256.
        num_stages (int): Number of stages when ``in_channels`` is an int.
            Defaults to 4.
        fusion (str): ``'dgfm'`` (default) or ``'mean'`` (the Base ablation).
        reduction (int): DGFM channel reduction. Defaults to 8.
        norm_eps (float): Epsilon of DGFM's LayerNorm. Defaults to 1e-5.
        init_cfg (dict, optional): Initialisation config.

    ``forward(inputs)`` returns the S fused maps (B, out_channels, h, w);
    ``forward(inputs, return_modalities=True)`` returns ``(fused, modal)``,
    ``modal`` being S tensors (M, B, out_channels, h, w): the projected
    per-modality maps that auxiliary heads use in training.
    """

    FUSIONS = ('dgfm', 'mean')

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 out_channels: int = 256,
                 num_stages: int = 4,
                 fusion: str = 'dgfm',
                 reduction: int = 8,
                 norm_eps: float = 1e-5,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if fusion not in self.FUSIONS:
            raise ValueError(f'DGFMNeck.fusion: expected one of '
                             f'{self.FUSIONS}, got {fusion!r}')
        if isinstance(in_channels, int):
            in_channels = [in_channels] * num_stages
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.fusion = fusion
        if fusion == 'dgfm':
            self.fusions = nn.ModuleList(
                DGFM(c, reduction=reduction, norm_eps=norm_eps)
                for c in self.in_channels)
        self.projections = nn.ModuleList(
            nn.Conv2d(c, out_channels, 1, bias=False)
            for c in self.in_channels)

    def fuse(self, stage: int, feats: Tensor) -> Tensor:
        """Fuse the (M, B, C, h, w) maps of ``stage`` into (B, C, h, w)."""
        if self.fusion == 'mean':
            return feats.mean(dim=0)
        if feats.shape[0] != 2:
            raise ValueError(f"DGFMNeck(fusion='dgfm') fuses exactly 2 "
                             f'modalities, got {feats.shape[0]} at stage '
                             f"{stage}; use fusion='mean' for more")
        return self.fusions[stage](feats[0], feats[1])

    def forward(
        self,
        inputs: Sequence[Tensor],
        return_modalities: bool = False
    ) -> Union[Tuple[Tensor, ...], Tuple[Tuple[Tensor, ...], Tuple[Tensor,
                                                                   ...]]]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'DGFMNeck: expected {len(self.in_channels)} '
                             f'stages, got {len(inputs)}')
        fused_outs: List[Tensor] = []
        modal_outs: List[Tensor] = []
        for s, feats in enumerate(inputs):
            if feats.dim() != 5:
                raise ValueError(f'DGFMNeck: stage {s} expected an (M, B, '
                                 f'C, h, w) tensor, got shape '
                                 f'{tuple(feats.shape)}')
            fused = self.fuse(s, feats)
            proj = self.projections[s]
            if not return_modalities:
                fused_outs.append(proj(fused))
                continue
            m, b = feats.shape[:2]
            # one convolution over [fused; modality 1; ...; modality M]
            out = proj(torch.cat([fused, feats.flatten(0, 1)], dim=0))
            fused_outs.append(out[:b])
            modal_outs.append(out[b:].unflatten(0, (m, b)))
        if return_modalities:
            return tuple(fused_outs), tuple(modal_outs)
        return tuple(fused_outs)
