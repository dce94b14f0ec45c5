"""Runs a frozen module one modality at a time (the authors' layout), e.g.
a SAM attention that holds a per-modality LoRA."""
import torch
from mmseg.registry import MODELS

from .wrapper import BasePEFTWrapper


@MODELS.register_module()
class PerModality(BasePEFTWrapper):
    """Wraps a frozen module and runs it on one modality's batch at a time
    (:meth:`forward_base`); adds no parameter and no state-dict key.

    The values are those of one stacked call; what changes is speed and
    peak memory: the module's temporaries (a windowed attention's scores,
    ``M * B' x heads x N x N``) are half the size. PEFT wrappers inside the
    module see one modality's batch and use that modality's weights
    (MMLoRA's q/v LoRA inside SAM's attention:
    ``dict(type='PerModality', targets='layers.*.attn')``, listed after
    the LoRA, whose target names the module inside). A cross-modal wrapper
    inside it raises: it needs both modalities at once.

    Args:
        module (nn.Module): The frozen module, ``(M * B', ...)`` in and
            out; tensor arguments are batches.
        num_modalities (int): M.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.forward_base(*args, **kwargs).flatten(0, 1)
