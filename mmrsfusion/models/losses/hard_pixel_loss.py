"""Hard-pixel auxiliary cross-entropy (MoBaNet's MCRM supervision)."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.models.utils import resize
from mmseg.registry import MODELS


@MODELS.register_module()
class HardPixelCrossEntropyLoss(nn.Module):
    """Cross-entropy of an auxiliary prediction on the main prediction's
    hard pixels.

    The hard pixels are ``Omega = {p : argmax(main_logits)[p] != label[p],
    label[p] != ignore_index}``, with ``main_logits`` bilinearly upsampled
    to the label's resolution when they differ. The loss is the
    (class-weighted) mean cross-entropy of ``aux_logits`` over ``Omega``,
    times ``loss_weight`` (MoBaNet's ``lambda_aux``). When ``Omega`` is
    empty it is an exact 0 that still belongs to ``aux_logits``' graph, so
    ``backward()`` works and gives zero gradients. ``Omega`` is computed
    without gradient: ``main_logits`` receive none through this loss.

    Args:
        loss_weight (float): ``lambda_aux``. Defaults to 0.01 (MoBaNet).
        ignore_index (int): Label value that is never a hard pixel.
            Defaults to 255.
        class_weight (Sequence[float], optional): Per-class weights, as in
            :func:`torch.nn.functional.cross_entropy` (the mean is then
            weighted). Defaults to None.
        align_corners (bool): For the upsampling of logits. Defaults to
            False.
        loss_name (str): Key of the loss; must start with ``loss_`` to be
            added to the total loss. Defaults to ``'loss_hard_ce'``.

    Shapes:
        aux_logits, main_logits: (B, K, h, w); label: (B, H, W) or
        (B, 1, H, W), integer.
    """

    def __init__(self,
                 loss_weight: float = 0.01,
                 ignore_index: int = 255,
                 class_weight: Optional[Sequence[float]] = None,
                 align_corners: bool = False,
                 loss_name: str = 'loss_hard_ce'):
        super().__init__()
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self.class_weight = None if class_weight is None else \
            list(class_weight)
        self.align_corners = align_corners
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def _to_label_size(self, logits: Tensor, size) -> Tensor:
        if logits.shape[2:] == size:
            return logits
        return resize(
            logits, size=size, mode='bilinear',
            align_corners=self.align_corners)

    @torch.no_grad()
    def hard_mask(self, main_logits: Tensor, label: Tensor) -> Tensor:
        """Boolean (B, H, W) mask of the hard pixels ``Omega``."""
        label = label.squeeze(1) if label.dim() == 4 else label
        pred = self._to_label_size(main_logits, label.shape[1:]).argmax(1)
        return (pred != label) & (label != self.ignore_index)

    def forward(self,
                aux_logits: Tensor,
                main_logits: Tensor,
                label: Tensor,
                hard_mask: Optional[Tensor] = None) -> Tensor:
        """``hard_mask``: :meth:`hard_mask` of ``main_logits`` and
        ``label`` when the caller has it already (several auxiliary heads
        share one); computed otherwise."""
        label = label.squeeze(1) if label.dim() == 4 else label
        label = label.long()
        omega = self.hard_mask(main_logits, label) if hard_mask is None \
            else hard_mask
        aux_logits = self._to_label_size(aux_logits, label.shape[1:])
        # label with every pixel outside Omega ignored
        target = torch.where(omega, label, self.ignore_index)
        class_weight = None
        if self.class_weight is not None:
            class_weight = aux_logits.new_tensor(self.class_weight)
        total = F.cross_entropy(
            aux_logits,
            target,
            weight=class_weight,
            ignore_index=self.ignore_index,
            reduction='sum')
        if class_weight is None:
            denom = omega.sum().to(total.dtype)
        else:
            denom = class_weight[label[omega]].sum()
        # an empty Omega gives 0 / 1: an exact zero with a valid graph
        denom = torch.where(denom > 0, denom, torch.ones_like(denom))
        return self.loss_weight * total / denom
