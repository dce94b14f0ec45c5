"""Resizing a pretrained ViT position embedding to the token grid."""
from typing import Sequence

import torch
import torch.nn.functional as F

#: DINOv2's ``interpolate_offset``.
DINOV2_OFFSET = 0.1
#: The rules ``MultiStreamViT(pos_embed_resize=...)`` offers: this module's
#: :func:`resize_pos_embed_dinov2`, or mmpretrain's ``resize_pos_embed``
#: (bicubic to ``size=(h, w)``).
POS_EMBED_RESIZES = ('dinov2', 'size')


def resize_pos_embed_dinov2(pos_embed: torch.Tensor,
                            src_shape: Sequence[int],
                            dst_shape: Sequence[int],
                            num_extra_tokens: int = 1) -> torch.Tensor:
    """Resize a position embedding the way the official DINOv2 code does.

    ``DinoVisionTransformer.interpolate_pos_encoding`` (github
    facebookresearch/dinov2, ``interpolate_offset=0.1``,
    ``interpolate_antialias=False``): the grid is returned unchanged when
    the token grid equals it; otherwise it is resized bicubically
    (``align_corners=False``, no antialiasing, in float32) with
    ``scale_factor = ((h + 0.1) / H0, (w + 0.1) / W0)``, not with
    ``size=(h, w)``. PyTorch then maps output pixel ``i`` to
    ``(i + 0.5) / scale - 0.5``, so the sampling points differ from those
    of ``size=(h, w)`` even where the output sizes agree. (DINOv2's grid is
    square, 37 x 37; a non-square ``src_shape`` gets one factor per axis.)

    Args:
        pos_embed (Tensor): ``(1, E + H0 * W0, C)``, the ``E`` extra tokens'
            positions first.
        src_shape (Sequence[int]): ``(H0, W0)``, the stored grid.
        dst_shape (Sequence[int]): ``(h, w)``, the token grid.
        num_extra_tokens (int): ``E`` (1 for DINOv2's CLS token), kept
            unresized.

    Returns:
        Tensor: ``(1, E + h * w, C)``, in ``pos_embed``'s dtype.
    """
    (src_h, src_w), (dst_h, dst_w) = src_shape, dst_shape
    if (src_h, src_w) == (dst_h, dst_w):
        return pos_embed
    extra = pos_embed[:, :num_extra_tokens]
    grid = pos_embed[:, num_extra_tokens:].float()
    grid = grid.reshape(1, src_h, src_w, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid,
        scale_factor=((dst_h + DINOV2_OFFSET) / src_h,
                      (dst_w + DINOV2_OFFSET) / src_w),
        mode='bicubic',
        antialias=False)
    assert grid.shape[-2:] == (dst_h, dst_w)  # floor(h + 0.1) == h
    grid = grid.flatten(2).transpose(1, 2).to(pos_embed.dtype)
    return torch.cat([extra, grid], dim=1)

