"""Fixtures of the Python API tests: a tiny synthetic data set and, per
model family (MoBaNet, MFNet, SGMA demo configs), a checkpoint saved as
training saves it."""
import importlib.util
import os.path as osp

import pytest
import torch

from mmseg.registry import MODELS
from mmrsfusion.checkpoint import strip_frozen
from mmrsfusion.datasets import generate_synthetic_dataset
from mmrsfusion.utils import load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {
    'mobanet': 'configs/mobanet/demo_tinyvit_synthetic.py',
    'mfnet': 'configs/mfnet/demo_tinysam_mmadapter_synthetic.py',
    'sgma': 'configs/sgma/demo_r18_synthetic_rdn.py',
}


def frozen_file(path):
    """The demo ViT's 'pretrained' weights with the official DINOv2 keys."""
    spec = importlib.util.spec_from_file_location(
        'tiny', osp.join(ROOT, 'tools', 'misc', 'make_tiny_vit_checkpoint.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    torch.save(tool.make_state_dict(seed=3), str(path))
    return str(path)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return generate_synthetic_dataset(
        str(tmp_path_factory.mktemp('api') / 'data'), num_train=1,
        num_test=1, tile_size=64, test_tile_size=(80, 72), nir=True)


@pytest.fixture(scope='module', params=list(CONFIGS))
def trained(request, data_root, tmp_path_factory):
    """(config, options, checkpoint) of a family with random weights,
    saved as training saves it (the frozen ViT left out where it has a
    file)."""
    family = request.param
    work = tmp_path_factory.mktemp(family)
    options = {'test_dataloader.dataset.data_root': data_root}
    if family == 'mobanet':
        options['model.backbone.frozen_checkpoint'] = frozen_file(
            work / 'frozen.pth')
    config = osp.join(ROOT, CONFIGS[family])
    torch.manual_seed(0)
    model = MODELS.build(load_config(config, options).model)
    model.init_weights()
    for p in model.parameters():  # trained weights that differ from init
        if p.requires_grad:
            p.data.add_(0.01 * torch.randn_like(p))
    ckpt = dict(state_dict=model.state_dict(), meta={})
    strip_frozen(ckpt, model)
    path = str(work / 'iter_1.pth')
    torch.save(ckpt, path)
    return family, config, options, path, model


