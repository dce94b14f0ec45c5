"""tools/misc/make_tiny_vit_checkpoint.py: a seeded random ViT saved with the
official DINOv2 key names, which the real converter and the backbone's
loader accept (the demo's "pretrained" frozen ViT)."""
import os
import os.path as osp
import subprocess
import sys

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmseg.registry import MODELS

import mmrsfusion  # noqa: F401
from mmrsfusion.checkpoint import load_checkpoint_file
from mmrsfusion.models.backbones import convert_dinov2
from mmrsfusion.models.backbones.vit_checkpoint import is_official
from mmrsfusion.utils import load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'misc', 'make_tiny_vit_checkpoint.py')
CONVERTER = osp.join(ROOT, 'tools', 'model_converters', 'dinov2.py')
DEMO = osp.join(ROOT, 'configs', 'mobanet', 'demo_tinyvit_synthetic.py')


def official_keys(depth):
    keys = {'cls_token', 'pos_embed', 'mask_token', 'patch_embed.proj.weight',
            'patch_embed.proj.bias', 'norm.weight', 'norm.bias'}
    for i in range(depth):
        for name in ('norm1', 'attn.qkv', 'attn.proj', 'norm2', 'mlp.fc1',
                     'mlp.fc2'):
            keys |= {f'blocks.{i}.{name}.weight', f'blocks.{i}.{name}.bias'}
        keys |= {f'blocks.{i}.ls1.gamma', f'blocks.{i}.ls2.gamma'}
    return keys


def run(*args):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, text=True,
                            capture_output=True, timeout=300,
                            env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_official_layout_convert_and_load(tmp_path):
    """The demo's commands: make the file, convert it with the official
    converter, load it into the demo config's backbone (strict)."""
    official = str(tmp_path / 'pretrain' / 'tiny_pretrain.pth')
    out = run(TOOL, official)
    assert '229504 parameters' in out  # width 64, depth 4, patch 8, grid 16
    sd = load_checkpoint_file(official)
    assert set(sd) == official_keys(4)
    assert is_official(sd, 'dinov2') and not is_official(sd, 'sam')
    assert sd['patch_embed.proj.weight'].shape == (64, 3, 8, 8)
    assert sd['pos_embed'].shape == (1, 1 + 16 * 16, 64)
    assert torch.equal(sd['blocks.0.ls1.gamma'], torch.full((64, ), 0.1))

    converted = str(tmp_path / 'pretrain' / 'tiny_converted.pth')
    run(CONVERTER, official, converted)

    init_default_scope('mmseg')
    cfg = load_config(DEMO)
    for path in (official, converted):
        cfg.model.backbone.frozen_checkpoint = path
        model = MODELS.build(cfg.model)
        model.backbone.load_frozen()  # strict: every frozen weight
        mapped = convert_dinov2(sd)
        for key, value in model.backbone.encoder.state_dict().items():
            assert torch.equal(value, mapped[key]), key


def test_seeded(tmp_path):
    a, b, c = (str(tmp_path / f'{n}.pth') for n in 'abc')
    run(TOOL, a, '--embed-dims', '32', '--depth', '2', '--seed', '3')
    run(TOOL, b, '--embed-dims', '32', '--depth', '2', '--seed', '3')
    run(TOOL, c, '--embed-dims', '32', '--depth', '2', '--seed', '4')
    sa, sb, sc = (torch.load(p, weights_only=True) for p in (a, b, c))
    assert set(sa) == official_keys(2)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa['blocks.0.attn.qkv.weight'],
                           sc['blocks.0.attn.qkv.weight'])
