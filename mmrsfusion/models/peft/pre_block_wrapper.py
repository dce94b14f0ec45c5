"""Runs a stage adapter (e.g. :class:`CPIA`) on a frozen block's input
(MoBaNet: before the first block of each stage)."""
from typing import Optional

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from .wrapper import BasePEFTWrapper


@MODELS.register_module()
class PreBlockWrapper(BasePEFTWrapper):
    """Wraps a frozen block; updates the patch tokens of all streams with
    ``adapter`` before the block runs.

    The block input ``(M * B, *S, C)`` is split into the streams ``(M, B,
    *S, C)``, ``S`` flattened to ``E + N`` tokens (``E`` extra tokens
    first, e.g. DINOv2's CLS; SAM's ``(h, w)`` grid: ``E = 0``); the
    adapter maps the patch tokens ``(M, B, N, C)`` to the same shape, the
    extra tokens pass unchanged.

    The adapter is held by reference, not as a submodule: its owner (e.g.
    ``MultiStreamViT.stage_adapters``) keeps its state-dict keys, parameter
    names and train mode; the wrapper itself adds no key.

    Args:
        module (nn.Module): The frozen block, ``(M * B, *S, C)`` in and
            out.
        adapter (nn.Module): Patch tokens ``(M, B, N, C)`` -> same shape.
        num_modalities (int): M.
        num_extra_tokens (int): ``E``. Defaults to 0.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 module: nn.Module,
                 adapter: nn.Module,
                 num_modalities: int,
                 num_extra_tokens: int = 0,
                 init_cfg: Optional[dict] = None):
        super().__init__(module, num_modalities, init_cfg=init_cfg)
        self.__dict__['adapter'] = adapter  # by reference: not registered
        self.num_extra_tokens = num_extra_tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x, the block input ``(M * B, *S, C)``. Returns the block
        applied to the updated tokens, ``(M * B, *S, C)``."""
        streams = self.split(x)
        tokens = streams.flatten(2, -2)  # (M, B, E + N, C)
        e = self.num_extra_tokens
        patches = self.adapter(tokens[:, :, e:])
        tokens = torch.cat([tokens[:, :, :e], patches], dim=2) if e \
            else patches
        return self.base(
            tokens.unflatten(2, streams.shape[2:-1]).flatten(0, 1))

    def extra_repr(self) -> str:
        return f'adapter={type(self.adapter).__name__} (by reference)'
