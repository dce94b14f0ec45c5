"""LoRA on a frozen linear, per modality, optionally mixed across
modalities (MFNet's LoRA and MMLoRA)."""
import math
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from .wrapper import BasePEFTWrapper, CrossModalMixin


@MODELS.register_module()
class LoRALinear(CrossModalMixin, BasePEFTWrapper):
    """Wraps a frozen ``nn.Linear`` ``W, b`` with a rank-``r`` update per
    modality and per enabled output group.

    The output features split into ``G = len(enable)`` equal groups (e.g.
    q, k, v of a fused ``qkv``); each enabled group ``g`` has its own
    ``A_{m,g}`` (r x in, kaiming-uniform) and ``B_{m,g}`` (out/G x r,
    zero), so the wrapped layer starts equal to the frozen one. With
    ``u_m = s * B_m A_m x_m`` (``s = alpha / r``) on the enabled groups:

    - ``cross_modal=False`` (LoRA; MMLoRA's q, v): ``W x_m + b + u_m``;
    - ``cross_modal=True`` (MMLoRA's MLP linears, 2 modalities)::

        out_x = W x + b + l_x * u_x + (1 - l_x) * u_y
        out_y = W y + b + l_y * u_y + (1 - l_y) * u_x

      ``l_x, l_y`` learnable, initialised to 0.5.

    The frozen linear runs on one modality's batch at a time
    (:meth:`forward_base`), as the update does.

    A non-cross-modal LoRA can be merged for inference (:meth:`merge`):
    per modality the weight ``W + s B_m A_m`` is formed once and the
    forward is one plain linear per modality. Merged weights are not saved
    (non-persistent buffer); switching to train mode or loading a state
    dict unmerges, and a merged forward that would need gradients for the
    LoRA raises (it would send none).

    Args:
        module (nn.Linear): The frozen linear.
        num_modalities (int): M; one LoRA per modality.
        rank (int): r. Defaults to 4.
        alpha (float): Scaling ``s = alpha / r``. Defaults to 1 (MFNet's
            q/v LoRA, s = 0.25; its cross-modal MLP LoRA is unscaled:
            alpha = r).
        enable (Sequence[bool]): Which output groups get a LoRA. Defaults to
            ``(True, )`` (all outputs); ``(True, False, True)`` on ``qkv``:
            q and v.
        cross_modal (bool): MMLoRA's mixing. Defaults to False.
        init_cfg (dict, optional): mmengine initialisation config.

    Parameters: ``M * (G_e * r * in + G_e * out / G * r)`` (+ 2 when
    cross-modal), ``G_e`` the enabled groups: ViT-B qkv with q, v: 24,576.
    """

    def __init__(self,
                 module: nn.Linear,
                 num_modalities: int,
                 rank: int = 4,
                 alpha: float = 1.,
                 enable: Sequence[bool] = (True, ),
                 cross_modal: bool = False,
                 init_cfg: Optional[dict] = None):
        if not isinstance(module, nn.Linear):
            raise TypeError(f'LoRALinear wraps an nn.Linear, got '
                            f'{type(module).__name__}')
        super().__init__(module, num_modalities, init_cfg=init_cfg)
        enable = [bool(e) for e in enable]
        out_features, in_features = module.weight.shape
        if not any(enable) or out_features % len(enable):
            raise ValueError(
                f'LoRALinear.enable: expected groups that divide the '
                f'{out_features} outputs with at least one enabled, got '
                f'{enable}')
        self.rank = rank
        self.scaling = alpha / rank
        self.cross_modal = cross_modal
        self.num_groups = sum(enable)
        group = out_features // len(enable)
        self.group_features = group
        # [output start, update start, length] of each run of consecutive
        # enabled groups (q, v of qkv: 2 runs; all outputs: 1): the update
        # is added to these slices in place (see :meth:`_add_update`)
        self.lora_runs, start = [], 0
        for g, on in enumerate(enable):
            if not on:
                continue
            last = self.lora_runs[-1] if self.lora_runs else None
            if last is not None and last[0] + last[2] == g * group:
                last[2] += group
            else:
                self.lora_runs.append([g * group, start, group])
            start += group
        self.lora_a = nn.Parameter(
            torch.empty(num_modalities, self.num_groups * rank, in_features))
        self.lora_b = nn.Parameter(
            torch.zeros(num_modalities, self.num_groups * group, rank))
        for a in self.lora_a.data:
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))
        if cross_modal:
            self._init_mixing()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """``s * B_m A_m`` on the enabled rows: ``(M, G_e * out/G, in)``."""
        m, r = self.num_modalities, self.rank
        a = self.lora_a.view(m, self.num_groups, r, -1)
        b = self.lora_b.view(m, self.num_groups, self.group_features, r)
        return self.scaling * (b @ a).flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        streams = self.modality_slice()
        if self.merged:
            if torch.is_grad_enabled() and (self.lora_a.requires_grad
                                            or self.lora_b.requires_grad):
                raise RuntimeError(
                    'LoRALinear is merged (inference only): its merged '
                    'weight sends no gradient to lora_a / lora_b; call '
                    'unmerge() or train() before training, or run under '
                    'torch.no_grad()')
            out = torch.stack([
                F.linear(x_m, w_m, self.base.bias) for x_m, w_m in zip(
                    self.split(x), self.merged_weight[streams])
            ])
            return out.flatten(0, 1)
        out = self.forward_base(x).flatten(0, 1)
        xs = self.split(x).flatten(1, -2)  # (M, T, in)
        lora_a, lora_b = self.lora_a[streams], self.lora_b[streams]
        m, r = lora_a.shape[0], self.rank
        h = (xs @ lora_a.transpose(1, 2)).unflatten(-1, (-1, r))
        b = lora_b.view(m, self.num_groups, self.group_features, r)
        update = torch.einsum('mtgr,mgor->mtgo', h, b).flatten(2)
        update = self.scaling * update
        if self.cross_modal:
            update = self.mix_modalities(update)
        update = update.reshape(*out.shape[:-1], -1)
        # under autocast the base output and the update may differ in dtype
        return self._add_update(out, update.to(out.dtype), -1)

    def _add_update(self, out: torch.Tensor, update: torch.Tensor,
                    dim: int) -> torch.Tensor:
        """``out`` with ``update`` ``(..., G_e * out/G, ...)`` added to its
        enabled outputs along ``dim``, in place. (``index_add`` would keep
        a copy of ``update`` for backward; an in-place add keeps nothing:
        the base linear's output is not needed by its backward.)"""
        for start, src, length in self.lora_runs:
            out.narrow(dim, start, length).add_(
                update.narrow(dim, src, length))
        return out

    @torch.no_grad()
    def merge(self) -> None:
        """Form the per-modality merged weights (inference only)."""
        if self.cross_modal:
            raise RuntimeError('a cross-modal LoRA cannot be merged: each '
                               "modality's output depends on the other's "
                               'input')
        weight = self.base.weight.unsqueeze(0).repeat(
            self.num_modalities, 1, 1)
        self._add_update(weight, self.delta_weight(), 1)
        self.register_buffer('merged_weight', weight, persistent=False)
        self.merged = True

    def unmerge(self) -> None:
        """Drop the merged weights; the forward adds the LoRA again."""
        if self.merged:
            del self.merged_weight
            self.merged = False

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        # the merged weight was formed from the weights being replaced
        self.unmerge()
        super()._load_from_state_dict(*args, **kwargs)

    def train(self, mode: bool = True) -> 'LoRALinear':
        super().train(mode)
        if mode:
            self.unmerge()
        return self
