"""One shared-weight encoder (any registered backbone) for M modalities."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmseg.registry import MODELS
from mmrsfusion.utils import ModalitySpec

CHANNEL_ADAPTERS = ('replicate', 'conv')


@MODELS.register_module()
class MultiStreamEncoder(BaseModule):
    """One backbone, its weights shared by every modality (SGMA's encoder).

    The stacked input ``(B, sum_m C_m, H, W)`` is split by the modality
    spec; each modality is brought to the backbone's ``in_channels``, the
    M streams are packed into one batch of M*B images and encoded once.

    Channel adaptation (a modality whose ``channels`` differ from
    ``in_channels``):

    - ``'replicate'`` (default, the usual practice for a DSM / NIR / SAR
      band fed to an RGB-pretrained encoder): a 1-channel modality is
      repeated to ``in_channels``; any other count is an error;
    - ``'conv'``: a trainable 1x1 convolution ``C_m -> in_channels`` per
      such modality (weights initialised to average the bands, so a
      constant input gives a constant image).

    With a presence mask (``forward(x, presence)``), the absent
    (modality, sample) pairs are not encoded at all: only the present
    images form the batch, and the absent entries of the output are zeros.
    With BatchNorm in eval mode (or GroupNorm / LayerNorm, as in PVT-v2),
    every image is encoded independently of the others in the batch.

    Args:
        backbone (dict): Config of any backbone in mmseg's ``MODELS``
            (``'ResNetV1c'``, ``'TIMMBackbone'`` for timm models such as
            ``pvt_v2_b2``, ``'mmpretrain.ResNet'`` ...) returning a tuple of
            (N, C_s, h_s, w_s) maps.
        modalities (ModalitySpec | list[dict]): The modality spec (the
            segmentor's, handed down by :class:`MultiModalEncoderDecoder`).
        in_channels (int): Input channels of the backbone. Defaults to 3.
        channel_adapter (str): ``'replicate'`` or ``'conv'``; see above.
        frozen (bool): Freeze the backbone (``requires_grad`` off, always in
            eval mode). Defaults to False (SGMA trains it fully).
        init_cfg (dict, optional): Initialisation config.

    Shapes:
        forward: (B, sum_m C_m, H, W), optional presence (B, M) bool ->
        tuple over stages of (M, B, C_s, h_s, w_s).
    """

    def __init__(self,
                 backbone: dict,
                 modalities: Union[ModalitySpec, Sequence[dict]],
                 in_channels: int = 3,
                 channel_adapter: str = 'replicate',
                 frozen: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if channel_adapter not in CHANNEL_ADAPTERS:
            raise ValueError(f'MultiStreamEncoder.channel_adapter: expected '
                             f'one of {CHANNEL_ADAPTERS}, got '
                             f'{channel_adapter!r}')
        self.modalities = ModalitySpec.build(
            modalities, 'model.backbone.modalities')
        self.in_channels = in_channels
        self.channel_adapter = channel_adapter
        self.adapters = nn.ModuleDict()
        for mod in self.modalities:
            if mod.channels == in_channels:
                continue
            if channel_adapter == 'conv':
                conv = nn.Conv2d(mod.channels, in_channels, 1)
                nn.init.constant_(conv.weight, 1.0 / mod.channels)
                nn.init.zeros_(conv.bias)
                self.adapters[mod.name] = conv
            elif mod.channels != 1:
                raise ValueError(
                    f"MultiStreamEncoder: modality '{mod.name}' has "
                    f'{mod.channels} channels but the backbone takes '
                    f"{in_channels}; 'replicate' only adapts 1-channel "
                    f"modalities, set channel_adapter='conv'")
        self.encoder = MODELS.build(backbone)
        self.frozen = frozen
        if frozen:
            self.encoder.requires_grad_(False)
            self.encoder.eval()

    def train(self, mode: bool = True) -> 'MultiStreamEncoder':
        """Keep a frozen encoder in eval mode."""
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def streams(self, x: torch.Tensor) -> torch.Tensor:
        """The (M, B, in_channels, H, W) images of the modalities."""
        parts = []
        for name, part in self.modalities.split(x).items():
            if name in self.adapters:
                part = self.adapters[name](part)
            elif part.shape[1] != self.in_channels:
                part = part.expand(-1, self.in_channels, -1, -1)
            parts.append(part)
        return torch.stack(parts)

    def forward(self,
                x: torch.Tensor,
                presence: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, ...]:
        """See the class docstring."""
        streams = self.streams(x)
        m, b = streams.shape[:2]
        if presence is None:
            outs = self.encoder(streams.flatten(0, 1))
            return tuple(o.unflatten(0, (m, b)) for o in outs)
        if tuple(presence.shape) != (b, m):
            raise ValueError(f'MultiStreamEncoder: presence of shape '
                             f'{tuple(presence.shape)}, expected ({b}, {m})')
        keep = presence.t().reshape(-1).nonzero().squeeze(1)  # (m, b) order
        outs = self.encoder(streams.flatten(0, 1)[keep])
        full = []
        for o in outs:
            out = o.new_zeros((m * b, ) + o.shape[1:])
            out[keep] = o
            full.append(out.unflatten(0, (m, b)))
        return tuple(full)
