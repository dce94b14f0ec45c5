"""Official DINOv2 / SAM checkpoints -> mmpretrain encoder keys.

One place for the key mapping, shared by ``tools/model_converters/dinov2.py``,
``tools/model_converters/sam.py`` and :class:`MultiStreamViT` (which accepts
an official file directly and converts it on the fly).

The converted keys are those of mmpretrain's ``VisionTransformer`` (DINOv2)
and ``ViTSAM`` (SAM): the state dict of ``MultiStreamViT.encoder``.

DINOv2 (``dinov2_vit{s,b,l,g}14_pretrain.pth``)::

    cls_token, pos_embed                 -> same
    patch_embed.proj.*                   -> patch_embed.projection.*
    blocks.N.norm1.* / norm2.*           -> layers.N.ln1.* / ln2.*
    blocks.N.attn.qkv.* / attn.proj.*    -> layers.N.attn.qkv.* / attn.proj.*
    blocks.N.ls1.gamma                   -> layers.N.attn.gamma1.weight
    blocks.N.ls2.gamma                   -> layers.N.ffn.gamma2.weight
    blocks.N.mlp.fc1.* / fc2.*           -> layers.N.ffn.layers.{0.0,1}.*
    blocks.N.mlp.w12.* / w3.* (ViT-g)    -> layers.N.ffn.w12.* / w3.*
    norm.*                               -> ln1.*
    mask_token                           -> dropped (iBOT masking, unused)

SAM (``sam_vit_{b,l,h}_*.pth``; ``image_encoder.*`` only, the prompt encoder
and mask decoder are dropped)::

    image_encoder.patch_embed.proj.*     -> patch_embed.projection.*
    image_encoder.pos_embed              -> pos_embed
    image_encoder.blocks.N.norm1/norm2   -> layers.N.ln1/ln2
    image_encoder.blocks.N.attn.{qkv,proj,rel_pos_h,rel_pos_w}
                                         -> layers.N.attn.{same}
    image_encoder.blocks.N.mlp.lin1/lin2 -> layers.N.ffn.layers.0.0/layers.1
    image_encoder.neck.{0,1,2,3}.*       -> channel_reduction.{0,1,2,3}.*

Any other key raises a ``KeyError`` naming it: a checkpoint this module does
not understand is never converted silently.
"""
import argparse
import re
from collections import OrderedDict
from typing import Callable, Dict, Optional, Sequence

import torch

from mmrsfusion.checkpoint import (load_checkpoint_file,
                                   save_checkpoint_atomically)

StateDict = Dict[str, torch.Tensor]

_DINOV2_TOP = {
    'cls_token': 'cls_token',
    'pos_embed': 'pos_embed',
    'patch_embed.proj.weight': 'patch_embed.projection.weight',
    'patch_embed.proj.bias': 'patch_embed.projection.bias',
    'norm.weight': 'ln1.weight',
    'norm.bias': 'ln1.bias',
}
_DINOV2_BLOCK = {
    'norm1': 'ln1',
    'norm2': 'ln2',
    'attn.qkv': 'attn.qkv',
    'attn.proj': 'attn.proj',
    'ls1.gamma': 'attn.gamma1.weight',
    'ls2.gamma': 'ffn.gamma2.weight',
    'mlp.fc1': 'ffn.layers.0.0',
    'mlp.fc2': 'ffn.layers.1',
    'mlp.w12': 'ffn.w12',
    'mlp.w3': 'ffn.w3',
}
_SAM_TOP = {
    'patch_embed.proj.weight': 'patch_embed.projection.weight',
    'patch_embed.proj.bias': 'patch_embed.projection.bias',
    'pos_embed': 'pos_embed',
}
_SAM_BLOCK = {
    'norm1': 'ln1',
    'norm2': 'ln2',
    'attn.qkv': 'attn.qkv',
    'attn.proj': 'attn.proj',
    'attn.rel_pos_h': 'attn.rel_pos_h',
    'attn.rel_pos_w': 'attn.rel_pos_w',
    'mlp.lin1': 'ffn.layers.0.0',
    'mlp.lin2': 'ffn.layers.1',
}
_BLOCK_KEY = re.compile(r'^blocks\.(\d+)\.(.+)$')
_NECK_KEY = re.compile(r'^neck\.([0-3])\.(.+)$')
_SAM_PREFIX = 'image_encoder.'


def _map_block_key(key: str, table: Dict[str, str]) -> Optional[str]:
    """``blocks.N.<name>[.weight|.bias]`` -> ``layers.N.<mapped>...``."""
    match = _BLOCK_KEY.match(key)
    if match is None:
        return None
    index, rest = match.groups()
    if rest in table:  # a parameter named by the table itself (ls1.gamma)
        return f'layers.{index}.{table[rest]}'
    module, _, param = rest.rpartition('.')
    if module in table and param in ('weight', 'bias'):
        return f'layers.{index}.{table[module]}.{param}'
    return None


def convert_dinov2(state_dict: StateDict) -> StateDict:
    """Convert an official DINOv2 state dict to mmpretrain's
    ``VisionTransformer`` keys (see the module docstring).

    Raises:
        ValueError: For a DINOv2 variant with register tokens (``*_reg4``),
            which mmpretrain's ``VisionTransformer`` cannot represent.
        KeyError: On any key outside the official layout.
    """
    if 'register_tokens' in state_dict:
        raise ValueError(
            'DINOv2 checkpoints with register tokens (dinov2_vit*14_reg4_'
            'pretrain.pth) are not supported: use dinov2_vit*14_pretrain.pth')
    out = OrderedDict()
    for key, value in state_dict.items():
        if key == 'mask_token':
            continue
        new_key = _DINOV2_TOP.get(key) or _map_block_key(key, _DINOV2_BLOCK)
        if new_key is None:
            raise KeyError(f'unexpected key {key!r} in a DINOv2 checkpoint '
                           '(expected the official dinov2_vit*14_pretrain.pth '
                           'layout)')
        out[new_key] = value
    return out


def convert_sam(state_dict: StateDict) -> StateDict:
    """Convert an official SAM state dict to mmpretrain's ``ViTSAM`` keys
    (image encoder only; see the module docstring).

    Raises:
        KeyError: If there is no ``image_encoder.*`` key, or on an
            ``image_encoder.*`` key outside the official layout.
    """
    out = OrderedDict()
    for key, value in state_dict.items():
        if not key.startswith(_SAM_PREFIX):
            continue  # prompt_encoder.*, mask_decoder.*
        key = key[len(_SAM_PREFIX):]
        new_key = _SAM_TOP.get(key) or _map_block_key(key, _SAM_BLOCK)
        neck = _NECK_KEY.match(key)
        if new_key is None and neck is not None:
            new_key = 'channel_reduction.{}.{}'.format(*neck.groups())
        if new_key is None:
            raise KeyError(f'unexpected key {_SAM_PREFIX + key!r} in a SAM '
                           'checkpoint (expected the official sam_vit_*.pth '
                           'layout)')
        out[new_key] = value
    if not out:
        raise KeyError('no image_encoder.* key: not an official SAM '
                       'checkpoint (sam_vit_{b,l,h}_*.pth)')
    return out


CONVERTERS: Dict[str, Callable[[StateDict], StateDict]] = {
    'dinov2': convert_dinov2,
    'sam': convert_sam,
}


def is_official(state_dict: StateDict, family: str) -> bool:
    """Whether ``state_dict`` uses the official (unconverted) key names of
    ``family`` ('dinov2': ``blocks.*``; 'sam': ``image_encoder.*``)."""
    marker = {'dinov2': 'blocks.', 'sam': _SAM_PREFIX}[family]
    return any(key.startswith(marker) for key in state_dict)


def convert_file(src: str, dst: str, family: str) -> str:
    """Convert an official ``family`` checkpoint ``src`` and save it to
    ``dst`` as an mmengine checkpoint ``{'state_dict': ..., 'meta': ...}``.

    Returns:
        str: A one-line summary (tensors kept and dropped, width, depth).
    """
    original = load_checkpoint_file(src)
    state_dict = CONVERTERS[family](original)
    save_checkpoint_atomically(
        dict(state_dict=state_dict,
             meta=dict(converted_from=str(src), family=family)), str(dst))
    depth = len({key.split('.')[1] for key in state_dict
                 if key.startswith('layers.')})
    width = state_dict['patch_embed.projection.weight'].shape[0]
    return (f'{src} -> {dst}: {len(state_dict)} tensors '
            f'({len(original) - len(state_dict)} dropped), '
            f'embed_dims={width}, depth={depth}')


def main(family: str, argv: Optional[Sequence[str]] = None):
    """Command line of ``tools/model_converters/{dinov2,sam}.py``."""
    official = dict(
        dinov2='dinov2_vit{s,b,l,g}14_pretrain.pth',
        sam='sam_vit_{b,l,h}_*.pth')[family]
    parser = argparse.ArgumentParser(
        description=f'Convert an official {family} checkpoint ({official}) '
        'to the keys of MultiStreamViT\'s frozen encoder (mmpretrain).')
    parser.add_argument('src', help='official checkpoint (path or URL)')
    parser.add_argument('dst', help='output checkpoint path')
    args = parser.parse_args(argv)
    print(convert_file(args.src, args.dst, family))
