"""Patch embeddings of M modality streams around one frozen pretrained
patch embedding."""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmrsfusion.utils import ModalitySpec

AUX_EMBEDS = ('replicate', 'native', 'shared')


def check_aux_embed(mode: str) -> None:
    """Raise a ValueError naming ``aux_embed`` unless ``mode`` is one of
    :data:`AUX_EMBEDS`."""
    if mode not in AUX_EMBEDS:
        raise ValueError(f'aux_embed: expected one of {AUX_EMBEDS}, got '
                         f'{mode!r}')


class StreamPatchEmbed(nn.ModuleDict):
    """Patch-embeds each modality of a stacked input into its own stream.

    The first (optical) modality goes through the frozen pretrained patch
    embedding; each other one through its own trainable conv, the entries
    of this dict keyed by modality name, or, with ``mode='shared'``,
    through the frozen one as well.

    Args:
        modalities (ModalitySpec): The model's modality spec; the first
            must have the pretrained embedding's input channels (3).
        projection (nn.Conv2d): The pretrained patch-embedding conv
            (``3 -> C``, kernel = stride = patch size ``p``).
        mode (str): ``'replicate'``: a trainable copy of the pretrained
            conv, a 1-channel modality replicated to 3 channels before it.
            ``'native'``: a ``C_m -> C`` conv initialised with the
            pretrained kernel summed over its input channels, divided by
            ``C_m`` and repeated (a constant input gives the same response;
            a copy when ``C_m = 3``). ``'shared'`` (MFNet): the frozen
            pretrained embedding, 1-channel modalities replicated; no
            trainable parameters.

    Forward:
        ``x`` ``(B, sum_m C_m, H, W)`` and the frozen ``patch_embed``
        (mmpretrain ``PatchEmbed`` around ``projection``) -> tokens
        ``(M, B, h * w, C)`` in modality-spec order and the token grid
        ``(h, w) = (ceil(H / p), ceil(W / p))``: the input is zero-padded
        bottom/right to a multiple of ``p``, never resized.
    """

    def __init__(self, modalities: ModalitySpec,
                 projection: nn.Conv2d, mode: str = 'replicate'):
        super().__init__()
        check_aux_embed(mode)
        if projection.stride[0] != projection.stride[1]:
            raise ValueError('non-square patches are not supported')
        rgb = projection.in_channels
        optical = modalities[0]
        if optical.channels != rgb:
            raise ValueError(
                f'modalities[0] ({optical.name}) uses the pretrained patch '
                f'embedding and needs {rgb} channels, got {optical.channels}')
        self.modalities = modalities
        self.patch_size = projection.stride[0]
        for mod in list(self.modalities)[1:]:
            in_channels = mod.channels
            if mode in ('replicate', 'shared'):
                if mod.channels not in (1, rgb):
                    raise ValueError(
                        f'aux_embed={mode!r} takes 1- or {rgb}-channel '
                        f'modalities; {mod.name} has {mod.channels}: use '
                        f"aux_embed='native'")
                in_channels = rgb
            if mode == 'shared':
                continue
            if '.' in mod.name or hasattr(self, mod.name):
                raise ValueError(
                    f'modalities: {mod.name!r} cannot name a patch '
                    f"embedding (it holds a '.' or is an attribute of "
                    f'{type(self).__name__}); rename the modality')
            self[mod.name] = nn.Conv2d(
                in_channels,
                projection.out_channels,
                kernel_size=projection.kernel_size,
                stride=projection.stride,
                bias=projection.bias is not None)

    @torch.no_grad()
    def init_from(self, projection: nn.Conv2d):
        """Initialise every trainable embedding from the pretrained
        ``projection`` (see ``mode``)."""
        for conv in self.values():
            weight = projection.weight
            if conv.in_channels != weight.shape[1]:
                weight = weight.sum(1, keepdim=True).expand(
                    -1, conv.in_channels, -1, -1) / conv.in_channels
            conv.weight.copy_(weight)
            if conv.bias is not None:
                conv.bias.copy_(projection.bias)

    def forward(self, x: torch.Tensor, patch_embed: nn.Module
                ) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """See the class docstring."""
        p = self.patch_size
        x = F.pad(x, (0, -x.shape[-1] % p, 0, -x.shape[-2] % p))
        parts = self.modalities.split(x)
        rgb = patch_embed.projection.in_channels
        tokens = []
        for mod in self.modalities:
            part = parts[mod.name]
            if mod.name not in self:  # the frozen pretrained embedding
                tokens.append(patch_embed(part.expand(-1, rgb, -1, -1))[0])
                continue
            conv = self[mod.name]
            if part.shape[1] != conv.in_channels:  # 'replicate'
                part = part.expand(-1, conv.in_channels, -1, -1)
            tokens.append(conv(part).flatten(2).transpose(1, 2))
        return torch.stack(tokens), (x.shape[-2] // p, x.shape[-1] // p)
