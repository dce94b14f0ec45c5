"""MMHunan in its released layout (images_png/, dsm_pngs/, masks_png/ and
split lists), read through the shipped config's pipelines."""
import copy
import os.path as osp

import cv2
import numpy as np
import pytest
import rasterio
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS
from mmrsfusion.utils import load_config

import mmrsfusion  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'mfnet', 'sam_vitl_mmadapter_mmhunan.py')


def write_layout(root, ids, size=32, seed=0):
    rng = np.random.default_rng(seed)
    for folder in ('images_png', 'dsm_pngs', 'masks_png'):
        (root / folder).mkdir(parents=True, exist_ok=True)
    truth = {}
    for i in ids:
        rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        dem = rng.integers(100, 900, (size, size)).astype(np.uint16)
        label = rng.integers(0, 7, (size, size)).astype(np.uint8)
        cv2.imwrite(str(root / 'images_png' / f'{i}.png'), rgb[..., ::-1])
        cv2.imwrite(str(root / 'dsm_pngs' / f'{i}.png'), dem)
        with rasterio.open(root / 'masks_png' / f'{i}.tif', 'w',
                           driver='GTiff', width=size, height=size, count=1,
                           dtype='uint8') as dst:
            dst.write(label, 1)
        truth[i] = (rgb, dem, label)
    return truth


def test_config_reads_the_released_layout(tmp_path):
    init_default_scope('mmseg')
    truth = write_layout(tmp_path, ['10434', '11524', '11767'])
    (tmp_path / 'train.txt').write_text('10434\n11524\n')
    (tmp_path / 'test.txt').write_text('11767\n')
    cfg = load_config(CONFIG)
    assert cfg.model.decode_head.num_classes == 7
    assert cfg.model.test_cfg == dict(mode='whole')
    datasets = {}
    for split in ('train', 'test'):
        loader = cfg.train_dataloader if split == 'train' \
            else cfg.test_dataloader
        dataset_cfg = copy.deepcopy(loader.dataset)
        dataset_cfg.data_root = str(tmp_path)
        datasets[split] = DATASETS.build(dataset_cfg)
    assert len(datasets['train']) == 2 and len(datasets['test']) == 1
    assert datasets['test'].metainfo['classes'][-1] == 'built_up_area'
    out = datasets['test'][0]  # the dataset's pipeline, given its spec
    rgb, dem, label = truth['11767']
    img = out['inputs'].numpy().transpose(1, 2, 0)  # (H, W, 4)
    np.testing.assert_array_equal(img[..., :3], rgb)
    expected = (dem - dem.min()) / (dem.max() - dem.min())
    np.testing.assert_allclose(img[..., 3], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        out['data_samples'].gt_sem_seg.data[0].numpy(), label)
    assert out['inputs'].shape == (4, 32, 32)


def test_missing_dem_is_named(tmp_path):
    init_default_scope('mmseg')
    write_layout(tmp_path, ['1', '2'])
    (tmp_path / 'dsm_pngs' / '2.png').unlink()
    (tmp_path / 'train.txt').write_text('1\n2\n')
    cfg = load_config(CONFIG)
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset_cfg.data_root = str(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"dsm_pngs.*'2'|'2'.*dsm_pngs|dsm_pngs/2"):
        DATASETS.build(dataset_cfg)
