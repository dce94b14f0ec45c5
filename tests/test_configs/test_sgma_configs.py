"""The SGMA configs: the paper's recipe and settings, the five-class
Potsdam R + D + N protocol, and a training step + inference of each config
with a tiny encoder in place of the real one."""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample

import mmrsfusion  # noqa: F401
from mmrsfusion.utils import ModalitySpec
from mmrsfusion.utils import load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SGMA = sorted(
    osp.relpath(p, osp.join(ROOT, 'configs'))
    for p in glob.glob(osp.join(ROOT, 'configs', 'sgma', '*.py')))
PAPER = ['sgma/pvtv2b2_potsdam_rdn.py', 'sgma/resnet50_potsdam_rdn.py',
         'sgma/pvtv2b2_dfc2023_rds.py']

init_default_scope('mmseg')


def load(name):
    return load_config(osp.join(ROOT, 'configs', name))


def test_discovery():
    assert set(PAPER) | {'sgma/dinov2_vitb_potsdam_rd_sgf.py',
                         'sgma/demo_r18_synthetic_rdn.py'} <= set(SGMA)


@pytest.mark.parametrize('name', PAPER)
def test_paper_recipe(name):
    """AdamW 6e-5 / eps 1e-8 / wd 0.01, 200 epochs, 10-epoch linear warm-up
    from 10 %, poly 0.9; SGF with SP 8 / RP 4 heads on 3 modalities; MAS
    with L = 2 L_SGF + 1 L_MAS; a shared trainable encoder."""
    cfg = load(name)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.eps, opt.weight_decay) == ('AdamW', 6e-5,
                                                             1e-8, 0.01)
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
    assert cfg.train_cfg.max_epochs == 200
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.begin, warmup.end) == (
        'LinearLR', 0.1, 0, 10)
    assert (poly.type, poly.power, poly.begin, poly.end) == ('PolyLR', 0.9,
                                                             10, 200)
    assert cfg.train_dataloader.sampler.type == 'DefaultSampler'
    model = cfg.model
    assert model.type == 'SGMAEncoderDecoder'
    assert model.mas and model.loss_weights == dict(sgf=2.0, mas=1.0)
    assert (model.neck.sp_heads, model.neck.rp_heads) == (8, 4)
    assert len(model.modalities) == 3 and 'num_modalities' not in model.neck
    assert model.backbone.type == 'MultiStreamEncoder'
    assert not model.backbone.get('frozen', False)
    names = [m['name'] for m in model.modalities]
    assert names == (['rgb', 'dsm', 'sar'] if 'dfc2023' in name else
                     ['rgb', 'dsm', 'nir'])
    kinds = {t.type for t in cfg.test_pipeline}
    assert 'PackSegInputs' in kinds
    arch = model.backbone.backbone
    if 'pvtv2b2' in name:
        assert (arch.type, arch.model_name) == ('TIMMBackbone', 'pvt_v2_b2')
    else:
        assert (arch.type, arch.depth) == ('ResNetV1c', 50)


def test_potsdam_rdn_protocol():
    """Five classes (clutter -> 255), R and N from the 4-band file."""
    cfg = load('sgma/pvtv2b2_potsdam_rdn.py')
    for key in ('train_dataloader', 'test_dataloader'):
        ds = copy.deepcopy(cfg[key].dataset)
        if ds.type == 'RepeatDataset':
            # one epoch: 144 random windows per tile (see the config)
            assert (key, ds.times) == ('train_dataloader', 144)
            ds = ds.dataset
        ds = DATASETS.build(dict(ds, lazy_init=True))
        assert ds.metainfo['classes'] == ('impervious_surface', 'building',
                                          'low_vegetation', 'tree', 'car')
        assert ds.label_map == {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 255}
        assert ds.optical_bands is None
    rgb, dsm, nir = cfg.model.modalities
    assert (rgb.bands, nir.bands) == ([0, 1, 2], [3])
    assert cfg.test_pipeline[0].path_keys == dict(nir='img_path')
    assert cfg.test_evaluator.type == 'ISPRSMetric'


def tiny(cfg):
    """A tiny encoder of the same kind in place of the real one."""
    model = copy.deepcopy(cfg.model)
    model.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    if model.backbone.type == 'MultiStreamViT':
        width = 32
        model.backbone.arch = dict(embed_dims=width, num_layers=4,
                                   num_heads=2, feedforward_channels=64)
        model.backbone.encoder_cfg = dict(img_size=56)
        model.backbone.out_indices = [0, 1, 2, 3]
        model.backbone.frozen_checkpoint = None
        channels = [width] * 4
    else:
        model.backbone.backbone = dict(type='ResNetV1c', depth=18,
                                       base_channels=8, stem_channels=8)
        channels = [8, 16, 32, 64]
    model.neck.in_channels = channels
    model.decode_head.in_channels = channels
    if 'channels' in model.decode_head:
        model.decode_head.channels = 16
    return model


def batch(cfg, b, h, w, presences, seed=0):
    gen = torch.Generator().manual_seed(seed)
    channels = ModalitySpec(cfg.model.modalities).num_channels
    classes = cfg.model.decode_head.num_classes
    inputs, samples = [], []
    for p in presences:
        inputs.append(torch.rand(channels, h, w, generator=gen) * 255)
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                        pad_shape=(h, w)))
        s.set_data(dict(presence=torch.tensor(p)))
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, classes, (1, h, w), generator=gen))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('name', SGMA)
def test_sgma_config_trains_and_infers_tiny(name):
    cfg = load(name)
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(tiny(cfg)))
    model.init_weights()
    m = len(cfg.model.modalities)
    full, part = (True, ) * m, (True, ) + (False, ) * (m - 1)
    optim = OptimWrapper(torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-3))
    model.train()
    log_vars = model.train_step(batch(cfg, 2, 56, 56, [full, part]), optim)
    assert torch.isfinite(log_vars['loss'])
    assert {'decode.loss_ce', 'mas.loss_ce'} <= set(log_vars)
    model.eval()
    data = model.data_preprocessor(
        batch(cfg, 1, 70, 56, [part], seed=1), False)
    with torch.no_grad():
        (result, ) = model.predict(data['inputs'], data['data_samples'],
                                   data['presence'])
    assert result.pred_sem_seg.data.shape == (1, 70, 56)
    assert torch.isfinite(result.seg_logits.data).all()
