"""Multimodal datasets: pairing by stem, errors, band / elevation choices,
ISPRS metainfo, eroded labels, the converters' manifest."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import tifffile
from mmengine.registry import init_default_scope

import mmrsfusion  # noqa: F401
from mmseg.registry import DATASETS, TRANSFORMS
from mmrsfusion.datasets import (ISPRS_CLASSES, ISPRS_PALETTE,
                                 MultiModalSegDataset, PotsdamMMDataset,
                                 SyntheticMMDataset, VaihingenMMDataset)



@pytest.fixture(autouse=True)
def _mmseg_scope():
    # datasets build their pipeline from the default scope, as in a runner
    init_default_scope('mmseg')


PALETTE = [[255, 255, 255], [0, 0, 255], [0, 255, 255], [0, 255, 0],
           [255, 255, 0], [255, 0, 0]]


def _write(root, split, stem, bands=3, size=(16, 12), ndsm=False,
           dsm_ext='.tif', seed=0):
    rng = np.random.default_rng(seed)
    h, w = size
    paths = {}
    for d in ('img_dir', 'dsm_dir', 'ann_dir', 'ann_eroded_dir'):
        os.makedirs(osp.join(root, d, split), exist_ok=True)
    img = rng.integers(0, 256, (h, w, bands)).astype(np.uint8)
    kwargs = dict(photometric='rgb')
    if bands > 3:
        kwargs['extrasamples'] = ['unspecified'] * (bands - 3)
    paths['img'] = osp.join(root, 'img_dir', split, stem + '.tif')
    tifffile.imwrite(paths['img'], img, **kwargs)
    dsm = (100 + 10 * rng.random((h, w))).astype(np.float32)
    paths['dsm'] = osp.join(root, 'dsm_dir', split, stem + dsm_ext)
    if dsm_ext == '.tif':
        tifffile.imwrite(paths['dsm'], dsm)
    else:
        cv2.imwrite(paths['dsm'], (dsm - 100).astype(np.uint8) * 20)
    if ndsm:
        os.makedirs(osp.join(root, 'ndsm_dir', split), exist_ok=True)
        paths['ndsm'] = osp.join(root, 'ndsm_dir', split, stem + '.png')
        cv2.imwrite(paths['ndsm'], rng.integers(0, 256, (h, w)).astype(
            np.uint8))
    label = rng.integers(0, 6, (h, w)).astype(np.uint8)
    eroded = label.copy()
    eroded[0] = 255
    cv2.imwrite(osp.join(root, 'ann_dir', split, stem + '.png'), label)
    cv2.imwrite(osp.join(root, 'ann_eroded_dir', split, stem + '.png'),
                eroded)
    return img, dsm, label, eroded


def _prefix(split='train', ann='ann_dir', dsm='dsm_dir'):
    return dict(
        img_path=f'img_dir/{split}',
        dsm_path=f'{dsm}/{split}',
        seg_map_path=f'{ann}/{split}')


def test_pairs_files_by_stem_across_modalities(tmp_path):
    root = str(tmp_path)
    for i, stem in enumerate(['b', 'a', 'c']):
        _write(root, 'train', stem, seed=i, dsm_ext='.png' if stem == 'c'
               else '.tif')
    ds = DATASETS.build(
        dict(
            type='MultiModalSegDataset',
            data_root=root,
            data_prefix=_prefix()))
    assert len(ds) == 3
    infos = [ds.get_data_info(i) for i in range(3)]
    assert [osp.basename(i['img_path']) for i in infos] == [
        'a.tif', 'b.tif', 'c.tif'
    ]
    for info in infos:
        stem = osp.splitext(osp.basename(info['img_path']))[0]
        assert info['dsm_path'] == osp.join(root, 'dsm_dir', 'train', stem +
                                            ('.png' if stem == 'c' else
                                             '.tif'))
        assert info['seg_map_path'] == osp.join(root, 'ann_dir', 'train',
                                                stem + '.png')
        assert info['reduce_zero_label'] is False
        assert 'bands' not in info


def test_missing_modality_file_names_tile_and_expected_path(tmp_path):
    root = str(tmp_path)
    _write(root, 'train', 'tile1')
    _write(root, 'train', 'tile2')
    os.remove(osp.join(root, 'dsm_dir', 'train', 'tile2.tif'))
    with pytest.raises(FileNotFoundError) as e:
        DATASETS.build(
            dict(
                type='VaihingenMMDataset',
                data_root=root,
                data_prefix=_prefix()))
    msg = str(e.value)
    assert "'tile2'" in msg and 'dsm_path' in msg
    assert osp.join(root, 'dsm_dir', 'train', 'tile2') in msg
    # with a given suffix, the expected path is exact
    with pytest.raises(FileNotFoundError) as e:
        VaihingenMMDataset(
            data_root=root,
            data_prefix=_prefix(),
            modality_suffixes=dict(dsm_path='.tif'))
    assert osp.join(root, 'dsm_dir', 'train', 'tile2.tif') in str(e.value)
    # a missing label
    _write(root, 'test', 'x')
    os.remove(osp.join(root, 'ann_dir', 'test', 'x.png'))
    with pytest.raises(FileNotFoundError, match=r"'x' has no seg_map_path.*"
                       r'x\{\.tif,\.tiff,\.png'):
        VaihingenMMDataset(data_root=root, data_prefix=_prefix('test'))


def test_missing_folder_empty_folder_and_ambiguous_stem(tmp_path):
    root = str(tmp_path)
    _write(root, 'train', 'a')
    with pytest.raises(FileNotFoundError, match='nosuch_dir'):
        VaihingenMMDataset(
            data_root=root, data_prefix=_prefix(dsm='nosuch_dir'))
    os.makedirs(osp.join(root, 'img_dir', 'empty'))
    with pytest.raises(FileNotFoundError, match='no tile found'):
        VaihingenMMDataset(
            data_root=root,
            data_prefix=dict(img_path='img_dir/empty'))
    cv2.imwrite(osp.join(root, 'dsm_dir', 'train', 'a.png'),
                np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match='several dsm_path files'):
        VaihingenMMDataset(data_root=root, data_prefix=_prefix())
    ds = VaihingenMMDataset(
        data_root=root,
        data_prefix=_prefix(),
        modality_suffixes=dict(dsm_path='.png'))
    assert ds.get_data_info(0)['dsm_path'].endswith('a.png')


def test_ann_file_lists_the_tiles(tmp_path):
    root = str(tmp_path)
    for stem in ('a', 'b', 'c'):
        _write(root, 'train', stem)
    (tmp_path / 'split.txt').write_text('c\na\n')
    ds = VaihingenMMDataset(
        data_root=root, ann_file='split.txt', data_prefix=_prefix())
    assert [osp.basename(ds.get_data_info(i)['img_path'])
            for i in range(len(ds))] == ['a.tif', 'c.tif']


def test_isprs_metainfo():
    for cls in (VaihingenMMDataset, PotsdamMMDataset, SyntheticMMDataset):
        assert cls.METAINFO['classes'] == ISPRS_CLASSES
        assert list(map(list, cls.METAINFO['palette'])) == PALETTE
        assert len(ISPRS_CLASSES) == 6
    assert ISPRS_PALETTE == PALETTE
    assert ISPRS_CLASSES[5] == 'clutter'


def test_eroded_labels_for_evaluation(tmp_path):
    root = str(tmp_path)
    img, dsm, label, eroded = _write(root, 'test', 'area2')
    spec = [
        dict(name='rgb', channels=3, kind='optical'),
        dict(name='dsm', channels=1, kind='elevation'),
    ]
    ds = VaihingenMMDataset(
        data_root=root,
        data_prefix=_prefix('test', ann='ann_eroded_dir'),
        test_mode=True,
        pipeline=[
            dict(type='LoadMultiModalImageFromFiles', modalities=spec),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')
        ])
    sample = ds[0]
    seg = sample['data_samples'].gt_sem_seg.data[0].numpy()
    np.testing.assert_array_equal(seg, eroded)
    assert (seg[0] == 255).all() and seg[1:].max() <= 5
    x = sample['inputs'].numpy()
    assert x.shape == (4, 16, 12)
    np.testing.assert_array_equal(x[:3], img.transpose(2, 0, 1))


@pytest.mark.parametrize('choice,bands', [('RGB', [0, 1, 2]),
                                          ('IRRG', [3, 0, 1]),
                                          ('RGBIR', [0, 1, 2, 3])])
def test_potsdam_optical_band_choice(tmp_path, choice, bands):
    root = str(tmp_path)
    img, *_ = _write(root, 'train', '2_10', bands=4)
    ds = PotsdamMMDataset(
        data_root=root, data_prefix=_prefix(), optical_bands=choice)
    info = ds.get_data_info(0)
    assert tuple(info['bands']['img_path']) == tuple(bands)
    spec = [
        dict(name='rgb', channels=len(bands), kind='optical'),
        dict(name='dsm', channels=1, kind='elevation'),
    ]
    res = TRANSFORMS.build(
        dict(type='LoadMultiModalImageFromFiles', modalities=spec))(info)
    np.testing.assert_array_equal(res['img'][..., :len(bands)],
                                  img[..., bands].astype(np.float32))
    with pytest.raises(ValueError, match='unknown preset'):
        PotsdamMMDataset(
            data_root=root, data_prefix=_prefix(), optical_bands='BGR')
    # explicit indices, default RGB
    ds = PotsdamMMDataset(
        data_root=root, data_prefix=_prefix(), optical_bands=[2, 1])
    assert tuple(ds.get_data_info(0)['bands']['img_path']) == (2, 1)
    assert PotsdamMMDataset(data_root=root, data_prefix=_prefix()
                            ).get_data_info(0)['bands']['img_path'] == (0, 1,
                                                                        2)


def test_potsdam_bands_follow_the_manifest_band_order(tmp_path):
    """A folder converted with --optical IRRG holds IR, R, G files."""
    root = str(tmp_path)
    _write(root, 'train', '2_10', bands=3)
    (tmp_path / 'conversion.json').write_text(
        json.dumps(dict(notes=dict(optical='IRRG', bands=['IR', 'R', 'G']))))
    ds = PotsdamMMDataset(
        data_root=root, data_prefix=_prefix(), optical_bands='IRRG')
    assert tuple(ds.get_data_info(0)['bands']['img_path']) == (0, 1, 2)
    with pytest.raises(ValueError, match=r"needs bands \['B'\]"):
        PotsdamMMDataset(
            data_root=root, data_prefix=_prefix(), optical_bands='RGB')


def test_elevation_choice_dsm_or_ndsm(tmp_path):
    root = str(tmp_path)
    _write(root, 'train', '2_10', bands=4, ndsm=True)
    ds = PotsdamMMDataset(
        data_root=root, data_prefix=_prefix(), elevation='ndsm')
    assert ds.get_data_info(0)['dsm_path'] == osp.join(
        root, 'ndsm_dir', 'train', '2_10.png')
    ds = PotsdamMMDataset(
        data_root=root,
        data_prefix=_prefix(dsm='ndsm_dir'),
        elevation='dsm')
    assert ds.get_data_info(0)['dsm_path'] == osp.join(
        root, 'dsm_dir', 'train', '2_10.tif')
    with pytest.raises(ValueError, match='contains no dsm_dir or ndsm_dir'):
        PotsdamMMDataset(
            data_root=root,
            data_prefix=dict(img_path='img_dir/train', dsm_path='x/train'),
            elevation='ndsm')
    with pytest.raises(ValueError, match='elevation'):
        PotsdamMMDataset(
            data_root=root, data_prefix=_prefix(), elevation='lidar')


def test_clips_are_normalised_by_their_whole_tile_range(tmp_path):
    """With a converters' manifest, a clip gets its tile's DSM range."""
    root = str(tmp_path)
    img, dsm, *_ = _write(root, 'train', 'area1_0_0_12_16')
    _write(root, 'train', 'area9', seed=3)
    manifest = dict(
        layout=dict(
            img=dict(dir='img_dir', ext='.tif'),
            dsm=dict(dir='dsm_dir', ext='.tif'),
            ann=dict(dir='ann_dir', ext='.png')),
        tiles=dict(area1=dict(dsm_stats=dict(min=90.0, max=130.0))))
    (tmp_path / 'conversion.json').write_text(json.dumps(manifest))
    ds = VaihingenMMDataset(data_root=root, data_prefix=_prefix())
    infos = {
        osp.basename(ds.get_data_info(i)['img_path']): ds.get_data_info(i)
        for i in range(len(ds))
    }
    clip = infos['area1_0_0_12_16.tif']
    assert tuple(clip['elevation_range']['dsm_path']) == (90.0, 130.0)
    assert 'elevation_range' not in infos['area9.tif']
    spec = [
        dict(name='rgb', channels=3, kind='optical'),
        dict(name='dsm', channels=1, kind='elevation'),
    ]
    res = TRANSFORMS.build(
        dict(type='LoadMultiModalImageFromFiles', modalities=spec))(clip)
    np.testing.assert_allclose(res['img'][..., 3], (dsm - 90.) / 40.,
                               atol=1e-6)
    # manifest=None: per-file range
    ds = VaihingenMMDataset(
        data_root=root, data_prefix=_prefix(), manifest=None)
    assert all('elevation_range' not in ds.get_data_info(i)
               for i in range(len(ds)))


def test_base_class_is_usable_directly(tmp_path):
    root = str(tmp_path)
    _write(root, 'train', 'a')
    ds = MultiModalSegDataset(
        data_root=root,
        data_prefix=_prefix(),
        metainfo=dict(classes=ISPRS_CLASSES, palette=ISPRS_PALETTE))
    assert len(ds) == 1 and ds.metainfo['classes'] == ISPRS_CLASSES


def test_missing_optical_file_is_named_not_dropped(tmp_path):
    """A tile whose optical file is missing (its DSM and label present) is
    an error naming the file, not a tile silently left out."""
    root = str(tmp_path)
    for stem in ('a', 'b'):
        _write(root, 'test', stem)
    os.remove(osp.join(root, 'img_dir', 'test', 'b.tif'))
    with pytest.raises(FileNotFoundError) as e:
        VaihingenMMDataset(data_root=root, data_prefix=_prefix('test'))
    msg = str(e.value)
    assert "'b' has no img_path file" in msg
    assert osp.join(root, 'img_dir', 'test', 'b.tif') in msg
    assert "['dsm_path', 'seg_map_path']" in msg  # what the tile has


def test_missing_data_root_names_the_command_that_writes_it(tmp_path):
    root = str(tmp_path / 'nosuch')
    with pytest.raises(FileNotFoundError) as e:
        SyntheticMMDataset(data_root=root, data_prefix=_prefix('test'))
    assert f'mmrsfusion make-synthetic {root}' \
        in str(e.value)
    with pytest.raises(FileNotFoundError,
                       match=r'mmrsfusion make-synthetic .* --nir'):
        SyntheticMMDataset(
            data_root=root,
            data_prefix=dict(_prefix('test'), nir_path='nir_dir/test'))
    with pytest.raises(FileNotFoundError,
                       match=r'mmrsfusion convert vaihingen RAW_PATH '
                       r'-o ' + root):
        VaihingenMMDataset(data_root=root, data_prefix=_prefix('test'))
