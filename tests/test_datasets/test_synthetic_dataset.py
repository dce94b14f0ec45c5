"""The synthetic multimodal dataset: files, determinism, atomic writes, the
CLI, and the per-pixel statistics that make fusion necessary."""
import hashlib
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import tifffile

from mmrsfusion.datasets import synthetic
from mmrsfusion.datasets.synthetic import generate_synthetic_dataset
from mmrsfusion.io import normalize_elevation

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
IMP, BLD, LOWVEG, TREE, CAR, CLUT = range(6)


def _files(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = osp.join(dirpath, n)
            with open(p, 'rb') as f:
                out[osp.relpath(p, root)] = hashlib.sha1(f.read()).hexdigest()
    return out


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """The default demo dataset (32 x 128^2 train, 8 x 200x176 test)."""
    return generate_synthetic_dataset(
        str(tmp_path_factory.mktemp('syn') / 'synthetic_mm'))


def test_layout_dtypes_and_bands(tmp_path):
    root = generate_synthetic_dataset(
        str(tmp_path / 'd'),
        num_train=3,
        num_test=2,
        tile_size=96,
        test_tile_size=(120, 104),
        seed=1)
    for split, n, size in (('train', 3, (96, 96)), ('test', 2, (120, 104))):
        for i in range(n):
            stem = f'{split}_{i:04d}'
            img = tifffile.imread(f'{root}/img_dir/{split}/{stem}.tif')
            assert img.dtype == np.uint8 and img.shape == size + (3, )
            with tifffile.TiffFile(f'{root}/img_dir/{split}/{stem}.tif') as t:
                assert t.series[0].axes == 'YXS'
            dsm = tifffile.imread(f'{root}/dsm_dir/{split}/{stem}.tif')
            assert dsm.dtype == np.float32 and dsm.shape == size
            assert 3 <= (dsm == -9999.).sum() < 0.01 * dsm.size
            valid = dsm[dsm != -9999.]
            assert 200 < valid.min() and valid.max() < 400
            ann = cv2.imread(f'{root}/ann_dir/{split}/{stem}.png',
                             cv2.IMREAD_UNCHANGED)
            ero = cv2.imread(f'{root}/ann_eroded_dir/{split}/{stem}.png',
                             cv2.IMREAD_UNCHANGED)
            assert ann.dtype == np.uint8 and ann.shape == size
            assert set(np.unique(ann)) <= set(range(6))
            # eroded = labels with class borders set to 255
            assert ero.shape == size and 255 in ero
            keep = ero != 255
            np.testing.assert_array_equal(ero[keep], ann[keep])
            assert 0.01 < (~keep).mean() < 0.3
            border = cv2.dilate(ann, np.ones((3, 3), np.uint8)) != \
                cv2.erode(ann, np.ones((3, 3), np.uint8))
            np.testing.assert_array_equal(~keep, border)
    meta = json.load(open(f'{root}/meta.json'))
    assert meta['seed'] == 1 and meta['test_tile_size'] == [120, 104]


def test_default_test_tiles_exceed_the_window_and_all_classes_occur(demo):
    names = sorted(os.listdir(f'{demo}/img_dir/test'))
    assert len(names) == 8 and len(os.listdir(f'{demo}/img_dir/train')) == 32
    img = tifffile.imread(f'{demo}/img_dir/test/{names[0]}')
    h, w = img.shape[:2]
    assert (h, w) == (200, 176) and h > 128 and w > 128
    assert (h - 128) % 64 and (w - 128) % 96  # not a multiple of strides
    counts = np.zeros(6, int)
    for n in os.listdir(f'{demo}/ann_dir/train'):
        counts += np.bincount(
            cv2.imread(f'{demo}/ann_dir/train/{n}', 0).ravel(), minlength=6)
    assert (counts > 0).all()
    frac = counts / counts.sum()
    assert frac[CAR] > 0.003 and frac[CLUT] > 0.003 and frac[TREE] > 0.02


def test_deterministic_per_seed(tmp_path):
    kw = dict(num_train=2, num_test=1, tile_size=64, test_tile_size=80)
    a = _files(generate_synthetic_dataset(str(tmp_path / 'a'), seed=7, **kw))
    b = _files(generate_synthetic_dataset(str(tmp_path / 'b'), seed=7, **kw))
    c = _files(generate_synthetic_dataset(str(tmp_path / 'c'), seed=8, **kw))
    assert a == b
    first = 'img_dir/train/train_0000.tif'
    assert a[first] != c[first]
    # tile i of a split does not depend on how many tiles there are
    d = _files(
        generate_synthetic_dataset(
            str(tmp_path / 'd'), seed=7, **dict(kw, num_train=3)))
    second = 'dsm_dir/train/train_0001.tif'
    assert d[second] == a[second]


def test_existing_output_reused_replaced_or_refused(tmp_path):
    out = str(tmp_path / 'd')
    kw = dict(num_train=1, num_test=1, tile_size=64, test_tile_size=64)
    generate_synthetic_dataset(out, seed=0, **kw)
    before = os.stat(f'{out}/img_dir/train/train_0000.tif').st_mtime_ns
    generate_synthetic_dataset(out, seed=0, **kw)  # same parameters: no-op
    assert os.stat(f'{out}/img_dir/train/train_0000.tif').st_mtime_ns == \
        before
    # ours, other parameters or an older generator version: replaced
    generate_synthetic_dataset(out, seed=1, **kw)
    assert json.load(open(f'{out}/meta.json'))['seed'] == 1
    meta = json.load(open(f'{out}/meta.json'))
    with open(f'{out}/meta.json', 'w') as f:
        json.dump(dict(meta, version=0), f)
    generate_synthetic_dataset(out, seed=1, **kw)
    assert json.load(open(f'{out}/meta.json')) == meta
    assert sorted(os.listdir(tmp_path)) == ['d']  # no temp folders left
    # a folder this generator did not write: only with overwrite
    foreign = tmp_path / 'mine'
    foreign.mkdir()
    (foreign / 'precious.txt').write_text('x')
    with pytest.raises(FileExistsError, match='overwrite'):
        generate_synthetic_dataset(str(foreign), **kw)
    assert (foreign / 'precious.txt').exists()
    generate_synthetic_dataset(str(foreign), overwrite=True, **kw)
    assert not (foreign / 'precious.txt').exists()
    assert sorted(os.listdir(tmp_path)) == ['d', 'mine']


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    real = synthetic._write_split

    def failing(root, split, *args):
        real(root, split, *args)
        if split == 'test':
            raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, '_write_split', failing)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic_dataset(
            str(tmp_path / 'd'), num_train=1, num_test=1, tile_size=64,
            test_tile_size=64)
    assert os.listdir(tmp_path) == []


def test_cli(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'make_synthetic_dataset',
        osp.join(REPO, 'tools', 'misc', 'make_synthetic_dataset.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = str(tmp_path / 'syn')
    args = [out, '--num-train', '2', '--num-test', '1', '--tile-size', '64',
            '--test-tile-size', '72', '80', '--seed', '3']
    assert cli.main(args) == 0
    assert 'ready' in capsys.readouterr().out
    assert tifffile.imread(f'{out}/img_dir/test/test_0000.tif').shape == (
        72, 80, 3)
    assert cli.main(args) == 0  # idempotent
    assert cli.main(args[:-1] + ['4']) == 0  # its own output: replaced
    assert json.load(open(f'{out}/meta.json'))['seed'] == 4
    other = tmp_path / 'other'
    other.mkdir()
    assert cli.main([str(other)] + args[1:]) == 1
    assert 'overwrite' in capsys.readouterr().err
    assert cli.main([str(other)] + args[1:] + ['--overwrite']) == 0


# --------------------------------------------------------------------------
# Per-pixel statistics: each modality alone confuses some classes, fusion
# separates them.
# --------------------------------------------------------------------------
def _pixels(root, split):
    feats, labels = [], []
    for n in sorted(os.listdir(f'{root}/img_dir/{split}')):
        rgb = tifffile.imread(f'{root}/img_dir/{split}/{n}')
        dsm = tifffile.imread(f'{root}/dsm_dir/{split}/{n}')[..., None]
        dsm = normalize_elevation(dsm)  # as the loader sees it
        feats.append(
            np.concatenate([rgb.astype(np.float64), dsm], -1).reshape(-1, 4))
        labels.append(
            cv2.imread(f'{root}/ann_dir/{split}/{n[:-4]}.png', 0).ravel())
    return np.concatenate(feats), np.concatenate(labels)


def _gaussian_classifier(x_tr, y_tr, classes):
    """Per-class full-covariance Gaussian (QDA) with class priors: the best
    a per-pixel classifier of these features roughly can do."""
    params = []
    for c in classes:
        f = x_tr[y_tr == c]
        cov = np.atleast_2d(np.cov(f.T)) + 1e-6 * np.eye(f.shape[1])
        params.append((f.mean(0), np.linalg.inv(cov),
                       np.linalg.slogdet(cov)[1], np.log(len(f) / len(x_tr))))

    def predict(x):
        ll = [
            -0.5 * np.einsum('ni,ij,nj->n', x - m, p, x - m) - 0.5 * ld + lp
            for m, p, ld, lp in params
        ]
        return np.asarray(classes)[np.argmax(ll, 0)]

    return predict


@pytest.fixture(scope='module')
def pixels(demo):
    return _pixels(demo, 'train'), _pixels(demo, 'test')


def _confusion(pixels, cols, classes=range(6)):
    (x_tr, y_tr), (x_te, y_te) = pixels
    keep_tr, keep_te = np.isin(y_tr, classes), np.isin(y_te, classes)
    predict = _gaussian_classifier(x_tr[keep_tr][:, cols], y_tr[keep_tr],
                                   list(classes))
    pred = predict(x_te[keep_te][:, cols])
    cm = np.zeros((6, 6))
    np.add.at(cm, (y_te[keep_te], pred), 1)
    return cm / np.maximum(cm.sum(1, keepdims=True), 1)  # row = true class


OPT, DSM, FUSED = [0, 1, 2], [3], [0, 1, 2, 3]


def test_roofs_look_like_roads_in_the_optical(pixels):
    (x, y), _ = pixels
    bld, imp = x[y == BLD, :3], x[y == IMP, :3]
    pooled = np.sqrt((bld.var(0) + imp.var(0)) / 2)
    assert (np.abs(bld.mean(0) - imp.mean(0)) < 0.2 * pooled).all()
    cm = _confusion(pixels, OPT)
    assert cm[BLD, BLD] < 0.2 and cm[BLD, IMP] > 0.7
    # ... while DSM tells them apart
    cm = _confusion(pixels, DSM, [IMP, BLD])
    assert cm[IMP, IMP] > 0.95 and cm[BLD, BLD] > 0.95


def test_roads_are_as_high_as_low_vegetation_in_the_dsm(pixels):
    (x, y), _ = pixels
    imp, veg = x[y == IMP, 3], x[y == LOWVEG, 3]
    pooled = np.sqrt((imp.var() + veg.var()) / 2)
    assert abs(imp.mean() - veg.mean()) < 0.2 * pooled
    cm = _confusion(pixels, DSM)
    assert cm[IMP, IMP] < 0.2 and cm[IMP, LOWVEG] > 0.7
    # ... while the optical tells them apart
    cm = _confusion(pixels, OPT, [IMP, LOWVEG])
    assert cm[IMP, IMP] > 0.9 and cm[LOWVEG, LOWVEG] > 0.9


def test_trees_need_height_and_only_fusion_separates_all(pixels):
    cm_opt, cm_dsm, cm_fused = (_confusion(pixels, c)
                                for c in (OPT, DSM, FUSED))
    # optical: trees mostly taken for low vegetation
    assert cm_opt[TREE, LOWVEG] > 0.5
    # fusion: every main class recovered per pixel
    for c in (IMP, BLD, LOWVEG):
        assert cm_fused[c, c] > 0.9, (c, cm_fused[c])
    assert cm_fused[TREE, TREE] > 0.6
    # balanced accuracy over the six classes
    bacc = {k: np.diag(v).mean() for k, v in
            dict(opt=cm_opt, dsm=cm_dsm, fused=cm_fused).items()}
    assert bacc['fused'] > bacc['opt'] + 0.1
    assert bacc['fused'] > bacc['dsm'] + 0.2
    # ... yet not trivially separable by a single pixel value
    assert bacc['fused'] < 0.97


def test_cars_span_the_demo_vits_patches_as_potsdam_cars_span_dinov2s(demo):
    """Every car, in training and test tiles, is 2-3.5 of the MoBaNet demo
    ViT's patches long and at least one wide: a Potsdam car (90 x 36 px at
    5 cm) spans 6.4 x 2.6 of DINOv2's 14-px patches; cars narrower than a
    patch lose most of their pixels to the eroded labels."""
    from mmrsfusion.utils import load_config
    cfg = load_config(
        osp.join(REPO, 'configs/mobanet/demo_tinyvit_synthetic.py'))
    patch = cfg.model.backbone.encoder_cfg.patch_size
    for split in ('train', 'test'):
        sides = []
        for n in sorted(os.listdir(f'{demo}/ann_dir/{split}')):
            car = cv2.imread(f'{demo}/ann_dir/{split}/{n}', 0) == CAR
            num, _, stats, _ = cv2.connectedComponentsWithStats(
                car.astype(np.uint8), connectivity=4)
            # a car is a filled box: component area = its bounding box
            assert (stats[1:, 4] == stats[1:, 2] * stats[1:, 3]).all(), n
            sides += [sorted(s) for s in stats[1:, 2:4]]
        breadth, length = np.asarray(sides, float).T / patch
        assert len(sides) >= 3 * len(os.listdir(f'{demo}/ann_dir/{split}'))
        assert breadth.min() >= 1, (split, breadth.min() * patch)
        assert 2 <= length.min() and length.max() <= 3.5, (split, length)
        # Potsdam's length / breadth, 90 / 36
        assert np.allclose(length / breadth, 2.5, atol=0.3)
