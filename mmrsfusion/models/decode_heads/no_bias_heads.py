"""mmseg decode heads whose final classifier has no bias.

MoBaNet's reference UperNet and auxiliary heads end in a bias-free 1x1
convolution; mmseg's ``conv_seg`` has a bias (``num_classes`` more
parameters). Without it the reference parameter counts are met exactly
(UPerHead with 64 channels on 4 x 256 inputs and 6 classes: 669,568; the
256-channel FCNHead: 591,872).

The reference's function differs from mmseg's defaults in two more respects,
both config options that leave the parameter count unchanged: every
conv-BN-activation block uses ReLU6 (mmseg's ``act_cfg``:
``dict(type='ReLU6')``), and the UperNet lateral 1x1 convs are conv + BN
without activation (``UPerHeadNoBias(lateral_act_cfg=None)``).
"""
from typing import Union

import torch.nn as nn
from mmcv.cnn import ConvModule

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
    """mmseg's :class:`UPerHead` with a bias-free classifier and a choice of
    activation in the lateral 1x1 convs.

    Args:
        lateral_act_cfg (dict | None | str): Activation of the lateral convs
            (conv 1x1 -> norm -> activation). ``'act_cfg'`` (default): the
            head's ``act_cfg``, as in mmseg; ``None``: none, conv + norm only
            (MoBaNet's reference); or an activation config.
        **kwargs: :class:`UPerHead`'s arguments.

    Forward: as :class:`UPerHead`, a list of ``(B, in_channels[i], h_i, w_i)``
    maps -> ``(B, num_classes, h_0, w_0)`` logits.
    """

    def __init__(self,
                 *args,
                 lateral_act_cfg: Union[dict, None, str] = 'act_cfg',
                 **kwargs):
        super().__init__(*args, **kwargs)
        if lateral_act_cfg == 'act_cfg':
            return
        if lateral_act_cfg is not None and not isinstance(
                lateral_act_cfg, dict):
            raise ValueError("lateral_act_cfg: expected 'act_cfg', None or "
                             f'an activation config dict, got '
                             f'{lateral_act_cfg!r}')
        # UPerHead builds its laterals with act_cfg inline: rebuild them.
        self.lateral_convs = nn.ModuleList(
            ConvModule(
                in_channels,
                self.channels,
                1,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                act_cfg=lateral_act_cfg,
                inplace=False) for in_channels in self.in_channels[:-1])


@MODELS.register_module()
class FCNHeadNoBias(NoBiasConvSegMixin, FCNHead):
    """mmseg's :class:`FCNHead` with a bias-free classifier; same args."""
