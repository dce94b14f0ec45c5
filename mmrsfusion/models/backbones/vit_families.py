"""The pretrained ViT families a :class:`MultiStreamViT` can freeze: which
mmpretrain encoder builds each, with which defaults, and its output rules."""
import copy
from typing import Optional, Union

import torch.nn as nn
from mmpretrain.models.backbones import ViTSAM, VisionTransformer

# Per family: the mmpretrain encoder class, our arch names -> mmpretrain's
# (a dict arch is passed through), the encoder defaults matching the
# official weights, the number of extra (CLS) tokens before the patch
# tokens, the allowed tap transforms (the first is the default) and the
# default pos-embed resizing rule (see ``pos_embed.POS_EMBED_RESIZES``).
FAMILIES = {
    'dinov2':
    dict(
        encoder=VisionTransformer,
        archs={
            'small': 'dinov2-small',
            'base': 'base',
            'large': 'large',
            'giant': 'dinov2-giant'
        },
        defaults=dict(
            img_size=518,  # the pretrained 37x37 grid
            patch_size=14,
            layer_scale_init_value=1e-5,
            norm_cfg=dict(type='LN', eps=1e-6),
            out_type='raw',
            with_cls_token=True,
            final_norm=True),
        arch_defaults=dict(giant=dict(layer_cfgs=dict(
            ffn_type='swiglu_fused'))),
        num_extra_tokens=1,
        tap_transforms=('norm', 'none'),
        pos_embed_resize='dinov2'),
    'sam':
    dict(
        encoder=ViTSAM,
        archs={
            'base': 'base',
            'large': 'large',
            'huge': 'huge'
        },
        defaults=dict(
            img_size=1024,  # the pretrained 64x64 grid
            patch_size=16,
            window_size=14,
            use_abs_pos=True,
            use_rel_pos=True,
            norm_cfg=dict(type='LN', eps=1e-6),
            out_channels=256,
            out_type='raw'),
        arch_defaults=dict(),
        num_extra_tokens=0,
        tap_transforms=('none', 'neck'),
        pos_embed_resize='size'),
}


def family_spec(family: str) -> dict:
    """The :data:`FAMILIES` entry of ``family``, or a ``ValueError`` naming
    the choices."""
    if family not in FAMILIES:
        raise ValueError(f'family: expected one of {tuple(FAMILIES)}, got '
                         f'{family!r}')
    return FAMILIES[family]


def build_frozen_encoder(family: str,
                         arch: Union[str, dict],
                         encoder_cfg: Optional[dict] = None) -> nn.Module:
    """Build the mmpretrain encoder of ``family`` with every parameter
    frozen (``requires_grad`` False).

    Args:
        family (str): ``'dinov2'`` or ``'sam'``.
        arch (str | dict): One of the family's arch names, or an mmpretrain
            arch dict (passed through).
        encoder_cfg (dict, optional): Keyword arguments over the family's
            (and the arch's) defaults.

    Returns:
        nn.Module: The ``VisionTransformer`` (DINOv2) or ``ViTSAM`` (SAM).
    """
    spec = family_spec(family)
    kwargs = copy.deepcopy(spec['defaults'])
    if isinstance(arch, str):
        if arch not in spec['archs']:
            raise ValueError(f'arch for {family}: expected one of '
                             f'{tuple(spec["archs"])} or a dict, got '
                             f'{arch!r}')
        kwargs.update(copy.deepcopy(spec['arch_defaults'].get(arch, {})))
        kwargs['arch'] = spec['archs'][arch]
    else:
        kwargs['arch'] = copy.deepcopy(arch)
    kwargs.update(copy.deepcopy(encoder_cfg or {}))
    encoder = spec['encoder'](**kwargs)
    encoder.requires_grad_(False)
    return encoder
