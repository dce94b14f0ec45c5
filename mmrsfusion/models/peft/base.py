"""The PEFT injection mechanism of :class:`MultiStreamViT`.

A multi-stream backbone keeps its M modality streams stacked in one tensor
``(M, B, *S, C)``, ``*S`` being the shared block's own token layout (DINOv2:
``(1 + N,)`` with the CLS token first; SAM: ``(H, W)``), and runs each
shared block on them as one modality-major batch ``(M * B, *S, C)``
(:func:`run_shared_block`). Its forward is one loop over the blocks.

Every PEFT method is a wrapper (:class:`BasePEFTWrapper`) that replaces a
submodule of the frozen encoder in place
(:func:`~mmrsfusion.models.peft.inject_peft`); it sees the stacked batch
``(M * B', ...)`` and applies per-modality weights and cross-modal mixing,
while each family's block forward runs unchanged. Built with
``num_modalities`` (and ``embed_dims`` where taken) filled in.

- **In-block wrappers** (``peft=[dict(type=..., targets=...), ...]``, e.g.
  ``LoRALinear``, ``AttnAdapter``, ``FFNAdapter``): submodules chosen by
  name pattern.
- **Stage adapters** (``stage_adapter=dict(type=...)``, e.g. ``CPIA``): one
  per stage, built with ``embed_dims`` and ``num_modalities`` filled in and
  called as ``x = adapter(x)`` on the patch tokens only, ``x`` of shape
  ``(M, B, N, C)``, same shape out. The first block of each stage is
  wrapped by a :class:`PreBlockWrapper` that runs the stage's adapter
  before it (outermost, around any in-block wrapper).
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
