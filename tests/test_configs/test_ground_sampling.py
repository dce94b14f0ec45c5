"""Every shipped config with a train pipeline (found with glob) trains at
the ground sampling it is tested at, and states how much it trains.

Each config's train and test pipelines (bound to the config's modality
spec, as its dataset binds them) run on a synthetic tile of the full size
of its data set (Potsdam 6000 x 6000, ...), written as tiled TIFFs in the
layout its loader reads. The scale factor a pipeline applies to the tile
(``scale_factor`` of the packed sample; 1 without a resize) is its ground
sampling relative to the data: the train crops' scale factors must contain
the test pipeline's and be centred on it (geometric middle of the drawn
range within 25 %; a ``ratio_range=(0.5, 2.0)`` jitter around the tile's
own size passes, a resize of a whole Potsdam tile to 2048 x 512 does not).

The iterations of every config are printed (``pytest -s``): ``max_iters``,
or ``max_epochs`` x iterations per epoch from the ``train_samples`` an
epoch-based config states.
"""
import copy
import glob
import math
import os.path as osp

import numpy as np
import pytest
import tifffile
from mmcv.transforms import Compose
from mmengine.registry import init_default_scope

from mmseg.registry import TRANSFORMS

import mmrsfusion  # noqa: F401
from mmrsfusion.utils import ModalitySpec, load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(ROOT, 'configs')
ALL = sorted(
    osp.relpath(p, CONFIG_DIR)
    for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True))
#: (H, W) of one whole tile / image of each data set.
TILE = {
    'PotsdamMMDataset': (6000, 6000),
    'VaihingenMMDataset': (2569, 1919),
    None: (2569, 1919),  # isprs_mm.py, the ISPRS sets' common base
    'DFC2023MMDataset': (512, 512),
    'MMHunanDataset': (256, 256),
    'SyntheticMMDataset': (128, 128),
    'DELIVERDataset': (1042, 1042),
}
DRAWS = 8

init_default_scope('mmseg')


def load(name):
    return load_config(osp.join(CONFIG_DIR, name))


WITH_TRAIN = [c for c in ALL if 'train_pipeline' in load(c)]


def train_dataset(cfg) -> dict:
    """The train dataset config, through wrappers (RepeatDataset)."""
    dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    return dataset


def build(cfg, key):
    spec = ModalitySpec(cfg.modalities)
    return Compose([
        spec.bind(t, TRANSFORMS, f'{key}[{i}]')
        for i, t in enumerate(copy.deepcopy(cfg[key]))
    ]), spec


def write_tile(folder, spec, path_keys, shape, classes=6) -> dict:
    """One tile of ``shape``: a tiled TIFF per file the loader reads (the
    bands the spec takes from it), a label; the data info to load it."""
    h, w = shape
    rows, cols = np.indices(shape, dtype=np.uint16)
    info = dict(seg_fields=[], reduce_zero_label=False, label_map=None)
    bands = {}
    for mod in spec:
        need = max(mod.bands) + 1 if mod.bands else mod.channels
        key = path_keys[mod.name]
        bands[key] = (max(bands.get(key, (0, None))[0], need), mod.kind)
    for key, (count, kind) in bands.items():
        if kind == 'elevation':
            arr = (rows + cols).astype(np.float32)[..., None]
        else:
            arr = np.repeat(((rows + cols) % 256).astype(np.uint8)[..., None],
                            count, axis=2)
        path = osp.join(folder, f'{key}.tif')
        tifffile.imwrite(path, arr, tile=(256, 256))
        info[key] = path
    label = ((rows // 97 + cols // 89) % classes).astype(np.uint8)
    info['seg_map_path'] = osp.join(folder, 'label.tif')
    tifffile.imwrite(info['seg_map_path'], label, tile=(256, 256))
    return info


def scale(pipeline, info) -> float:
    """The scale factor ``pipeline`` applies to the tile (w and h equal)."""
    sample = pipeline(copy.deepcopy(info))['data_samples']
    sw, sh = sample.metainfo.get('scale_factor', (1.0, 1.0))
    assert math.isclose(sw, sh, rel_tol=0.02), (sw, sh)
    return float(sw)


_TILES = {}
_TEST_SCALES = {}


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp('tiles')


@pytest.mark.parametrize('name', WITH_TRAIN)
def test_train_crops_at_test_ground_sampling(name, folder):
    cfg = load(name)
    dataset_type = train_dataset(cfg).get('type')
    if dataset_type == 'SceneDataset':
        # windows read on the scene's own grid (tests/test_datasets/
        # test_scene_dataset.py); its pipeline must not rescale them
        steps = {t['type'] for t in train_dataset(cfg)['pipeline']}
        assert not steps & {'RandomResize', 'Resize', 'RandomChoiceResize',
                            'RandomRescale'}, steps
        return
    train, spec = build(cfg, 'train_pipeline')
    test, _ = build(cfg, 'test_pipeline')
    shape = TILE[dataset_type]
    path_keys = train.transforms[0].path_keys
    key = (shape, repr(cfg.modalities), tuple(sorted(path_keys.items())))
    if key not in _TILES:
        sub = folder / f'tile{len(_TILES)}'
        sub.mkdir()
        _TILES[key] = write_tile(str(sub), spec, path_keys, shape)
    info = _TILES[key]
    test_key = (key, repr(cfg.test_pipeline))
    if test_key not in _TEST_SCALES:
        _TEST_SCALES[test_key] = scale(test, info)
    at_test = _TEST_SCALES[test_key]
    np.random.seed(0)
    drawn = [scale(train, info) for _ in range(DRAWS)]
    lo, hi = min(drawn), max(drawn)
    print(f'\n{name}: tile {shape[0]}x{shape[1]}, train scale '
          f'{lo:.3f}-{hi:.3f}, test {at_test:.3f}')
    centre = math.sqrt(lo * hi)
    assert lo <= at_test * 1.0001 and hi >= at_test * 0.9999 and \
        abs(math.log(centre / at_test)) <= math.log(1.25), (
            f'{name}: training crops at {lo:.3f}-{hi:.3f}x of the tile, '
            f'the test at {at_test:.3f}x')


def iterations(cfg):
    """Training iterations (or None for a config without a loop), and how
    they were counted."""
    loop = cfg.get('train_cfg') or {}
    if loop.get('type') == 'IterBasedTrainLoop':
        return loop['max_iters'], 'max_iters'
    if loop.get('type') == 'EpochBasedTrainLoop':
        samples = cfg.get('train_samples')
        assert samples, (f'{cfg.filename}: an epoch-based config states '
                         f'`train_samples` (the size of one epoch)')
        batch = cfg.train_dataloader.batch_size
        per_epoch = math.ceil(samples / batch)
        return loop['max_epochs'] * per_epoch, (
            f"{loop['max_epochs']} epochs x {per_epoch} "
            f'({samples} samples / batch {batch})')
    return None, 'no train loop (a base)'


def test_iterations_per_config():
    rows = []
    for name in WITH_TRAIN:
        cfg = load(name)
        iters, how = iterations(cfg)
        rows.append((name, iters, how))
    width = max(len(r[0]) for r in rows)
    print('\niterations per config:')
    for name, iters, how in rows:
        print(f"  {name:<{width}}  {iters if iters else '-':>8}  {how}")
    found = {name: iters for name, iters, _ in rows}
    # SGMA Potsdam: 200 epochs of 3,456 windows at batch 8; DFC2023: 200
    # epochs of 1,419 images at batch 8
    assert found['sgma/pvtv2b2_potsdam_rdn.py'] == 200 * 432 == 86400
    assert found['sgma/resnet50_potsdam_rdn.py'] == 86400
    assert found['sgma/pvtv2b2_dfc2023_rds.py'] == 200 * 178
