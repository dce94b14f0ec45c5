"""MultiModalEncoderDecoder: training losses, inference (whole and slide),
padding without stretching, modality dropping, and learning.

A tiny multi-stream conv net registered here stands in for the backbone: it
honours the backbone contract (stacked (B, C_total, H, W) in, a tuple of S
tensors (M, B, C, ceil(H/p), ceil(W/p)) out, bottom/right zero padding,
``patch_size`` and ``modalities`` attributes). The last test runs the real
MultiStreamViT (tiny) end to end.
"""
import argparse
import copy
import math
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.model import BaseModule
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmrsfusion  # noqa: F401
from mmrsfusion.utils import ModalitySpec
from mmrsfusion.utils import load_config

init_default_scope('mmseg')

RECIPE = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))),
    'configs', 'mobanet', '_base_', 'mobanet_recipe.py')

MODS = [
    dict(name='rgb', channels=3, kind='optical'),
    dict(name='dsm', channels=1, kind='elevation'),
]
NUM_CLASSES = 4
NORM = dict(type='BN', requires_grad=True)


@MODELS.register_module(name='_TinyMultiStreamConvNet', force=True)
class TinyMultiStreamConvNet(BaseModule):
    """Per-modality patchify conv (stride p), then S shared residual conv
    stages run on all streams as one batch."""

    def __init__(self, modalities, embed_dims=16, patch_size=4,
                 num_stages=4, init_cfg=None):
        super().__init__(init_cfg)
        self.modalities = ModalitySpec.build(modalities)
        self.patch_size = patch_size
        self.embeds = nn.ModuleList(
            nn.Conv2d(m.channels, embed_dims, patch_size, stride=patch_size)
            for m in self.modalities)
        self.stages = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(embed_dims, embed_dims, 3, padding=1), nn.GELU())
            for _ in range(num_stages))

    def forward(self, x):
        p = self.patch_size
        h, w = math.ceil(x.shape[2] / p), math.ceil(x.shape[3] / p)
        x = F.pad(x, (0, w * p - x.shape[3], 0, h * p - x.shape[2]))
        parts = self.modalities.split(x).values()
        t = torch.stack([e(part) for e, part in zip(self.embeds, parts)])
        m, b = t.shape[:2]
        t = t.flatten(0, 1)
        outs = []
        for stage in self.stages:
            t = t + stage(t)
            outs.append(t.unflatten(0, (m, b)))
        return tuple(outs)


def model_cfg(aux=True, test_cfg=None, **kwargs):
    cfg = dict(
        type='MultiModalEncoderDecoder',
        modalities=MODS,
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[0.] * 4,
            std=[1.] * 4,
            pad_val=0,
            seg_pad_val=255,
            size_divisor=1),
        backbone=dict(
            type='_TinyMultiStreamConvNet', modalities=MODS, embed_dims=16),
        neck=dict(type='DGFMNeck', in_channels=[16] * 4, out_channels=16),
        decode_head=dict(
            type='UPerHeadNoBias',
            in_channels=[16] * 4,
            in_index=[0, 1, 2, 3],
            channels=8,
            pool_scales=(1, 2, 3, 6),
            dropout_ratio=0.1,
            num_classes=NUM_CLASSES,
            norm_cfg=NORM,
            align_corners=False,
            loss_decode=dict(
                type='CrossEntropyLoss',
                use_sigmoid=False,
                loss_weight=1.0,
                avg_non_ignore=True)),
        test_cfg=test_cfg or dict(mode='whole'))
    if aux:
        cfg.update(
            auxiliary_head=dict(
                type='FCNHeadNoBias',
                in_channels=16,
                in_index=0,
                channels=16,
                num_convs=1,
                kernel_size=3,
                concat_input=False,
                dropout_ratio=0.1,
                num_classes=NUM_CLASSES,
                norm_cfg=NORM,
                align_corners=False),
            aux_loss=dict(type='HardPixelCrossEntropyLoss', loss_weight=0.01))
    cfg.update(kwargs)
    return cfg


def build(seed=0, **kwargs):
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg(**kwargs))
    model.init_weights()
    return model


def inputs(b=2, h=30, w=26, seed=1):
    return torch.randn(
        b, 4, h, w, generator=torch.Generator().manual_seed(seed))


def samples(labels):
    out = []
    for label in labels:
        h, w = label.shape
        s = SegDataSample(
            metainfo=dict(ori_shape=(h, w), img_shape=(h, w),
                          pad_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=label[None].long())
        out.append(s)
    return out


def random_labels(b=2, h=30, w=26, seed=2):
    return torch.randint(
        0, NUM_CLASSES, (b, h, w), generator=torch.Generator().manual_seed(
            seed))


def test_loss_keys_finite_and_aux_wiring():
    model = build()
    model.train()
    x = inputs()
    seen = {}

    def record(name):
        return lambda module, args, out: seen.update({name: args[0]})

    for name, head in model.auxiliary_head.items():
        head.register_forward_hook(record(name))
    losses = model.loss(x, samples(random_labels()))
    assert set(losses) == {
        'decode.loss_ce', 'decode.acc_seg', 'aux_rgb.loss_hard_ce',
        'aux_dsm.loss_hard_ce'
    }
    for key, value in losses.items():
        assert torch.isfinite(value).all(), key
    # untrained model, random labels: many hard pixels, non-zero aux loss
    assert losses['aux_rgb.loss_hard_ce'] > 0
    assert losses['aux_dsm.loss_hard_ce'] > 0
    # aux head of modality m reads the projected maps of modality m
    with torch.no_grad():
        _, modal = model.neck(model.backbone(x), return_modalities=True)
    for idx, name in enumerate(['rgb', 'dsm']):
        assert len(seen[name]) == 4
        for stage, feat in zip(modal, seen[name]):
            torch.testing.assert_close(feat, stage[idx])
    total, log = model.parse_losses(losses)
    total.backward()
    assert model.auxiliary_head['dsm'].conv_seg.weight.grad.abs().sum() > 0


def test_aux_loss_is_hard_pixel_ce_of_aux_logits():
    model = build()
    model.eval()  # no dropout, BN running stats: deterministic
    x = inputs()
    labels = random_labels()
    losses = model.loss(x, samples(labels))
    with torch.no_grad():
        fused, modal = model.neck(model.backbone(x), return_modalities=True)
        main = model.logits_to_input_size(
            model.decode_head.forward(fused), x.shape[2:])
        aux = model.logits_to_input_size(
            model.auxiliary_head['rgb'].forward([s[0] for s in modal]),
            x.shape[2:])
    omega = main.argmax(1) != labels
    ce = F.cross_entropy(aux, labels, reduction='none')[omega].mean()
    torch.testing.assert_close(losses['aux_rgb.loss_hard_ce'], 0.01 * ce)
    torch.testing.assert_close(losses['decode.loss_ce'],
                               F.cross_entropy(main, labels))


def test_no_aux_heads():
    model = build(aux=False)
    model.train()
    losses = model.loss(inputs(), samples(random_labels()))
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg'}
    assert not model.with_auxiliary_head


def test_predict_returns_input_size_and_skips_aux_heads():
    model = build()
    model.eval()

    def fail(*args):
        raise AssertionError('aux head run at inference')

    for head in model.auxiliary_head.values():
        head.register_forward_hook(fail)
    x = inputs(h=30, w=26)  # not multiples of the patch (4)
    with torch.no_grad():
        out = model.predict(x, samples(random_labels()))
        bare = model.predict(x)
        tensor = model(x, mode='tensor')
    for res in (out, bare):
        assert res[0].seg_logits.data.shape == (NUM_CLASSES, 30, 26)
        assert res[0].pred_sem_seg.data.shape == (1, 30, 26)
    assert tensor.shape == (2, NUM_CLASSES, 30, 26)
    torch.testing.assert_close(out[1].seg_logits.data, tensor[1])


def test_logits_upsampled_to_padded_size_and_cropped():
    model = build()
    model.eval()
    x = inputs(h=30, w=26)  # padded to 32 x 28, 8 x 7 tokens
    with torch.no_grad():
        low = model.decode_head.forward(model.extract_feat(x))
        assert low.shape[2:] == (8, 7)
        logits = model.encode_decode(x, None)
    expected = F.interpolate(
        low, size=(32, 28), mode='bilinear', align_corners=False)[:, :, :30,
                                                                  :26]
    torch.testing.assert_close(logits, expected)
    stretched = F.interpolate(
        low, size=(30, 26), mode='bilinear', align_corners=False)
    assert not torch.allclose(logits, stretched)

    # a logit map that is 1 on token row 0 only: the upsampled ramp must
    # be centred on that patch (rows 0..3), not on a stretched one
    ramp = torch.zeros(1, 1, 8, 7)
    ramp[:, :, 0] = 1
    out = model.logits_to_input_size(ramp, (30, 26))[0, 0, :, 0]
    assert out[:2].eq(1).all() and out[2:6].gt(0).all() and out[6:].eq(
        0).all()

    # no patch size: plain resize (mmseg's behaviour)
    model.patch_size = None
    torch.testing.assert_close(
        model.logits_to_input_size(low, (30, 26)), stretched)


def test_one_spec_object_is_handed_down():
    spec = MODS + [dict(name='nir', channels=1, kind='band')]
    cfg = model_cfg(
        aux=False,
        modalities=[dict(m, mean=[0.] * m['channels'],
                         std=[1.] * m['channels']) for m in spec],
        data_preprocessor=dict(type='MultiModalSegDataPreProcessor'),
        backbone=dict(type='_TinyMultiStreamConvNet', embed_dims=16),
        neck=dict(type='DGFMNeck', in_channels=[16] * 4, out_channels=16,
                  fusion='mean'))  # DGFM fuses exactly 2
    model = MODELS.build(cfg)
    assert model.modalities.names == ('rgb', 'dsm', 'nir')
    assert model.backbone.modalities is model.modalities
    assert model.data_preprocessor.modalities is model.modalities
    out = model(torch.randn(2, 5, 16, 16), mode='tensor')
    assert out.shape == (2, NUM_CLASSES, 16, 16)
    with pytest.raises(ValueError, match='model.modalities: no modality '
                       'spec'):
        MODELS.build(dict(cfg, modalities=None))


def test_conflicting_specs_are_refused():
    with pytest.raises(ValueError, match=r"model\.modalities and "
                       r"model\.backbone\.modalities declare different "
                       r"modality specs: \[rgb:3 optical, nir:1 band\] vs "
                       r"\[rgb:3 optical, dsm:1 elevation\]"):
        build(modalities=[dict(name='rgb', channels=3),
                          dict(name='nir', channels=1)])


def test_patch_size_from_backbone_or_argument():
    assert build().patch_size == (4, 4)
    assert build(patch_size=(2, 8)).patch_size == (2, 8)


def test_slide_inference_on_a_tile_bigger_than_the_window():
    slide = dict(mode='slide', crop_size=(18, 18), stride=(12, 12))
    model = build(test_cfg=slide)
    model.eval()
    x = inputs(b=1, h=45, w=37)  # (45 - 18) and (37 - 18) not multiples
    with torch.no_grad():
        res = model.predict(x, samples(random_labels(b=1, h=45, w=37)))
        logits = res[0].seg_logits.data
        assert logits.shape == (NUM_CLASSES, 45, 37)
        assert torch.isfinite(logits).all()
        # compare with mmseg's slide algorithm done by hand on the windows
        expected = torch.zeros(NUM_CLASSES, 45, 37)
        count = torch.zeros(1, 45, 37)
        for y in range(4):  # ceil((45 - 18) / 12) + 1
            for xi in range(3):  # ceil((37 - 18) / 12) + 1
                y2, x2 = min(y * 12 + 18, 45), min(xi * 12 + 18, 37)
                y1, x1 = y2 - 18, x2 - 18
                crop = model.encode_decode(x[:, :, y1:y2, x1:x2], None)
                expected[:, y1:y2, x1:x2] += crop[0]
                count[:, y1:y2, x1:x2] += 1
        torch.testing.assert_close(logits, expected / count)
        # a window as big as the tile: the same as whole inference
        model.test_cfg = Config(
            dict(mode='slide', crop_size=(64, 64), stride=(32, 32)))
        big = model.predict(x)[0].seg_logits.data
        model.test_cfg = Config(dict(mode='whole'))
        whole = model.predict(x)[0].seg_logits.data
    torch.testing.assert_close(big, whole)


@pytest.mark.parametrize('drop,kept', [('dsm', slice(0, 3)),
                                       ('rgb', slice(3, 4))])
def test_absent_makes_output_independent(drop, kept):
    model = build(absent=[drop])
    model.eval()
    dropped = slice(3, 4) if drop == 'dsm' else slice(0, 3)
    x = inputs()
    x2 = x.clone()
    x2[:, dropped] = torch.randn_like(x2[:, dropped]) * 5
    with torch.no_grad():
        a = model.predict(x.clone())[0].seg_logits.data
        b = model.predict(x2)[0].seg_logits.data
        assert torch.equal(a, b)
        zeroed = x.clone()
        zeroed[:, dropped] = 0
        model.absent = None
        assert torch.equal(model.predict(zeroed)[0].seg_logits.data, a)
        # without dropping, the dropped channels do matter
        c = model.predict(x)[0].seg_logits.data
        assert not torch.allclose(a, c)
        # the kept channels still matter
        x3 = x.clone()
        x3[:, kept] += 1
        model.absent = drop
        assert not torch.allclose(model.predict(x3)[0].seg_logits.data, a)
    assert model.absent == (drop, )


def test_absent_from_cfg_options_and_errors():
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(
        ['--cfg-options', "model.absent=['dsm']"])
    cfg = Config(dict(model=model_cfg()))
    cfg.merge_from_dict(args.cfg_options)
    model = MODELS.build(cfg.model)
    assert model.absent == ('dsm', )

    with pytest.raises(ValueError, match=r"unknown modalities \['lidar'\].*"
                       r"\['rgb', 'dsm'\]"):
        build(absent=['dsm', 'lidar'])
    with pytest.raises(ValueError, match='lidar'):
        model.absent = ['lidar']
    with pytest.raises(ValueError, match='aux_modalities'):
        build(aux_modalities=['sar'])


def test_aux_modalities_subset_and_per_modality_configs():
    model = build(aux_modalities=['dsm'])
    assert list(model.auxiliary_head) == ['dsm']
    model.train()
    losses = model.loss(inputs(), samples(random_labels()))
    assert 'aux_dsm.loss_hard_ce' in losses
    assert 'aux_rgb.loss_hard_ce' not in losses
    head = model_cfg()['auxiliary_head']
    head8 = dict(head, channels=8)
    model = build(auxiliary_head=[head, head8])
    assert model.auxiliary_head['rgb'].channels == 16
    assert model.auxiliary_head['dsm'].channels == 8
    with pytest.raises(ValueError, match='one per aux modality'):
        build(auxiliary_head=[head])


def learnable_batch(b=8, h=24, w=24, seed=0):
    """Labels a function of both modalities at patch (4 x 4) scale."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(b, 4, h // 4, w // 4, generator=gen)
    x = coarse.repeat_interleave(4, 2).repeat_interleave(4, 3)
    x = x + 0.1 * torch.randn(x.shape, generator=gen)
    labels = 2 * (x[:, :3].mean(1) > 0).long() + (x[:, 3] > 0).long()
    return x, labels


def test_sgd_steps_reduce_the_loss_with_mcrm():
    """train_step through the project's data preprocessor, which runs MCRM
    as a batch augmentation after normalisation."""
    spec = [dict(m, mean=[0.5] * m['channels'], std=[2.] * m['channels'])
            for m in MODS]
    model = build(
        modalities=spec,
        backbone=dict(type='_TinyMultiStreamConvNet', embed_dims=16),
        data_preprocessor=dict(
            type='MultiModalSegDataPreProcessor',
            size=(16, 16),
            batch_augments=[
                dict(type='MCRM', ratio=0.5, seed=0)
            ]))
    model.train()
    x, labels = learnable_batch(b=4, h=16, w=16)
    raw = x * 2 + 0.5
    data = dict(inputs=list(raw), data_samples=samples(labels))

    # normalised, then 2 samples masked, each in one modality
    out = model.data_preprocessor(copy.deepcopy(data), training=True)
    masked = out['inputs'] != (raw - 0.5) / 2
    rgb = masked[:, :3].flatten(1).any(1)
    dsm = masked[:, 3:].flatten(1).any(1)
    assert int(rgb.sum()) == int(dsm.sum()) == 1 and not (rgb & dsm).any()
    assert (out['inputs'][masked] == 0).all()

    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.3,
                                         momentum=0.9))
    history = []
    for _ in range(20):
        log_vars = model.train_step(copy.deepcopy(data), optim)
        history.append(log_vars['loss'].item())
    assert {'loss', 'decode.loss_ce', 'aux_rgb.loss_hard_ce',
            'aux_dsm.loss_hard_ce'} <= set(log_vars)
    assert all(math.isfinite(v) for v in history)
    first, last = sum(history[:3]) / 3, sum(history[-3:]) / 3
    assert last < 0.7 * first, history


@pytest.mark.parametrize('paramwise', [True, False])
def test_end_to_end_with_multi_stream_vit(paramwise):
    """The real backbone (a tiny DINOv2-style ViT, patch 14, CPIA) with the
    DGFM neck, UPerHead and aux heads: train step, padded prediction,
    modality dropping. The optimizer is built as mmengine's runner builds
    it, ``build_optim_wrapper`` on the whole model: with the MoBaNet
    recipe's ``optim_wrapper`` (paramwise_cfg: mmengine then leaves out the
    parameters with requires_grad False) or without paramwise_cfg (AdamW
    with weight decay holds every parameter, the frozen ones included).
    After a step the frozen weights have no gradient and have not moved;
    the trainable ones have."""
    tiny = dict(
        embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)
    cfg = model_cfg(
        backbone=dict(
            type='MultiStreamViT',
            modalities=MODS,
            family='dinov2',
            arch=tiny,
            out_indices=[0, 1, 2, 3],
            stage_adapter=dict(type='CPIA'),
            encoder_cfg=dict(img_size=56)))
    cfg['neck'] = dict(type='DGFMNeck', in_channels=[32] * 4, out_channels=16)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    assert model.patch_size == (14, 14)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, labels = learnable_batch(b=4, h=32, w=32)  # padded to 42: 3 x 3
    optim_cfg = load_config(RECIPE).optim_wrapper
    assert bool(optim_cfg.get('paramwise_cfg'))
    if not paramwise:
        optim_cfg.pop('paramwise_cfg')
    optim = build_optim_wrapper(model, optim_cfg)
    in_optimizer = {
        id(p)
        for group in optim.optimizer.param_groups for p in group['params']
    }
    expected = [p for p in model.parameters() if p.requires_grad or
                not paramwise]
    assert in_optimizer == {id(p) for p in expected}
    # the gradients as the optimizer step sees them (zero_grad follows)
    grads = {}
    optim.optimizer.register_step_pre_hook(lambda *_: grads.update(
        {n: p.grad for n, p in model.named_parameters()}))
    model.train()
    log_vars = model.train_step(
        dict(inputs=list(x), data_samples=samples(labels)), optim)
    assert math.isfinite(log_vars['loss'])
    assert {'aux_rgb.loss_hard_ce', 'aux_dsm.loss_hard_ce'} <= set(log_vars)
    for name, param in model.named_parameters():
        assert (grads[name] is None) == name.startswith('backbone.encoder.')
    frozen = set(model.backbone.encoder.state_dict())
    moved = []
    for k, v in model.state_dict().items():
        if k.startswith('backbone.encoder.'):
            assert k[len('backbone.encoder.'):] in frozen
            assert torch.equal(v, before[k]), k
        elif v.is_floating_point() and not torch.equal(v, before[k]):
            moved.append(k)
    assert 'backbone.aux_embeds.dsm.weight' in moved
    assert 'backbone.stage_adapters.0.gamma' in moved
    assert 'decode_head.conv_seg.weight' in moved
    model.eval()
    with torch.no_grad():
        res = model.predict(x[:2], samples(labels[:2]))
        assert res[0].seg_logits.data.shape == (NUM_CLASSES, 32, 32)
        model.absent = ['dsm']
        a = model(x[:2], mode='tensor')
        x2 = x[:2].clone()
        x2[:, 3] = 7.
        assert torch.equal(a, model(x2, mode='tensor'))


def mobanet_cfg(arch='base', cpia=True, fusion='dgfm', aux=True):
    """MoBaNet, reference form (DINOv2, 6 classes), as the configs build
    it."""
    width = dict(base=768, large=1024)[arch]
    cfg = model_cfg(
        aux=aux,
        backbone=dict(
            type='MultiStreamViT',
            modalities=MODS,
            family='dinov2',
            arch=arch,
            stage_adapter=dict(type='CPIA') if cpia else None))
    cfg['neck'] = dict(
        type='DGFMNeck', in_channels=[width] * 4, fusion=fusion)
    cfg['decode_head'].update(
        in_channels=[256] * 4, channels=64, num_classes=6)
    if aux:
        cfg['auxiliary_head'].update(
            in_channels=256, channels=256, num_classes=6)
    return cfg


@pytest.mark.parametrize('arch,parts,total', [
    ('base', dict(cpia=False, fusion='mean', aux=False), 1_908_352),
    ('base', dict(cpia=True, fusion='mean', aux=False), 3_990_400),
    ('base', dict(cpia=True, fusion='dgfm', aux=False), 4_995_712),
    ('base', dict(), 6_179_456),
    ('large', dict(), 8_981_376),
])
def test_mobanet_trainable_parameters(arch, parts, total):
    """Paper Table IV (ViT-B: Base 1.91M, +CPIA 3.99M, +DGFM 5.00M,
    +MCRM 6.18M) and the ViT-L total, exactly; built on 'meta'."""
    with torch.device('meta'):
        model = MODELS.build(mobanet_cfg(arch, **parts))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == total
