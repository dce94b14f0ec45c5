"""DFM: MFNet's deep fusion module (per-modality simple pyramid + SE
fusion per level)."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmseg.models.utils import SELayer
from mmseg.registry import MODELS
from mmrsfusion.utils import ModalitySpec, count_modalities
from torch import Tensor


@MODELS.register_module()
class DFMNeck(BaseModule):
    """Deep fusion module of MFNet on the last backbone map.

    Per modality m, a simple pyramid from the stride-16 map ``X_m``
    (B, C, h, w)::

        P1 = ConvT(2, 2) -> norm -> GELU -> ConvT(2, 2)   # x4: (4h, 4w)
        P2 = ConvT(2, 2)                                  # x2
        P3 = identity                                     # x1
        P4 = MaxPool(2)                                   # x0.5

    then per level ``F_l = sum_m SE_{l,m}(P_{l,m})`` with the
    squeeze-and-excitation ``SE(x) = x * sigmoid(W2 ReLU(W1 GAP(x)))``
    (mmseg's ``SELayer``, 1x1 convs with bias, C -> C/16 -> C).

    Args:
        in_channels (int): C, the channels of the backbone map. Defaults to
            256 (the SAM neck).
        modalities (ModalitySpec, optional): The model's spec (handed down
            by the segmentor); M is its length.
        num_modalities (int, optional): M, when built without a spec.
        norm_cfg (dict): The norm inside the x4 branch, one type for all
            modalities (the reference uses LayerNorm for RGB and BatchNorm
            for the DSM). Defaults to ``dict(type='mmpretrain.LN2d',
            eps=1e-6)``.
        se_ratio (int): SE squeeze ratio. Defaults to 16.
        in_index (int): Which backbone output to use. Defaults to -1.
        init_cfg (dict, optional): mmengine initialisation config.

    Forward: a tuple of backbone outputs, ``inputs[in_index]`` of shape
    ``(M, B, C, h, w)`` -> 4 maps ``(B, C, 4h, 4w)``, ``(B, C, 2h, 2w)``,
    ``(B, C, h, w)``, ``(B, C, h/2, w/2)``.

    Parameters: for C = 256, M = 2: 1,643,136.
    """

    def __init__(self,
                 in_channels: int = 256,
                 modalities: Optional[ModalitySpec] = None,
                 num_modalities: Optional[int] = None,
                 norm_cfg: dict = dict(type='mmpretrain.LN2d', eps=1e-6),
                 se_ratio: int = 16,
                 in_index: int = -1,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        c = in_channels
        self.in_channels = c
        self.num_modalities = num_modalities = count_modalities(
            modalities, num_modalities, 'DFMNeck')
        self.in_index = in_index

        def pyramid() -> nn.ModuleList:
            return nn.ModuleList([
                nn.Sequential(
                    nn.ConvTranspose2d(c, c, 2, stride=2),
                    build_norm_layer(norm_cfg, c)[1], nn.GELU(),
                    nn.ConvTranspose2d(c, c, 2, stride=2)),
                nn.ConvTranspose2d(c, c, 2, stride=2),
                nn.Identity(),
                nn.MaxPool2d(2, stride=2),
            ])

        self.pyramids = nn.ModuleList(
            pyramid() for _ in range(num_modalities))
        se_act = (dict(type='ReLU'), dict(type='Sigmoid'))
        self.fusions = nn.ModuleList(
            nn.ModuleList(
                SELayer(c, ratio=se_ratio, act_cfg=se_act)
                for _ in range(num_modalities)) for _ in range(4))

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        x = inputs[self.in_index]
        if x.ndim != 5 or x.shape[0] != self.num_modalities or \
                x.shape[2] != self.in_channels:
            raise ValueError(
                f'DFMNeck expects (M={self.num_modalities}, B, '
                f'C={self.in_channels}, h, w) maps, got {tuple(x.shape)}')
        outs: List[Tensor] = []
        for level, se in enumerate(self.fusions):
            outs.append(
                sum(se_m(pyr[level](x_m))
                    for x_m, pyr, se_m in zip(x, self.pyramids, se)))
        return tuple(outs)
