"""Bad labels and refused sizes stop with the file or config field named,
at the point they are met (not as a batch-stacking error, a ``Target 7 is
out of bounds``, a bare AssertionError or a ZeroDivisionError later)."""
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmseg.registry import MODELS
from mmrsfusion.datasets import SyntheticMMDataset, generate_synthetic_dataset
from mmrsfusion.utils import load_config

MODALITIES = [
    dict(name='rgb', channels=3, kind='optical', mean=[0.] * 3,
         std=[1.] * 3),
    dict(name='dsm', channels=1, kind='elevation', mean=[0.], std=[1.]),
]
LOAD = dict(type='LoadMultiModalImageFromFiles', modalities=MODALITIES)


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')


@pytest.fixture
def data_root(tmp_path):
    root = str(tmp_path / 'data')
    generate_synthetic_dataset(root, num_train=2, num_test=1, tile_size=32,
                               test_tile_size=(32, 32))
    return root


def _dataset(root, pipeline, split='train'):
    return SyntheticMMDataset(
        data_root=root,
        data_prefix=dict(img_path=f'img_dir/{split}',
                         dsm_path=f'dsm_dir/{split}',
                         seg_map_path=f'ann_dir/{split}'),
        pipeline=pipeline)


TRAIN = [LOAD, dict(type='LoadAnnotations'),
         dict(type='RandomCrop', crop_size=(16, 16)),
         dict(type='PackSegInputs')]
TEST = [LOAD, dict(type='LoadAnnotations'), dict(type='PackSegInputs')]


@pytest.mark.parametrize('split,pipeline', [('train', TRAIN),
                                            ('test', TEST)])
def test_label_of_another_size_names_both_files(data_root, split, pipeline):
    ds = _dataset(data_root, pipeline, split)
    label = ds.get_data_info(0)['seg_map_path']
    cv2.imwrite(label, np.zeros((30, 32), np.uint8))
    with pytest.raises(ValueError) as err:
        ds[0]
    msg = str(err.value)
    assert msg.startswith(f'{label}: the label is 30x32 (HxW) but its image')
    assert ds.get_data_info(0)['img_path'] in msg and '32x32' in msg


@pytest.mark.parametrize('split,pipeline', [('train', TRAIN),
                                            ('test', TEST)])
def test_label_values_outside_the_classes(data_root, split, pipeline):
    ds = _dataset(data_root, pipeline, split)
    label = ds.get_data_info(0)['seg_map_path']
    values = np.zeros((32, 32), np.uint8)
    values[0, :3] = 7
    values[1, :2] = 6
    values[2, :] = 255  # the ignore index is fine
    cv2.imwrite(label, values)
    with pytest.raises(ValueError) as err:
        ds[0]
    assert str(err.value) == (
        f'{label}: 5 label pixels hold values [6, 7], outside the 6 classes '
        '(0..5) of SyntheticMMDataset and not the ignore index 255')
    values[:2] = 0
    cv2.imwrite(label, values)
    assert ds[0]['data_samples'].gt_sem_seg.data.shape[-2:] in [(16, 16),
                                                               (32, 32)]


def test_negative_random_crop_names_the_transform(data_root):
    bad = [LOAD, dict(type='LoadAnnotations'),
           dict(type='RandomCrop', crop_size=(-16, 16))]
    with pytest.raises(ValueError) as err:
        _dataset(data_root, bad)
    msg = str(err.value)
    assert msg.startswith("SyntheticMMDataset: pipeline[2] {'type': "
                          "'RandomCrop', 'crop_size': (-16, 16)} was refused")


@pytest.mark.parametrize('key,value', [('size', (-64, 64)), ('size', 0),
                                       ('size_divisor', -32)])
def test_negative_preprocessor_size_names_the_field(key, value):
    with pytest.raises(ValueError) as err:
        MODELS.build(dict(type='MultiModalSegDataPreProcessor',
                          modalities=MODALITIES, **{key: value}))
    assert f'model.data_preprocessor.{key}: expected a positive' in str(
        err.value)


SLIDE_ERRORS = [('crop_size', (-64, 64)), ('stride', (0, 48)),
                ('stride', None)]
CONFIGS = osp.join(osp.dirname(osp.dirname(osp.dirname(__file__))),
                   'configs')


def _slide(key, value):
    test_cfg = dict(mode='slide', crop_size=(64, 64), stride=(48, 48))
    test_cfg[key] = value
    return ConfigDict(test_cfg)


@pytest.mark.parametrize('key,value', SLIDE_ERRORS)
def test_bad_slide_test_cfg_refused_by_our_segmentor(key, value):
    cfg = load_config(
        osp.join(CONFIGS, 'mobanet', 'demo_tinyvit_synthetic.py'))
    cfg.model.backbone.frozen_checkpoint = None
    cfg.model.test_cfg = _slide(key, value)
    with pytest.raises(ValueError, match=f'model.test_cfg.{key}: expected a '
                       'positive int or a pair'):
        MODELS.build(cfg.model)


@pytest.mark.parametrize('key,value', SLIDE_ERRORS)
def test_bad_slide_test_cfg_refused_for_any_segmentor(data_root, tmp_path,
                                                      key, value):
    """The early-fusion baseline (mmseg's auxiliary head), run by a runner:
    refused when the model is built, before any window."""
    cfg = load_config(
        osp.join(CONFIGS, 'baselines', 'early_fusion_r18_synthetic.py'))
    cfg.model.test_cfg = _slide(key, value)
    cfg.work_dir = str(tmp_path)
    cfg.test_dataloader.dataset.data_root = data_root
    cfg.test_dataloader.num_workers = 0
    cfg.test_dataloader.persistent_workers = False
    with pytest.raises(ValueError, match=f'model.test_cfg.{key}: expected a '
                       'positive int or a pair'):
        Runner.from_cfg(cfg).test()
