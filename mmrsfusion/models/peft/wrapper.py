"""Base of the PEFT wrappers injected into a frozen encoder in place.

A wrapper replaces one submodule of the frozen encoder (e.g. an attention's
``qkv`` linear, a block's ``attn`` or ``ffn``), keeps it as ``self.base``
and adds trainable parts around it, so each family's own block forward
(mmpretrain ``VisionTransformer``, ``ViTSAM`` with its window partitioning)
runs unchanged. See :func:`~mmrsfusion.models.peft.inject_peft`.

The multi-stream backbone runs its M modality streams as one batch,
modality-major: the leading dimension of every tensor a wrapper sees is
``M * B'`` (``B'`` = the batch, or batch x windows inside SAM's windowed
attention), so :meth:`BasePEFTWrapper.split` recovers ``(M, B', ...)``.
A wrapper may instead run its frozen module one modality at a time
(:meth:`BasePEFTWrapper.forward_base`); the wrappers inside that module
then see one modality's batch and are told which (``modality``).

The wrapper is invisible in the state dict: the wrapped module's keys keep
their names (``layers.0.attn.qkv.weight``, not ``...qkv.base.weight``), so
pretrained files, converters and checkpoints of the frozen encoder load as
before; only the wrapper's own parameters are new keys.
"""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule

BASE = 'base.'


class BasePEFTWrapper(BaseModule):
    """Wraps a frozen module; subclasses add trainable parts in
    :meth:`forward`.

    Args:
        module (nn.Module): The frozen module to wrap (kept as ``base``).
        num_modalities (int): Number of streams M stacked in the batch
            dimension.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 module: nn.Module,
                 num_modalities: int,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if num_modalities < 1:
            raise ValueError(f'{type(self).__name__}: num_modalities must be '
                             f'>= 1, got {num_modalities}')
        self.base = module
        self.num_modalities = num_modalities
        # the one stream the batch holds while an enclosing wrapper runs
        # its frozen module per modality (forward_base); None: all M
        self.modality: Optional[int] = None
        self._load_prefix = ''
        self.register_state_dict_post_hook(self._hide_base)
        self.register_load_state_dict_pre_hook(self._to_base)
        self.register_load_state_dict_post_hook(self._missing_from_base)

    # --------------------------------------------------------- state dict --
    @staticmethod
    def _hide_base(module, state_dict, prefix, local_metadata):
        for key in [k for k in state_dict if k.startswith(prefix + BASE)]:
            state_dict[prefix + key[len(prefix + BASE):]] = \
                state_dict.pop(key)

    def _to_base(self, module, state_dict, prefix, local_metadata, strict,
                 missing_keys, unexpected_keys, error_msgs):
        self._load_prefix = prefix
        for key in self.base.state_dict(keep_vars=True):
            if prefix + key in state_dict:
                state_dict[prefix + BASE + key] = state_dict.pop(prefix + key)

    def _missing_from_base(self, module, incompatible_keys):
        hidden = self._load_prefix + BASE
        missing = incompatible_keys.missing_keys
        missing[:] = [
            self._load_prefix + k[len(hidden):] if k.startswith(hidden) else k
            for k in missing
        ]

    # ------------------------------------------------------------ helpers --
    def modality_slice(self) -> slice:
        """The streams in the batch, as an index into per-modality weights:
        all M, or the one ``modality`` an enclosing wrapper runs."""
        if self.modality is None:
            return slice(None)
        return slice(self.modality, self.modality + 1)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """``(M * B', ...)`` -> ``(M, B', ...)`` (``M = 1`` while an
        enclosing wrapper runs one modality)."""
        m = self.num_modalities if self.modality is None else 1
        if x.shape[0] % m:
            raise ValueError(
                f'{type(self).__name__} built for {self.num_modalities} '
                f'modalities got a batch of {x.shape[0]}, not a multiple: '
                'the streams must run as one modality-major batch')
        return x.unflatten(0, (m, -1))

    def forward_base(self, *args, **kwargs) -> torch.Tensor:
        """Run the frozen module on one modality's batch at a time.

        Tensor arguments are batches ``(M * B', ...)`` and are split; the
        outputs are stacked, ``(M, B', ...)``. The values are those of one
        stacked call (the module acts per sample), but the temporaries are
        half the size: on CPU a SAM ViT-B block runs faster this way, the
        authors' layout (MFNet train step 1.11x -> 1.00x theirs). PEFT
        wrappers inside the module are told which modality they see.
        """
        inner = [
            w for w in self.base.modules() if isinstance(w, BasePEFTWrapper)
        ]
        streams = range(self.num_modalities)[self.modality_slice()]
        outs = []
        try:
            for i, m in enumerate(streams):
                for w in inner:
                    w.modality = m
                outs.append(
                    self.base(*[self._stream(a, i) for a in args], **{
                        k: self._stream(v, i)
                        for k, v in kwargs.items()
                    }))
        finally:
            for w in inner:
                w.modality = None
        # one stream (inside an enclosing per-modality run): no copy
        return outs[0].unsqueeze(0) if len(outs) == 1 else torch.stack(outs)

    def _stream(self, x, i: int):
        """Stream ``i`` of a batch argument; other arguments as they are."""
        return self.split(x)[i] if isinstance(x, torch.Tensor) else x

    def train(self, mode: bool = True) -> 'BasePEFTWrapper':
        """Set the mode of the trainable parts; the wrapped frozen module
        stays in eval mode."""
        super().train(mode)
        self.base.train(False)
        return self


class CrossModalMixin:
    """Learnable per-modality mixing weights ``lambda_m`` (init 0.5) of
    two modalities' updates ``u_m``::

        out_x = l_x * u_x + (1 - l_x) * u_y
        out_y = l_y * u_y + (1 - l_y) * u_x
    """

    def _init_mixing(self, init: float = 0.5) -> None:
        if self.num_modalities != 2:
            raise ValueError(f'{type(self).__name__}: cross-modal mixing '
                             f'needs 2 modalities, got {self.num_modalities}')
        self.mix = nn.Parameter(torch.full((2, ), float(init)))

    def mix_modalities(self, u: torch.Tensor) -> torch.Tensor:
        """``u`` ``(2, ...)`` -> the mixed updates, same shape."""
        if self.modality is not None:
            raise RuntimeError(
                f'{type(self).__name__} mixes the two modalities but runs '
                'inside a wrapper that runs one modality at a time '
                '(PerModality): target a module that holds no cross-modal '
                'wrapper')
        lam = self.mix.view(2, *[1] * (u.ndim - 1))
        # the products take views of u: backward keeps u once (a flipped
        # copy, u.flip(0), would be kept as well)
        u_x, u_y = u.unbind(0)
        return torch.stack([
            lam[0] * u_x + (1 - lam[0]) * u_y,
            lam[1] * u_y + (1 - lam[1]) * u_x,
        ])
