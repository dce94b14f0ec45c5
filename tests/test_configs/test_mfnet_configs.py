"""The MFNet configs: the paper's recipe, the method wiring of each config,
and each config's model (tiny SAM in place of the real one) training a step
with frozen weights unmoved and predicting full-size maps by sliding
window."""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmrsfusion  # noqa: F401
from mmrsfusion.utils import total_channels

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MFNET = sorted(  # the paper's configs; not the CPU demos
    osp.relpath(p, ROOT) for p in glob.glob(
        osp.join(ROOT, 'configs', 'mfnet', 'sam_*.py')))
init_default_scope('mmseg')


def load(name):
    return Config.fromfile(osp.join(ROOT, name))


def test_discovery():
    names = {osp.basename(n)[:-3] for n in MFNET}
    main = {f'sam_vit{a}_{m}_{d}' for a in 'blh'
            for m in ('mmadapter', 'mmlora') for d in ('vaihingen', 'potsdam')}
    baselines = {'sam_vitb_adapter_vaihingen', 'sam_vitb_lora_vaihingen',
                 'sam_vitb_adapter_dsm_late_vaihingen',
                 'sam_vitb_lora_dsm_late_vaihingen'}
    assert main | baselines <= names


@pytest.mark.parametrize('name', MFNET)
def test_recipe(name):
    """SGD 0.01 / momentum 0.9 / wd 5e-4, 50 x 1000 iterations, x0.1 at
    25k / 35k / 45k, batch 10 (4 for ViT-H), 256 crops + flips, SAM pixel
    statistics, DSM min-max per tile (mean 0 / std 1), slide 256 / 32,
    plain CE, trainable-only checkpoints, MFNet split."""
    cfg = load(name)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == (
        'SGD', 0.01, 0.9, 5e-4)
    assert cfg.train_cfg.max_iters == 50_000
    (step, ) = cfg.param_scheduler
    assert step.type == 'MultiStepLR' and step.gamma == 0.1
    assert step.milestones == [25_000, 35_000, 45_000]
    assert cfg.train_dataloader.batch_size == (4 if 'vith' in name else 10)
    assert cfg.train_dataloader.dataset.data_root.endswith('_mfnet')
    types = {t.type: t for t in cfg.train_pipeline}
    assert types['RandomCrop'].crop_size == (256, 256)
    assert 'RandomFlip' in types
    model = cfg.model
    rgb = model.data_preprocessor.modalities[0]
    assert (rgb.mean, rgb.std) == ([123.675, 116.28, 103.53],
                                   [58.395, 57.12, 57.375])
    assert model.test_cfg == dict(
        mode='slide', crop_size=(256, 256), stride=(32, 32))
    assert model.decode_head.loss_decode.type == 'CrossEntropyLoss'
    assert model.backbone.aux_embed == 'shared'
    assert model.backbone.tap_transform == 'neck'
    assert 'TrainableCheckpointHook' in [h.type for h in cfg.custom_hooks]


@pytest.mark.parametrize('name,types,cross,num_modalities', [
    ('sam_vitb_mmadapter_vaihingen', ['AttnAdapter', 'FFNAdapter'], True, 2),
    ('sam_vitb_mmlora_potsdam', ['LoRALinear', 'LoRALinear'], True, 2),
    ('sam_vitb_adapter_dsm_late_vaihingen', ['AttnAdapter', 'FFNAdapter'],
     False, 2),
    ('sam_vitb_lora_dsm_late_vaihingen', ['LoRALinear', 'LoRALinear'],
     False, 2),
    ('sam_vitb_adapter_vaihingen', ['AttnAdapter', 'FFNAdapter'], False, 1),
    ('sam_vitb_lora_vaihingen', ['LoRALinear', 'LoRALinear'], False, 1),
])
def test_method_wiring(name, types, cross, num_modalities):
    cfg = load(f'configs/mfnet/{name}.py')
    peft = cfg.model.backbone.peft
    assert [p.type for p in peft] == types
    assert bool(peft[1].get('cross_modal')) == cross
    assert len(cfg.model.data_preprocessor.modalities) == num_modalities
    assert cfg.model.neck.num_modalities == num_modalities
    assert [m.name for m in cfg.train_pipeline[0].modalities] == \
        ['rgb', 'dsm'][:num_modalities]


def tiny(cfg):
    model = copy.deepcopy(cfg.model)
    model.backbone.arch = dict(embed_dims=32, num_layers=4, num_heads=2,
                               feedforward_channels=64,
                               global_attn_indexes=[1, 3])
    model.backbone.out_indices = [3]
    model.backbone.encoder_cfg = dict(img_size=64, window_size=4,
                                      out_channels=32)
    model.backbone.frozen_checkpoint = None
    model.neck.in_channels = 32
    model.decode_head.in_channels = [32] * 4
    model.decode_head.channels = 16
    model.decode_head.num_heads = 2
    return revert_sync_batchnorm(MODELS.build(model))


def batch(cfg, b, h, w, seed=0):
    gen = torch.Generator().manual_seed(seed)
    channels = total_channels(cfg.model.data_preprocessor.modalities)
    samples = []
    for _ in range(b):
        s = SegDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, 6, (1, h, w), generator=gen))
        samples.append(s)
    return dict(inputs=[torch.rand(channels, h, w, generator=gen) * 255
                        for _ in range(b)], data_samples=samples)


@pytest.mark.parametrize('name', [
    'sam_vitb_mmadapter_vaihingen', 'sam_vitb_mmlora_vaihingen',
    'sam_vitb_lora_vaihingen'
])
def test_trains_and_infers_tiny(name):
    cfg = load(f'configs/mfnet/{name}.py')
    torch.manual_seed(0)
    model = tiny(cfg)
    model.init_weights()
    frozen_keys = set(model.backbone.frozen_keys())
    state = model.backbone.state_dict()
    frozen = {k: state[k].clone() for k in frozen_keys}
    optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    model.train()
    log_vars = model.train_step(batch(cfg, 2, 256, 256), optim)
    assert torch.isfinite(log_vars['loss'])
    state = model.backbone.state_dict()
    for key, value in frozen.items():
        assert torch.equal(state[key], value), key
    model.eval()
    data = model.data_preprocessor(batch(cfg, 1, 320, 256, seed=1), False)
    with torch.no_grad():
        (result, ) = model.predict(data['inputs'], data['data_samples'])
    assert result.pred_sem_seg.data.shape == (1, 320, 256)
