"""tools/model_converters/{dinov2,sam}.py on tiny checkpoints written with
the official key names (width 64, depth 4), and loading the result into
MultiStreamViT."""
import functools
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from mmrsfusion.models.backbones import (MultiStreamViT, convert_dinov2,
                                         convert_sam)
from mmrsfusion.models.backbones.vit_checkpoint import convert_file, main

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODS = [dict(name='rgb', channels=3), dict(name='dsm', channels=1)]


def swiglu_hidden(ffn):  # DINOv2's SwiGLUFFNFused hidden width
    return (int(ffn * 2 / 3) + 7) // 8 * 8


def official_dinov2(c=64, depth=4, grid=4, patch=14, ffn=256, swiglu=False,
                    seed=0):
    """A state dict with the keys of dinov2_vit*14_pretrain.pth."""
    gen = torch.Generator().manual_seed(seed)

    def t(*shape):
        return torch.randn(*shape, generator=gen) * 0.2

    sd = {
        'cls_token': t(1, 1, c),
        'pos_embed': t(1, 1 + grid * grid, c),
        'mask_token': t(1, c),
        'patch_embed.proj.weight': t(c, 3, patch, patch),
        'patch_embed.proj.bias': t(c),
    }
    for i in range(depth):
        b = f'blocks.{i}.'
        sd.update({
            b + 'norm1.weight': 1 + t(c), b + 'norm1.bias': t(c),
            b + 'attn.qkv.weight': t(3 * c, c), b + 'attn.qkv.bias': t(3 * c),
            b + 'attn.proj.weight': t(c, c), b + 'attn.proj.bias': t(c),
            b + 'ls1.gamma': 1 + t(c),
            b + 'norm2.weight': 1 + t(c), b + 'norm2.bias': t(c),
            b + 'ls2.gamma': 1 + t(c),
        })
        if swiglu:
            h = swiglu_hidden(ffn)
            sd.update({
                b + 'mlp.w12.weight': t(2 * h, c),
                b + 'mlp.w12.bias': t(2 * h),
                b + 'mlp.w3.weight': t(c, h), b + 'mlp.w3.bias': t(c),
            })
        else:
            sd.update({
                b + 'mlp.fc1.weight': t(ffn, c), b + 'mlp.fc1.bias': t(ffn),
                b + 'mlp.fc2.weight': t(c, ffn), b + 'mlp.fc2.bias': t(c),
            })
    sd.update({'norm.weight': 1 + t(c), 'norm.bias': t(c)})
    return sd


def official_sam(c=64, depth=4, heads=4, grid=4, window=2, global_idx=(1, 3),
                 neck=32, ffn=256, seed=0):
    """A state dict with the keys of sam_vit_*.pth (image encoder, plus a
    prompt encoder / mask decoder key each, which must be dropped)."""
    gen = torch.Generator().manual_seed(seed)

    def t(*shape):
        return torch.randn(*shape, generator=gen) * 0.2

    e = 'image_encoder.'
    sd = {
        e + 'pos_embed': t(1, grid, grid, c),
        e + 'patch_embed.proj.weight': t(c, 3, 16, 16),
        e + 'patch_embed.proj.bias': t(c),
        'prompt_encoder.point_embeddings.0.weight': t(1, 256),
        'mask_decoder.iou_token.weight': t(1, 256),
    }
    for i in range(depth):
        b = f'{e}blocks.{i}.'
        size = 2 * (grid if i in global_idx else window) - 1
        sd.update({
            b + 'norm1.weight': 1 + t(c), b + 'norm1.bias': t(c),
            b + 'attn.qkv.weight': t(3 * c, c), b + 'attn.qkv.bias': t(3 * c),
            b + 'attn.proj.weight': t(c, c), b + 'attn.proj.bias': t(c),
            b + 'attn.rel_pos_h': t(size, c // heads),
            b + 'attn.rel_pos_w': t(size, c // heads),
            b + 'norm2.weight': 1 + t(c), b + 'norm2.bias': t(c),
            b + 'mlp.lin1.weight': t(ffn, c), b + 'mlp.lin1.bias': t(ffn),
            b + 'mlp.lin2.weight': t(c, ffn), b + 'mlp.lin2.bias': t(c),
        })
    sd.update({
        e + 'neck.0.weight': t(neck, c, 1, 1),
        e + 'neck.1.weight': 1 + t(neck), e + 'neck.1.bias': t(neck),
        e + 'neck.2.weight': t(neck, neck, 3, 3),
        e + 'neck.3.weight': 1 + t(neck), e + 'neck.3.bias': t(neck),
    })
    return sd


def tiny_dinov2(c=64, swiglu=False, **kwargs):
    encoder_cfg = dict(img_size=56)
    if swiglu:
        encoder_cfg['layer_cfgs'] = dict(ffn_type='swiglu_fused')
    return MultiStreamViT(
        MODS,
        arch=dict(embed_dims=c, num_layers=4, num_heads=4,
                  feedforward_channels=256),
        encoder_cfg=encoder_cfg,
        **kwargs)


def tiny_sam(img_size=64, **kwargs):
    return MultiStreamViT(
        MODS,
        family='sam',
        arch=dict(embed_dims=64, num_layers=4, num_heads=4,
                  feedforward_channels=256, global_attn_indexes=[1, 3]),
        encoder_cfg=dict(img_size=img_size, window_size=2, out_channels=32),
        **kwargs)


def run_tool(name, src, dst, capsys=None):
    """The command line, in a subprocess (``capsys`` None) or in-process
    (the same ``main``; importing the stack anew takes seconds)."""
    if capsys is not None:
        main(name.split('.')[0], [str(src), str(dst)])
        return capsys.readouterr().out
    result = subprocess.run(
        [sys.executable, osp.join('tools', 'model_converters', name),
         str(src), str(dst)],
        cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize('swiglu', [False, True])
def test_dinov2_tool_converts_and_loads(tmp_path, capsys, swiglu):
    official = official_dinov2(swiglu=swiglu)
    src, dst = tmp_path / 'dinov2_vitt14_pretrain.pth', tmp_path / 'out.pth'
    torch.save(official, src)
    out = run_tool('dinov2.py', src, dst, capsys if swiglu else None)
    assert 'embed_dims=64, depth=4' in out and '1 dropped' in out
    # an mmengine checkpoint that loads with weights_only=True
    converted = torch.load(dst, weights_only=True)['state_dict']
    assert 'mask_token' not in converted
    assert len(converted) == len(official) - 1
    expect = {
        'cls_token': 'cls_token',
        'pos_embed': 'pos_embed',
        'patch_embed.projection.weight': 'patch_embed.proj.weight',
        'layers.2.ln1.bias': 'blocks.2.norm1.bias',
        'layers.2.attn.qkv.weight': 'blocks.2.attn.qkv.weight',
        'layers.2.attn.proj.bias': 'blocks.2.attn.proj.bias',
        'layers.2.attn.gamma1.weight': 'blocks.2.ls1.gamma',
        'layers.2.ln2.weight': 'blocks.2.norm2.weight',
        'layers.2.ffn.gamma2.weight': 'blocks.2.ls2.gamma',
        'ln1.weight': 'norm.weight',
    }
    if swiglu:
        expect.update({'layers.3.ffn.w12.weight': 'blocks.3.mlp.w12.weight',
                       'layers.3.ffn.w3.bias': 'blocks.3.mlp.w3.bias'})
    else:
        expect.update({
            'layers.3.ffn.layers.0.0.weight': 'blocks.3.mlp.fc1.weight',
            'layers.3.ffn.layers.1.bias': 'blocks.3.mlp.fc2.bias'})
    for new, old in expect.items():
        assert torch.equal(converted[new], official[old]), new

    model = tiny_dinov2(swiglu=swiglu, frozen_checkpoint=str(dst))
    model.init_weights()  # strict: every frozen weight present
    state = model.encoder.state_dict()
    assert set(state) == set(converted)
    for key, value in converted.items():
        assert torch.equal(state[key], value), key


def test_sam_tool_converts_and_loads_with_rel_pos(tmp_path):
    official = official_sam()
    src, dst = tmp_path / 'sam_vit_t_0000.pth', tmp_path / 'out.pth'
    torch.save(official, src)
    out = run_tool('sam.py', src, dst)
    assert 'embed_dims=64, depth=4' in out and '2 dropped' in out
    converted = torch.load(dst, weights_only=True)['state_dict']
    assert not any('prompt' in k or 'decoder' in k for k in converted)
    e = 'image_encoder.'
    expect = {
        'pos_embed': 'pos_embed',
        'patch_embed.projection.bias': 'patch_embed.proj.bias',
        'layers.1.ln1.weight': 'blocks.1.norm1.weight',
        'layers.1.attn.qkv.weight': 'blocks.1.attn.qkv.weight',
        'layers.1.attn.rel_pos_h': 'blocks.1.attn.rel_pos_h',
        'layers.1.attn.rel_pos_w': 'blocks.1.attn.rel_pos_w',
        'layers.1.ln2.bias': 'blocks.1.norm2.bias',
        'layers.1.ffn.layers.0.0.weight': 'blocks.1.mlp.lin1.weight',
        'layers.1.ffn.layers.1.bias': 'blocks.1.mlp.lin2.bias',
        'channel_reduction.0.weight': 'neck.0.weight',
        'channel_reduction.1.bias': 'neck.1.bias',
        'channel_reduction.2.weight': 'neck.2.weight',
        'channel_reduction.3.weight': 'neck.3.weight',
    }
    for new, old in expect.items():
        assert torch.equal(converted[new], official[e + old]), new

    # same grid: loaded as is
    model = tiny_sam(frozen_checkpoint=str(dst))
    model.init_weights()
    for key, value in converted.items():
        assert torch.equal(model.encoder.state_dict()[key], value), key
    # a 2x2 grid (32 input): pos-embed resized bicubically, the global
    # blocks' rel-pos tables (2 * 4 - 1 = 7) interpolated linearly to 3
    small = tiny_sam(img_size=32)
    small.load_frozen(str(dst))
    enc = small.encoder
    assert enc.pos_embed.shape == (1, 2, 2, 64)
    rel = official[e + 'blocks.1.attn.rel_pos_h']
    expected = F.interpolate(
        rel.T[None], size=3, mode='linear')[0].T
    torch.testing.assert_close(enc.layers[1].attn.rel_pos_h, expected)
    assert torch.equal(enc.layers[0].attn.rel_pos_w,
                       official[e + 'blocks.0.attn.rel_pos_w'])  # windowed


@pytest.mark.parametrize('family', ['dinov2', 'sam'])
def test_backbone_loads_an_official_file_directly(tmp_path, family):
    official = official_dinov2() if family == 'dinov2' else official_sam()
    path = str(tmp_path / 'official.pth')
    torch.save(official, path)
    model = tiny_dinov2() if family == 'dinov2' else tiny_sam()
    keys = model.load_frozen(path)
    assert keys == model.frozen_keys()
    convert = convert_dinov2 if family == 'dinov2' else convert_sam
    for key, value in convert(official).items():
        assert torch.equal(model.encoder.state_dict()[key], value), key


def test_architecture_mismatch_fails_loudly(tmp_path):
    # a wider ("ViT-L") checkpoint into a width-64 ("ViT-B") config
    wide = str(tmp_path / 'dinov2_vitl14_pretrain.pth')
    torch.save(official_dinov2(c=96), wide)
    with pytest.raises(ValueError) as err:
        tiny_dinov2().load_frozen(wide)
    message = str(err.value)
    assert 'dinov2_vitl14_pretrain.pth' in message
    assert 'cls_token: (1, 1, 96) in the checkpoint, (1, 1, 64) in the ' \
        'backbone' in message
    # a SAM checkpoint (official or converted) into a DINOv2 config
    sam = tmp_path / 'sam_vit_b_01ec64.pth'
    torch.save(official_sam(), sam)
    converted = tmp_path / 'sam_converted.pth'
    convert_file(sam, converted, 'sam')
    for path in (sam, converted):
        with pytest.raises(ValueError) as err:
            tiny_dinov2().load_frozen(str(path))
        message = str(err.value)
        assert osp.basename(path) in message
        assert 'pos_embed: (1, 4, 4, 64) in the checkpoint, (1, 17, 64) ' \
            'in the backbone' in message
        assert 'patch_embed.projection.weight: (64, 3, 16, 16) in the ' \
            'checkpoint, (64, 3, 14, 14) in the backbone' in message
    # a DINOv2 checkpoint into a SAM config
    dinov2 = str(tmp_path / 'dinov2.pth')
    torch.save(official_dinov2(), dinov2)
    with pytest.raises(ValueError, match=r'dinov2\.pth.*pos_embed'):
        tiny_sam().load_frozen(dinov2)
    # a plain-FFN checkpoint into a SwiGLU (ViT-g) config: missing keys
    with pytest.raises(ValueError, match=r'missing.*ffn\.w12\.weight'):
        tiny_dinov2(swiglu=True).load_frozen(dinov2)


def test_converters_refuse_unknown_layouts():
    sd = official_dinov2(depth=1)
    with pytest.raises(KeyError, match='head.weight'):
        convert_dinov2({**sd, 'head.weight': torch.zeros(1)})
    with pytest.raises(ValueError, match='register tokens'):
        convert_dinov2({**sd, 'register_tokens': torch.zeros(1, 4, 64)})
    with pytest.raises(KeyError, match='blocks.0.mlp.fc9.weight'):
        convert_dinov2({**sd, 'blocks.0.mlp.fc9.weight': torch.zeros(1)})
    sam = official_sam(depth=1, global_idx=())
    with pytest.raises(KeyError, match='image_encoder.blocks.0.adapter'):
        convert_sam({**sam, 'image_encoder.blocks.0.adapter.weight': 0})
    with pytest.raises(KeyError, match='no image_encoder'):
        convert_sam(sd)


def test_tool_fails_on_a_foreign_checkpoint(tmp_path):
    src = tmp_path / 'sam.pth'
    torch.save(official_sam(depth=1, global_idx=()), src)
    with pytest.raises(KeyError, match='image_encoder.pos_embed'):
        main('dinov2', [str(src), str(tmp_path / 'out.pth')])
    assert not (tmp_path / 'out.pth').exists()


def test_dinov2_conversion_matches_the_official_architecture(tmp_path):
    """Same outputs as timm's DINOv2 ViT (the official module layout and
    key names) holding the official-format weights."""
    timm = pytest.importorskip('timm')
    ref = timm.models.vision_transformer.VisionTransformer(
        img_size=56, patch_size=14, embed_dim=64, depth=4, num_heads=4,
        mlp_ratio=4, init_values=1e-5, num_classes=0).eval()
    official = official_dinov2()
    ref.load_state_dict(
        {k: v for k, v in official.items() if k != 'mask_token'})
    path = str(tmp_path / 'official.pth')
    torch.save(official, path)
    model = tiny_dinov2(out_indices=[3], frozen_checkpoint=path)
    model.init_weights()
    model.eval()
    x = torch.randn(2, 4, 56, 56)
    with torch.no_grad():
        expected = ref.forward_features(x[:, :3])[:, 1:]  # final norm
        out = model(x)[0][0]  # rgb stream, normed at the last tap
    torch.testing.assert_close(
        out.flatten(2).transpose(1, 2), expected, rtol=1e-4, atol=1e-4)


def test_sam_conversion_matches_the_official_architecture(tmp_path):
    """Same outputs (neck included) as timm's SAM image encoder holding the
    official-format weights (timm names ``mlp.lin*`` ``mlp.fc*``)."""
    timm = pytest.importorskip('timm')
    from timm.models.vision_transformer_sam import VisionTransformerSAM
    ref = VisionTransformerSAM(
        img_size=64, patch_size=16, embed_dim=64, depth=4, num_heads=4,
        window_size=2, global_attn_indexes=(1, 3), use_rel_pos=True,
        neck_chans=32, num_classes=0,
        norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6)).eval()
    official = official_sam()
    ref.load_state_dict({
        k[len('image_encoder.'):].replace('mlp.lin', 'mlp.fc'): v
        for k, v in official.items() if k.startswith('image_encoder.')
    })
    path = str(tmp_path / 'sam_vit_t.pth')
    torch.save(official, path)
    model = tiny_sam(
        out_indices=[3], tap_transform='neck', frozen_checkpoint=path)
    model.init_weights()
    model.eval()
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        expected = ref.forward_features(x[:, :3])
        out = model(x)[0][0]
    assert timm is not None and out.shape == expected.shape == (2, 32, 4, 4)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
