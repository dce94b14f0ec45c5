"""The two PEFT injection mechanisms of :class:`MultiStreamViT`.

A multi-stream backbone keeps its M modality streams stacked in one tensor
``(M, B, *S, C)``, ``*S`` being the shared block's own token layout (DINOv2:
``(1 + N,)`` with the CLS token first; SAM: ``(H, W)``), and runs each
shared block on them as one modality-major batch ``(M * B, *S, C)``
(:func:`run_shared_block`).

- **Stage adapters** (``stage_adapter=dict(type=...)``, e.g. ``CPIA``): one
  per stage, called before the stage's first block as
  ``x = adapter(x, hw)`` with the patch tokens only, ``x`` of shape
  ``(M, B, N, C)`` and ``hw = (h, w)``, ``N = h * w``. Returns the same
  shape. Built with ``embed_dims`` and ``num_modalities`` filled in.
- **In-block wrappers** (``peft=[dict(type=..., targets=...), ...]``, e.g.
  ``LoRALinear``, ``AttnAdapter``, ``FFNAdapter``): submodules of the frozen
  encoder chosen by name pattern are replaced in place by wrappers
  (:func:`~mmrsfusion.models.peft.inject_peft`), which see the stacked
  batch ``(M * B', ...)`` and apply per-modality weights and cross-modal
  mixing; each family's block forward runs unchanged. Built with
  ``num_modalities`` and ``embed_dims`` filled in.
"""
import torch
import torch.nn as nn


def run_shared_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run one shared block on all streams as a single batch.

    Args:
        block (nn.Module): A block taking ``(B', *S, C)``.
        x (Tensor): Streams ``(M, B, *S, C)``.

    Returns:
        Tensor: ``(M, B, *S, C)``, the block applied to every stream.
    """
    return block(x.flatten(0, 1)).unflatten(0, x.shape[:2])
