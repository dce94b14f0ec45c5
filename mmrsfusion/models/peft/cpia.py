"""CPIA: the cross-modal prompt-injected adapter of MoBaNet (a stage
adapter of :class:`MultiStreamViT`, run by a :class:`PreBlockWrapper`, see
``peft/base.py``)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS


@MODELS.register_module()
class CPIA(BaseModule):
    """Cross-modal prompt-injected adapter, one per stage, on M streams.

    Shared prompt base (both forms), for streams ``x_1..x_M`` of ``(B, N, C)``
    and ``C_p = int(prompt_ratio * C)``::

        Z   = Up(Fuse(concat_m(Down_m(x_m))))
        P_m = Z + (Z * gamma_m + beta_m)

    with linears ``Down_m: C->C_p``, ``Fuse: M*C_p->C_p``, ``Up: C_p->C`` (no
    activation), ``gamma_m ~ N(1, 0.02)`` and ``beta_m ~ N(0, 0.02)``.

    ``mode='additive'`` (the reference code, which produced the paper's
    tables): ``x_m <- x_m + P_m``. For ViT-B with M=2: 520,512 parameters.

    ``mode='adapter'`` (the paper, Eq. 9-11): a prompt-injected adapter per
    stream, bottleneck ``d = int(adapter_ratio * C)``::

        x_m <- x_m + W_up_m(Dropout(ReLU(W_down_m x_m + W_prompt_m P_m)))

    ``W_prompt_m`` has no bias (``W_down_m``'s bias already covers it) and
    ``W_up_m`` is zero-initialised, so the adapter starts as the identity on
    the frozen features.

    Args:
        embed_dims (int): Token width C.
        num_modalities (int): Number of streams M (>= 2).
        mode (str): ``'additive'`` or ``'adapter'``. Defaults to
            ``'additive'``.
        prompt_ratio (float): r_p. Defaults to 0.25.
        adapter_ratio (float): r_a (``'adapter'`` only). Defaults to 0.25.
        adapter_dropout (float): Dropout in the adapter bottleneck
            (``'adapter'`` only). Defaults to 0.1.
        init_cfg (dict, optional): mmengine initialisation config.
    """
    MODES = ('additive', 'adapter')

    def __init__(self,
                 embed_dims: int,
                 num_modalities: int = 2,
                 mode: str = 'additive',
                 prompt_ratio: float = 0.25,
                 adapter_ratio: float = 0.25,
                 adapter_dropout: float = 0.1,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if mode not in self.MODES:
            raise ValueError(f'CPIA.mode: expected one of {self.MODES}, got '
                             f'{mode!r}')
        if num_modalities < 2:
            raise ValueError('CPIA needs at least 2 modalities, got '
                             f'{num_modalities}')
        self.embed_dims = embed_dims
        self.num_modalities = num_modalities
        self.mode = mode
        c_p = int(embed_dims * prompt_ratio)
        self.down = nn.ModuleList(
            nn.Linear(embed_dims, c_p) for _ in range(num_modalities))
        self.fuse = nn.Linear(num_modalities * c_p, c_p)
        self.up = nn.Linear(c_p, embed_dims)
        self.gamma = nn.Parameter(
            torch.empty(num_modalities, embed_dims).normal_(1., 0.02))
        self.beta = nn.Parameter(
            torch.empty(num_modalities, embed_dims).normal_(0., 0.02))
        if mode == 'adapter':
            d = int(embed_dims * adapter_ratio)
            self.adapter_down = nn.ModuleList(
                nn.Linear(embed_dims, d) for _ in range(num_modalities))
            self.adapter_prompt = nn.ModuleList(
                nn.Linear(embed_dims, d, bias=False)
                for _ in range(num_modalities))
            self.adapter_up = nn.ModuleList(
                nn.Linear(d, embed_dims) for _ in range(num_modalities))
            self._zero_init_adapters()
            self.dropout = nn.Dropout(adapter_dropout)

    def _zero_init_adapters(self) -> None:
        # zero up-projections: each adapter starts as the identity
        for up in self.adapter_up:
            nn.init.zeros_(up.weight)
            nn.init.zeros_(up.bias)

    def init_weights(self) -> None:
        super().init_weights()
        if self.mode == 'adapter':  # an init_cfg must not undo the zeros
            self._zero_init_adapters()

    def prompts(self, x: torch.Tensor) -> torch.Tensor:
        """The per-modality prompts ``P``, ``(M, B, N, C)``, of streams
        ``x`` ``(M, B, N, C)``."""
        if x.shape[0] != self.num_modalities:
            raise ValueError(f'CPIA built for {self.num_modalities} '
                             f'modalities got {x.shape[0]} streams')
        z = self.up(
            self.fuse(
                torch.cat([down(x_m) for down, x_m in zip(self.down, x)],
                          dim=-1)))
        gamma = self.gamma[:, None, None]
        beta = self.beta[:, None, None]
        return z + (z * gamma + beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x, patch tokens ``(M, B, N, C)``. Returns the updated
        tokens, same shape."""
        prompts = self.prompts(x)
        if self.mode == 'additive':
            return x + prompts
        return torch.stack([
            x_m + up(self.dropout(F.relu(down(x_m) + prompt(p_m))))
            for x_m, p_m, down, prompt, up in zip(
                x, prompts, self.adapter_down, self.adapter_prompt,
                self.adapter_up)
        ])
