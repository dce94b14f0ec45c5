"""Adapter beside a frozen MLP (MFNet's Adapter and MMAdapter, MLP
stage)."""
from typing import Optional

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from .bottleneck_adapter import BottleneckAdapter
from .wrapper import BasePEFTWrapper, CrossModalMixin


@MODELS.register_module()
class FFNAdapter(CrossModalMixin, BasePEFTWrapper):
    """Wraps a block's FFN ``ffn(n, identity=x)`` (mmcv/mmpretrain FFN,
    ``x + MLP(n)``, ``n = LN2(x)``) and adds per-modality adapters of
    ``n``:

    - ``cross_modal=False`` (Adapter): ``x_m + MLP(n_m) + s * A_m(n_m)``;
    - ``cross_modal=True`` (MMAdapter, 2 modalities)::

        x + MLP(n_x) + l_x * A_x(n_x) + (1 - l_x) * A_y(n_y)
        y + MLP(n_y) + l_y * A_y(n_y) + (1 - l_y) * A_x(n_x)

      ``l_x, l_y`` learnable scalars, initialised to 0.5.

    The MLP runs on one modality's batch at a time (:meth:`forward_base`).

    Args:
        module (nn.Module): The frozen FFN, ``(M * B', ..., C)``.
        num_modalities (int): M; one adapter per modality.
        embed_dims (int): C.
        ratio (float): Bottleneck ratio. Defaults to 0.25.
        scale (float): ``s`` (``cross_modal=False`` only). Defaults to 0.5.
        cross_modal (bool): MMAdapter's mixing. Defaults to False.
        init_cfg (dict, optional): mmengine initialisation config.

    Parameters: M adapters (+ 2 scalars when cross-modal): 591,746 for
    C = 768, M = 2, cross-modal.
    """

    def __init__(self,
                 module: nn.Module,
                 num_modalities: int,
                 embed_dims: int,
                 ratio: float = 0.25,
                 scale: float = 0.5,
                 cross_modal: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(module, num_modalities, init_cfg=init_cfg)
        self.adapters = nn.ModuleList(
            BottleneckAdapter(embed_dims, ratio)
            for _ in range(num_modalities))
        self.cross_modal = cross_modal
        self.scale = scale
        if cross_modal:
            self._init_mixing()

    def forward(self,
                x: torch.Tensor,
                identity: Optional[torch.Tensor] = None) -> torch.Tensor:
        out = self.forward_base(x, identity=identity)
        adapters = self.adapters[self.modality_slice()]
        update = torch.stack(
            [adapter(n) for n, adapter in zip(self.split(x), adapters)])
        if self.cross_modal:
            update = self.mix_modalities(update)
        else:
            update = self.scale * update
        return (out + update).flatten(0, 1)
