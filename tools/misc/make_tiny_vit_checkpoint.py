"""Write a tiny random DINOv2-style ViT checkpoint with the OFFICIAL key names.

No pretrained weights can be downloaded on the demo machines, so the demo
(``configs/mobanet/demo_tinyvit_synthetic.py``) freezes a tiny ViT with
random, seeded weights instead. It is saved exactly like the official
``dinov2_vit*14_pretrain.pth`` files (a plain state dict with ``cls_token``,
``pos_embed``, ``mask_token``, ``patch_embed.proj.*``, ``blocks.N.{norm1,
attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}.*``,
``norm.*``), so the demo goes through the real path: the converter
(``tools/model_converters/dinov2.py``) and the backbone's loader.

Usage::

    python tools/misc/make_tiny_vit_checkpoint.py \
        pretrain/dinov2_tiny_demo_pretrain.pth \
        [--embed-dims 64] [--depth 4] [--patch-size 8] [--grid 16] \
        [--mlp-ratio 4] [--layer-scale 0.1] [--seed 0]
    python tools/model_converters/dinov2.py \
        pretrain/dinov2_tiny_demo_pretrain.pth \
        pretrain/dinov2_tiny_demo_converted.pth

The number of attention heads is not part of the weights (the config says
it: 4 for the demo). Initialisation as DINOv2's: truncated normal (std
0.02) linear weights with zero biases, unit LayerNorms, PyTorch's default
patch-embedding init; layer scales are ``--layer-scale`` (DINOv2 starts them
at 1e-5, which makes an untrained ViT an identity map; trained ViTs have
values around 0.1-1).
"""
import argparse
from collections import OrderedDict
from typing import Dict

import torch
import torch.nn as nn

from mmrsfusion.checkpoint import save_checkpoint_atomically


def make_state_dict(embed_dims: int = 64,
                    depth: int = 4,
                    patch_size: int = 8,
                    grid: int = 16,
                    mlp_ratio: float = 4.,
                    layer_scale: float = 0.1,
                    seed: int = 0) -> Dict[str, torch.Tensor]:
    """A random DINOv2-layout state dict (official key names, in the
    official order).

    Args:
        embed_dims (int): Token width C.
        depth (int): Number of blocks.
        patch_size (int): Patch side (14 in the official models).
        grid (int): Side of the pos-embed grid (37 in the official models:
            518 / 14); the backbone resizes it to its token grid.
        mlp_ratio (float): MLP hidden width / C.
        layer_scale (float): Value of every LayerScale gamma.
        seed (int): Seed of the generator.
    """
    gen = torch.Generator().manual_seed(seed)
    c, hidden = embed_dims, int(embed_dims * mlp_ratio)

    def trunc(*shape, std=0.02):
        t = torch.empty(*shape)
        # trunc_normal_ has no generator argument: draw normal values with
        # ours and clamp to +-2 std (what trunc_normal_ samples from).
        return t.normal_(0., std, generator=gen).clamp_(-2 * std, 2 * std)

    conv = nn.Conv2d(3, c, patch_size, stride=patch_size)
    bound = 1 / (3 * patch_size * patch_size)**0.5  # PyTorch's default init
    sd = OrderedDict()
    sd['cls_token'] = torch.empty(1, 1, c).normal_(0, 1e-6, generator=gen)
    sd['pos_embed'] = trunc(1, 1 + grid * grid, c)
    sd['mask_token'] = torch.zeros(1, c)
    sd['patch_embed.proj.weight'] = torch.empty_like(conv.weight).uniform_(
        -bound, bound, generator=gen)
    sd['patch_embed.proj.bias'] = torch.empty_like(conv.bias).uniform_(
        -bound, bound, generator=gen)
    for i in range(depth):
        b = f'blocks.{i}.'
        sd[b + 'norm1.weight'] = torch.ones(c)
        sd[b + 'norm1.bias'] = torch.zeros(c)
        sd[b + 'attn.qkv.weight'] = trunc(3 * c, c)
        sd[b + 'attn.qkv.bias'] = torch.zeros(3 * c)
        sd[b + 'attn.proj.weight'] = trunc(c, c)
        sd[b + 'attn.proj.bias'] = torch.zeros(c)
        sd[b + 'ls1.gamma'] = torch.full((c, ), float(layer_scale))
        sd[b + 'norm2.weight'] = torch.ones(c)
        sd[b + 'norm2.bias'] = torch.zeros(c)
        sd[b + 'mlp.fc1.weight'] = trunc(hidden, c)
        sd[b + 'mlp.fc1.bias'] = torch.zeros(hidden)
        sd[b + 'mlp.fc2.weight'] = trunc(c, hidden)
        sd[b + 'mlp.fc2.bias'] = torch.zeros(c)
        sd[b + 'ls2.gamma'] = torch.full((c, ), float(layer_scale))
    sd['norm.weight'] = torch.ones(c)
    sd['norm.bias'] = torch.zeros(c)
    return sd


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write a tiny random DINOv2-style ViT checkpoint with the '
        'official key names (for the CPU demo).')
    parser.add_argument('out', help='output file, e.g. '
                        'pretrain/dinov2_tiny_demo_pretrain.pth')
    parser.add_argument('--embed-dims', type=int, default=64)
    parser.add_argument('--depth', type=int, default=4)
    parser.add_argument('--patch-size', type=int, default=8)
    parser.add_argument('--grid', type=int, default=16,
                        help='pos-embed grid side (default 16)')
    parser.add_argument('--mlp-ratio', type=float, default=4.)
    parser.add_argument('--layer-scale', type=float, default=0.1)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sd = make_state_dict(args.embed_dims, args.depth, args.patch_size,
                         args.grid, args.mlp_ratio, args.layer_scale,
                         args.seed)
    save_checkpoint_atomically(sd, args.out)
    numel = sum(t.numel() for t in sd.values())
    print(f'{args.out}: {len(sd)} tensors, {numel} parameters (DINOv2 key '
          f'names; embed_dims={args.embed_dims}, depth={args.depth}, '
          f'patch={args.patch_size}, grid={args.grid}, seed={args.seed})')


if __name__ == '__main__':
    main()
