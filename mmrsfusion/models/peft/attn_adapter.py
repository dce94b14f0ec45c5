"""Per-modality adapter after a frozen attention (MFNet's Adapter and
MMAdapter, attention stage)."""
from typing import Optional

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from .bottleneck_adapter import BottleneckAdapter
from .wrapper import BasePEFTWrapper


@MODELS.register_module()
class AttnAdapter(BasePEFTWrapper):
    """Wraps a block's attention ``attn``: ``a = attn(x)``, then per
    modality ``a_m <- a_m + A_m(a_m)``. The attention runs on one
    modality's batch at a time (:meth:`forward_base`).

    In a SAM block the wrapped attention runs on the windows; the adapter
    acts per token, so that is the same as adapting before the windows are
    merged (MFNet's placement: after attention, before the residual).

    Args:
        module (nn.Module): The frozen attention, ``(M * B', ..., C)`` in
            and out (SAM ``(M*B', h, w, C)``, DINOv2 ``(M*B, N, C)``).
        num_modalities (int): M; one adapter per modality.
        embed_dims (int): C.
        ratio (float): Bottleneck ratio of :class:`BottleneckAdapter`.
            Defaults to 0.25.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 module: nn.Module,
                 num_modalities: int,
                 embed_dims: int,
                 ratio: float = 0.25,
                 init_cfg: Optional[dict] = None):
        super().__init__(module, num_modalities, init_cfg=init_cfg)
        self.adapters = nn.ModuleList(
            BottleneckAdapter(embed_dims, ratio)
            for _ in range(num_modalities))

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        out = self.forward_base(x, *args, **kwargs)
        adapters = self.adapters[self.modality_slice()]
        out = torch.stack(
            [o + adapter(o) for o, adapter in zip(out, adapters)])
        return out.flatten(0, 1)
