"""The base dataset configs (and MoBaNet's, which train on the eroded
labels) parse, build their datasets on real files and feed the data
preprocessor; their flips are independent."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import tifffile
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmcv.transforms import Compose
from mmengine.registry import init_default_scope

import mmrsfusion  # noqa: F401
from mmseg.registry import DATASETS, MODELS, TRANSFORMS
from mmrsfusion.datasets import generate_synthetic_dataset
from mmrsfusion.utils import ModalitySpec
from mmrsfusion.utils import load_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO, 'configs', '_base_', 'datasets')
MOBANET_CFG_DIR = osp.join(REPO, 'configs', 'mobanet', '_base_', 'datasets')
NAMES = ['synthetic_mm.py', 'vaihingen_mm.py', 'potsdam_mm.py']
IMAGENET_MEAN = [123.675, 116.28, 103.53]


@pytest.fixture(autouse=True)
def _mmseg_scope():
    init_default_scope('mmseg')


def _cfg(name, mobanet=False):
    return load_config(
        osp.join(MOBANET_CFG_DIR if mobanet else CFG_DIR, name))


def _build(loader_cfg, root, **extra):
    ds = dict(loader_cfg['dataset'], data_root=root, **extra)
    return DATASETS.build(ds)


@pytest.mark.parametrize('name', ['synthetic_mm.py', 'vaihingen_mm.py',
                                  'potsdam_mm.py'])
def test_common_shape_of_the_configs(name):
    cfg = _cfg(name)
    mods = cfg.modalities
    assert [m['kind'] for m in mods] == ['optical', 'elevation']
    assert mods[0]['mean'] == IMAGENET_MEAN
    for m in mods:
        assert len(m['mean']) == len(m['std']) == m['channels']
    assert cfg.val_evaluator['type'] == 'ISPRSMetric'
    assert cfg.test_evaluator == cfg.val_evaluator
    # evaluation on eroded labels of the test split
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        prefix = loader['dataset']['data_prefix']
        assert prefix['seg_map_path'] == 'ann_eroded_dir/test'
        assert prefix['img_path'] == 'img_dir/test'
    assert cfg.train_dataloader['dataset']['data_prefix'][
        'seg_map_path'] == 'ann_dir/train'
    types = [t['type'] for t in cfg.train_pipeline]
    if name == 'synthetic_mm.py':
        assert types[:2] == ['LoadMultiModalImageFromFiles',
                             'LoadAnnotations'] and 'RandomCrop' in types
    else:  # whole ISPRS tiles: only the crop is read
        assert types[0] == 'LoadMultiModalRandomWindow'
        assert tuple(cfg.train_pipeline[0]['crop_size']) == tuple(
            cfg.crop_size)
    assert types[-1] == 'PackSegInputs'
    # declared once (top level), handed to every dataset by the binding
    assert 'modalities' not in cfg.train_pipeline[0]
    assert 'modalities' not in cfg.data_preprocessor
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.modalities == \
            ModalitySpec(mods).to_dict()
    assert tuple(cfg.data_preprocessor['size']) == tuple(cfg.crop_size)
    pp = MODELS.build(dict(cfg.data_preprocessor, modalities=mods))
    assert pp.modalities.num_channels == ModalitySpec(mods).num_channels


def test_crop_sizes():
    assert tuple(_cfg('synthetic_mm.py').crop_size) == (128, 128)
    assert tuple(_cfg('vaihingen_mm.py').crop_size) == (256, 256)
    assert tuple(_cfg('potsdam_mm.py').crop_size) == (256, 256)
    assert _cfg('synthetic_mm.py').data_root == 'data/synthetic_mm'


def test_synthetic_config_end_to_end(tmp_path):
    root = generate_synthetic_dataset(
        str(tmp_path / 'synthetic_mm'), num_train=4, num_test=2)
    cfg = _cfg('synthetic_mm.py')
    train = _build(cfg.train_dataloader, root)
    test = _build(cfg.test_dataloader, root)
    assert len(train) == 4 and len(test) == 2
    pp = MODELS.build(dict(cfg.data_preprocessor, modalities=cfg.modalities))
    np.random.seed(0)
    batch = [train[i] for i in range(4)]
    for s in batch:
        assert s['inputs'].shape[0] == 4
        assert s['inputs'].shape[1:] == s['data_samples'].gt_sem_seg.shape
    out = pp(pseudo_collate(batch), training=True)
    assert out['inputs'].shape == (4, 4, 128, 128)
    # whole test tiles, eroded labels (255 present), no padding
    batch = [test[i] for i in range(2)]
    seg = batch[0]['data_samples'].gt_sem_seg.data
    assert (seg == 255).any() and seg[seg != 255].max() <= 5
    out = pp(pseudo_collate(batch), training=False)
    assert out['inputs'].shape == (2, 4, 200, 176)
    # DSM channel: min-max normalised per tile ([0, 1], mean 0 / std 1)
    dsm = out['inputs'][:, 3]
    assert dsm.min() >= 0 and dsm.max() <= 1 and dsm.max() > 0.99


def _fake_isprs(root, stem, bands, split):
    rng = np.random.default_rng(0)
    for d in ('img_dir', 'dsm_dir', 'ndsm_dir', 'ann_dir', 'ann_eroded_dir'):
        os.makedirs(osp.join(root, d, split), exist_ok=True)
    img = rng.integers(0, 256, (40, 36, bands)).astype(np.uint8)
    kwargs = dict(photometric='rgb')
    if bands > 3:
        kwargs['extrasamples'] = ['unspecified']
    tifffile.imwrite(f'{root}/img_dir/{split}/{stem}.tif', img, **kwargs)
    dsm = (250 + 30 * rng.random((40, 36))).astype(np.float32)
    dsm[0, 0] = -9999.
    tifffile.imwrite(f'{root}/dsm_dir/{split}/{stem}.tif', dsm)
    cv2.imwrite(f'{root}/ndsm_dir/{split}/{stem}.png',
                rng.integers(0, 256, (40, 36)).astype(np.uint8))
    lab = rng.integers(0, 6, (40, 36)).astype(np.uint8)
    cv2.imwrite(f'{root}/ann_dir/{split}/{stem}.png', lab)
    lab[0] = 255
    cv2.imwrite(f'{root}/ann_eroded_dir/{split}/{stem}.png', lab)
    return img


@pytest.mark.parametrize('name,stem,bands,optical', [
    ('vaihingen_mm.py', 'area1', 3, [0, 1, 2]),
    ('potsdam_mm.py', '2_10', 4, [0, 1, 2]),
])
def test_isprs_configs_load_a_converted_tile(tmp_path, name, stem, bands,
                                             optical):
    cfg = _cfg(name)
    root = str(tmp_path)
    img = _fake_isprs(root, stem, bands, 'test')
    _fake_isprs(root, stem, bands, 'train')
    ds = _build(cfg.test_dataloader, root)
    sample = ds[0]
    x = sample['inputs'].numpy()
    assert x.shape == (4, 40, 36)
    np.testing.assert_array_equal(x[:3], img[..., optical].transpose(2, 0, 1))
    assert x[3, 0, 0] == 0 and x[3].max() == 1
    np.random.seed(0)
    train = _build(cfg.train_dataloader, root)
    assert train[0]['inputs'].shape == (4, 40, 36)  # tile smaller than crop


def test_potsdam_config_options(tmp_path):
    cfg = _cfg('potsdam_mm.py')
    root = str(tmp_path)
    img = _fake_isprs(root, '2_13', 4, 'test')
    ds = _build(cfg.test_dataloader, root, optical_bands='IRRG',
                elevation='ndsm')
    info = ds.get_data_info(0)
    assert info['dsm_path'].endswith(osp.join('ndsm_dir', 'test',
                                              '2_13.png'))
    x = ds[0]['inputs'].numpy()
    np.testing.assert_array_equal(x[:3], img[..., [3, 0, 1]].transpose(2, 0,
                                                                        1))


@pytest.mark.parametrize('mobanet', [False, True])
@pytest.mark.parametrize('name', NAMES)
def test_flips_are_independent_horizontal_and_vertical(name, mobanet):
    """The training pipeline's flips: none / horizontal / vertical / both
    each in about 25 % of 4000 draws (MoBaNet's reference flips each way
    independently at p = 0.5), image channels and label moved together."""
    flips = Compose([
        TRANSFORMS.build(t) for t in _cfg(name, mobanet).train_pipeline
        if t['type'] == 'RandomFlip'
    ])
    img = np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)
    label = np.arange(12, dtype=np.uint8).reshape(3, 4)
    outcomes = {
        (bool(v), bool(h)):
        (np.flip(np.flip(img, 0) if v else img, 1) if h else
         (np.flip(img, 0) if v else img))
        for v in (0, 1) for h in (0, 1)
    }
    counts = dict.fromkeys(outcomes, 0)
    np.random.seed(0)
    draws = 4000
    for _ in range(draws):
        out = flips(dict(img=img.copy(), gt_seg_map=label.copy(),
                         seg_fields=['gt_seg_map'], img_shape=(3, 4)))
        match = [k for k, ref in outcomes.items()
                 if np.array_equal(out['img'], ref)]
        assert len(match) == 1
        v, h = match[0]
        counts[match[0]] += 1
        want = np.flip(label, 0) if v else label
        np.testing.assert_array_equal(out['gt_seg_map'],
                                      np.flip(want, 1) if h else want)
    for key, n in counts.items():
        assert abs(n / draws - 0.25) < 0.03, counts


@pytest.mark.parametrize('mobanet', [False, True])
@pytest.mark.parametrize('name,stem,bands', [
    ('vaihingen_mm.py', 'area1', 3),
    ('potsdam_mm.py', '2_10', 4),
])
def test_mobanet_dataset_configs_train_on_eroded_labels(
        tmp_path, name, stem, bands, mobanet):
    """MoBaNet's dataset configs read the eroded labels for training (the
    reference trains on the ISPRS noBoundary files): the tile's boundary
    row (255 only in the eroded file) reaches the training sample. The
    common configs train on the full labels."""
    cfg = _cfg(name, mobanet)
    root = str(tmp_path)
    _fake_isprs(root, stem, bands, 'train')
    train = _build(cfg.train_dataloader, root)
    seg_dir = 'ann_eroded_dir' if mobanet else 'ann_dir'
    assert train.get_data_info(0)['seg_map_path'] == osp.join(
        root, seg_dir, 'train', f'{stem}.png')
    np.random.seed(0)
    seg = train[0]['data_samples'].gt_sem_seg.data
    assert int((seg == 255).sum()) == (36 if mobanet else 0)


def test_mobanet_synthetic_config_trains_on_eroded_labels(tmp_path):
    root = generate_synthetic_dataset(
        str(tmp_path / 'synthetic_mm'), num_train=1, num_test=1)
    cfg = _cfg('synthetic_mm.py', mobanet=True)
    assert cfg.train_dataloader['dataset']['data_prefix'][
        'seg_map_path'] == 'ann_eroded_dir/train'
    info = _build(cfg.train_dataloader, root).get_data_info(0)
    assert info['seg_map_path'] == osp.join(root, 'ann_eroded_dir', 'train',
                                            'train_0000.png')
