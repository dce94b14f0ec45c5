"""mmseg decode heads whose final classifier has no bias.

MoBaNet's reference UperNet and auxiliary heads end in a bias-free 1x1
convolution; mmseg's ``conv_seg`` has a bias (``num_classes`` more
parameters). These subclasses differ from mmseg's heads in that one respect
only, so the reference parameter counts are met exactly (UPerHead with 64
channels on 4 x 256 inputs and 6 classes: 669,568; the 256-channel FCNHead:
591,872).
"""
import torch.nn as nn

from mmseg.models.decode_heads import FCNHead, UPerHead
from mmseg.registry import MODELS


class NoBiasConvSegMixin:
    """Replaces an mmseg decode head's ``conv_seg`` by a bias-free one."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conv_seg = nn.Conv2d(
            self.conv_seg.in_channels, self.out_channels, 1, bias=False)


@MODELS.register_module()
class UPerHeadNoBias(NoBiasConvSegMixin, UPerHead):
    """mmseg's :class:`UPerHead` with a bias-free classifier; same args."""


@MODELS.register_module()
class FCNHeadNoBias(NoBiasConvSegMixin, FCNHead):
    """mmseg's :class:`FCNHead` with a bias-free classifier; same args."""
