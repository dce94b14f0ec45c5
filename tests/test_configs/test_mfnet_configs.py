"""The MFNet configs: the paper's recipe, the method wiring of each config,
and each config's model (tiny SAM in place of the real one) training a step
with frozen weights unmoved and predicting full-size maps by sliding
window. Checkpoints (trainable means requires_grad): an MMLoRA model's keep
the PEFT weights that live inside the frozen encoder, drop the frozen ones
and load back (re-attached from the pretrained file) to identical
predictions; the full-size MMLoRA ViT-B checkpoint holds ~3.2M parameters.
"""
import copy
import glob
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmrsfusion  # noqa: F401
from mmrsfusion.checkpoint import load_trainable_checkpoint, strip_frozen
from mmrsfusion.models.peft import LoRALinear, merge_lora, peft_wrappers
from mmrsfusion.utils import load_config
from test_configs import batch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MFNET = sorted(  # the paper's ISPRS configs; not the CPU demos
    osp.relpath(p, ROOT)
    for p in glob.glob(osp.join(ROOT, 'configs', 'mfnet', 'sam_*.py'))
    if 'mmhunan' not in p)
init_default_scope('mmseg')


def load(name):
    return load_config(osp.join(ROOT, name))


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
    assert types['LoadMultiModalRandomWindow'].crop_size == (256, 256)
    model = cfg.model
    rgb = model.modalities[0]
    assert (rgb.mean, rgb.std) == ([123.675, 116.28, 103.53],
                                   [58.395, 57.12, 57.375])
    assert model.test_cfg == dict(
        mode='slide', crop_size=(256, 256), stride=(32, 32))
    assert model.decode_head.loss_decode.type == 'CrossEntropyLoss'
    assert model.backbone.aux_embed == 'shared'
    assert model.backbone.tap_transform == 'neck'
    assert 'TrainableCheckpointHook' in [h.type for h in cfg.custom_hooks]


@pytest.mark.parametrize('name', sorted(
    osp.relpath(p, ROOT)
    for p in glob.glob(osp.join(ROOT, 'configs', 'mfnet', '*.py'))))
def test_flips_are_independent_as_in_the_authors_code(name):
    """The authors flip vertically and horizontally, each at p = 0.5
    (utils.py ``data_augmentation``), in every configuration: multimodal,
    optical-only baselines, MMHunan and the demos alike, so the baselines
    differ from the methods in the method only."""
    flips = [(t.prob, t.direction) for t in load(name).train_pipeline
             if t.type == 'RandomFlip']
    assert flips == [(0.5, 'horizontal'), (0.5, 'vertical')]


@pytest.mark.parametrize('name,types,cross,num_modalities', [
    ('sam_vitb_mmadapter_vaihingen', ['AttnAdapter', 'FFNAdapter'], True, 2),
    ('sam_vitb_mmlora_potsdam', ['LoRALinear', 'LoRALinear', 'PerModality'],
     True, 2),
    ('sam_vitb_adapter_dsm_late_vaihingen', ['AttnAdapter', 'FFNAdapter'],
     False, 2),
    ('sam_vitb_lora_dsm_late_vaihingen',
     ['LoRALinear', 'LoRALinear', 'PerModality'], False, 2),
    ('sam_vitb_adapter_vaihingen', ['AttnAdapter', 'FFNAdapter'], False, 1),
    ('sam_vitb_lora_vaihingen', ['LoRALinear', 'LoRALinear'], False, 1),
])
def test_method_wiring(name, types, cross, num_modalities):
    cfg = load(f'configs/mfnet/{name}.py')
    peft = cfg.model.backbone.peft
    assert [p.type for p in peft] == types
    assert bool(peft[1].get('cross_modal')) == cross
    assert len(cfg.model.modalities) == num_modalities
    assert 'num_modalities' not in cfg.model.neck  # the spec's
    assert [m.name for m in cfg.train_dataloader.dataset.modalities] == \
        ['rgb', 'dsm'][:num_modalities]


def trainable_parameter_keys(model):
    """State-dict keys of the parameters that train (a PEFT wrapper hides
    its ``base.`` from the keys, not from ``named_parameters``)."""
    return {
        k
        for k, v in model.state_dict(keep_vars=True).items()
        if isinstance(v, torch.nn.Parameter) and v.requires_grad
    }


def tiny(cfg, frozen_checkpoint=None):
    """The config's model with a tiny SAM-style encoder."""
    model = copy.deepcopy(cfg.model)
    model.backbone.arch = dict(embed_dims=32, num_layers=4, num_heads=2,
                               feedforward_channels=64,
                               global_attn_indexes=[1, 3])
    model.backbone.out_indices = [3]
    model.backbone.encoder_cfg = dict(img_size=64, window_size=4,
                                      out_channels=32)
    model.backbone.frozen_checkpoint = frozen_checkpoint
    model.neck.in_channels = 32
    model.decode_head.in_channels = [32] * 4
    model.decode_head.channels = 16
    model.decode_head.num_heads = 2
    return revert_sync_batchnorm(MODELS.build(model))


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


# ----------------------------------------------------------- checkpoints --
MMLORA = 'configs/mfnet/sam_vitb_mmlora_vaihingen.py'


def test_round_trip_keeps_lora_and_reattaches_frozen(tmp_path):
    torch.manual_seed(0)
    pretrained = tiny(load(MMLORA))
    with torch.no_grad():
        for p in pretrained.backbone.encoder.parameters():
            p.normal_(0, 0.2)
    frozen_file = str(tmp_path / 'sam_tiny_converted.pth')
    torch.save({'state_dict': {
        k[len('backbone.encoder.'):]: v
        for k, v in pretrained.state_dict().items()
        if k in {f'backbone.{f}' for f in pretrained.backbone.frozen_keys()}
    }}, frozen_file)

    trained = tiny(load(MMLORA), frozen_file)
    trained.init_weights()
    with torch.no_grad():  # "trained" PEFT and head weights
        for m in peft_wrappers(trained):
            if not isinstance(m, LoRALinear):  # PerModality: no weights
                continue
            m.lora_b.normal_(0, 0.2)
            if m.cross_modal:
                m.mix.uniform_()
    checkpoint = {'state_dict': trained.state_dict(), 'meta': {}}
    strip_frozen(checkpoint, trained)
    kept = set(checkpoint['state_dict'])
    # every trainable tensor, wherever it lives
    assert trainable_parameter_keys(trained) <= kept
    assert any(k.startswith('backbone.encoder.layers.') and
               k.endswith('lora_b') for k in kept)
    assert not kept & {f'backbone.{k}'
                       for k in trained.backbone.frozen_keys()}
    path = str(tmp_path / 'iter_1.pth')
    torch.save(checkpoint, path)

    fresh = tiny(load(MMLORA), frozen_file)  # random LoRA, frozen not loaded yet
    load_trainable_checkpoint(fresh, path)
    x = torch.rand(1, 4, 256, 256)
    trained.eval(), fresh.eval()
    with torch.no_grad():
        expected = trained(x, mode='tensor')
        out = fresh(x, mode='tensor')
    assert torch.equal(out, expected)
    # merged LoRA inference gives the same prediction
    assert merge_lora(fresh) == 4  # the qkv LoRAs
    with torch.no_grad():
        torch.testing.assert_close(fresh(x, mode='tensor'), expected,
                                   rtol=1e-4, atol=1e-5)


def test_mmlora_vitb_checkpoint_holds_about_3_2m_parameters(tmp_path):
    cfg = load(MMLORA)
    cfg.model.backbone.frozen_checkpoint = 'pretrain/sam_vit_b_converted.pth'
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    checkpoint = {'state_dict': model.state_dict(), 'meta': {}}
    strip_frozen(checkpoint, model)
    state = checkpoint['state_dict']
    params = sum(v.numel()
                 for k, v in model.state_dict(keep_vars=True).items()
                 if isinstance(v, torch.nn.Parameter) and k in state)
    assert params == 1_032_240 + 1_643_136 + 515_102  # 3,190,478
    assert set(state) >= trainable_parameter_keys(model)
    path = str(tmp_path / 'mmlora_vitb.pth')
    torch.save(checkpoint, path)
    assert 12e6 < os.path.getsize(path) < 14e6  # ~13 MB of float32
