"""The two PEFT injection points of :class:`MultiStreamViT`.

A multi-stream backbone keeps its M modality streams stacked in one tensor
``(M, B, *S, C)``, ``*S`` being the shared block's own token layout (DINOv2:
``(1 + N,)`` with the CLS token first; SAM: ``(H, W)``).

- **Stage adapters** (``stage_adapter=dict(type=...)``, e.g. ``CPIA``): one
  per stage, called before the stage's first block as
  ``x = adapter(x, hw)`` with the patch tokens only, ``x`` of shape
  ``(M, B, N, C)`` and ``hw = (h, w)``, ``N = h * w``. Returns the same
  shape. Built with ``embed_dims`` and ``num_modalities`` filled in.
- **Block adapters** (``block_adapter=dict(type=...)``): one per shared
  block, each replacing the call of its block: ``x = adapter(block, x)``
  with the full streams ``(M, B, *S, C)`` (CLS included). The adapter owns
  how the frozen ``block`` is run, e.g. it runs the block's submodules
  (``ln1``, ``attn``, ``ln2``, ``ffn`` in both mmpretrain families) with
  per-modality adapters in between, or wraps its linears. The block itself
  is not a submodule of the adapter: the frozen weights stay in the encoder
  and the adapter's state dict holds only what it trains. Built with
  ``embed_dims``, ``num_modalities`` and ``layer_index`` filled in.
  :class:`BaseBlockAdapter` is the base to derive from.
"""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule


def run_shared_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run one shared block on all streams as a single batch.

    Args:
        block (nn.Module): A block taking ``(B', *S, C)``.
        x (Tensor): Streams ``(M, B, *S, C)``.

    Returns:
        Tensor: ``(M, B, *S, C)``, the block applied to every stream.
    """
    return block(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class BaseBlockAdapter(BaseModule):
    """Base of block-level adapters (see the module docstring).

    Args:
        embed_dims (int): Token width C of the shared block.
        num_modalities (int): Number of streams M.
        layer_index (int): Index of the wrapped block in the encoder.
        init_cfg (dict, optional): mmengine initialisation config.

    The default :meth:`forward` runs the block unchanged; subclasses
    override it.
    """

    def __init__(self,
                 embed_dims: int,
                 num_modalities: int,
                 layer_index: int,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.num_modalities = num_modalities
        self.layer_index = layer_index

    def forward(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Args: block, the frozen shared block; x, ``(M, B, *S, C)``.
        Returns the updated streams, same shape."""
        return run_shared_block(block, x)
