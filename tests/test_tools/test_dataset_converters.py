"""Tests of tools/dataset_converters/{vaihingen,potsdam}.py and
mmrsfusion.datasets.isprs_raw on small synthetic raw downloads that use the
real file / archive names, band counts and dtypes (see
isprs_raw_synthetic.py)."""
import importlib.util
import itertools
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tifffile

from mmrsfusion.datasets import isprs_raw
from mmrsfusion.datasets.isprs_raw import ConversionError
from mmrsfusion.utils import progress as progress_module

# Expected, informational warnings of partial synthetic downloads; the tests
# that are about them assert them with pytest.warns.
pytestmark = [
    pytest.mark.filterwarnings('ignore:.*not found under RAW_PATH'),
    pytest.mark.filterwarnings('ignore:Labels of .* off-palette pixels'),
]

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
CONVERTERS = osp.join(REPO, 'tools', 'dataset_converters')


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


synth = _load(osp.join(HERE, 'isprs_raw_synthetic.py'), 'isprs_raw_synthetic')
vaihingen = _load(osp.join(CONVERTERS, 'vaihingen.py'), 'vaihingen_converter')
potsdam = _load(osp.join(CONVERTERS, 'potsdam.py'), 'potsdam_converter')

MODALITY_READERS = {
    'img_dir': tifffile.imread,
    'dsm_dir': tifffile.imread,
    'ndsm_dir': lambda p: cv2.imread(p, cv2.IMREAD_UNCHANGED),
    'ann_dir': lambda p: cv2.imread(p, cv2.IMREAD_UNCHANGED),
    'ann_eroded_dir': lambda p: cv2.imread(p, cv2.IMREAD_UNCHANGED),
}


def _tree(root):
    """{relative path: bytes} of every file below root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = osp.join(dirpath, f)
            with open(p, 'rb') as fh:
                out[osp.relpath(p, root)] = fh.read()
    return out


def _read(out, folder, split, stem):
    ext = isprs_raw.LAYOUT[{v[0]: k for k, v in isprs_raw.LAYOUT.items()}
                           [folder]][1]
    path = osp.join(out, folder, split, stem + ext)
    assert osp.isfile(path), path
    return MODALITY_READERS[folder](path)


def _convert_vaihingen(raw, out, split='official', **kwargs):
    kwargs.setdefault('progress', False)
    with pytest.warns(UserWarning, match='not found under RAW_PATH'):
        return isprs_raw.convert(vaihingen.build_spec(split), raw, out,
                                 optical_bands=3, **kwargs)


def _no_staging_left(parent):
    return [n for n in os.listdir(parent) if '.converting-' in n] == []


# --------------------------------------------------------------------------
# Units: colour mapping, clip positions, ground-truth context
# --------------------------------------------------------------------------
def test_colour_to_index_exact_snapped_unknown_and_black():
    rgb = np.array([[[255, 255, 255], [0, 0, 255], [0, 255, 255]],
                    [[0, 255, 0], [255, 255, 0], [255, 0, 0]],
                    [[250, 251, 255], [8, 0, 247], [128, 128, 128]],
                    [[0, 0, 0], [5, 3, 0], [0, 0, 40]]], np.uint8)
    index, stats = isprs_raw.colour_to_index(rgb, tolerance=10)
    np.testing.assert_array_equal(
        index, [[0, 1, 2], [3, 4, 5], [0, 1, 255], [255, 255, 255]])
    assert stats == dict(exact=6, snapped=2, unknown=4, ignored=0)
    # eroded labels: black (and near-black) is ignore, not "unknown"
    index, stats = isprs_raw.colour_to_index(
        rgb, ignore_colours=[(0, 0, 0)], tolerance=10)
    np.testing.assert_array_equal(index[3], [255, 255, 255])
    assert stats == dict(exact=6, snapped=2, unknown=2, ignored=2)
    # tolerance 0: only exact colours
    index, _ = isprs_raw.colour_to_index(rgb, tolerance=0)
    np.testing.assert_array_equal(index[2], [255, 255, 255])


@pytest.mark.parametrize('length,clip,stride,starts', [
    (70, 32, 16, [0, 16, 32, 38]),
    (50, 32, 16, [0, 16, 18]),
    (64, 32, 32, [0, 32]),
    (70, 32, 32, [0, 32, 38]),
    (64, 32, 16, [0, 16, 32]),
    (20, 32, 16, [0]),
])
def test_clip_starts_cover_every_pixel(length, clip, stride, starts):
    got = isprs_raw.clip_starts(length, clip, stride)
    assert got == starts
    covered = np.zeros(length, bool)
    for s in got:
        covered[s:s + clip] = True
    assert covered.all()
    assert min(got[-1] + clip, length) == length  # flush with the border
    assert all(b - a <= stride for a, b in zip(got, got[1:]))


def test_clip_starts_refuses_stride_larger_than_clip():
    with pytest.raises(ValueError, match='uncovered'):
        isprs_raw.clip_starts(100, 16, 32)


def test_ground_truth_context():
    gt = isprs_raw.is_ground_truth_context
    assert gt([synth.VAIHINGEN_GT])
    assert gt([synth.VAIHINGEN_ERODED])
    assert gt(['Vaihingen', 'gts_for_participants'])
    assert gt(['labels'])
    assert not gt([synth.VAIHINGEN_IMAGES, 'top'])  # "labeling" != label
    assert not gt(['data', 'vaihingen', 'dsm'])


# --------------------------------------------------------------------------
# Vaihingen
# --------------------------------------------------------------------------
def _check_vaihingen_tile(out, split, tile, exp):
    h, w = exp['img'].shape[:2]
    img = _read(out, 'img_dir', split, tile)
    assert img.dtype == np.uint8 and img.shape == (h, w, 3)
    np.testing.assert_array_equal(img, exp['img'])  # IR, R, G kept
    dsm = _read(out, 'dsm_dir', split, tile)
    assert dsm.dtype == np.float32 and dsm.shape == (h, w)
    # heights preserved bit for bit, every no-data pixel (-9999, NaN) NaN
    np.testing.assert_array_equal(dsm, exp['dsm'])
    assert np.isnan(dsm[[0, -1, 0], [0, -1, 1]]).all()
    ann = _read(out, 'ann_dir', split, tile)
    assert ann.dtype == np.uint8 and ann.shape == (h, w)
    np.testing.assert_array_equal(ann, exp['ann'])
    assert ann[exp['special']['snapped']] < 6  # off colour snapped
    assert ann[exp['special']['unknown']] == 255  # far colour -> 255
    assert set(np.unique(ann)) == set(range(6)) | {255}
    ero = _read(out, 'ann_eroded_dir', split, tile)
    assert ero.dtype == np.uint8 and ero.shape == (h, w)
    np.testing.assert_array_equal(ero, exp['ann_eroded'])
    for yx in exp['special_eroded']['boundary']:
        assert ero[yx] == 255  # black boundary -> ignore
    assert ero[3, 3] == 255  # near-black -> ignore


def test_vaihingen_zips_whole_tiles(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    expected = synth.make_vaihingen_raw(str(raw), areas=(1, 2, 3, 5))
    assert sorted(os.listdir(raw)) == sorted(
        n + '.zip' for n in (synth.VAIHINGEN_IMAGES, synth.VAIHINGEN_GT,
                             synth.VAIHINGEN_ERODED))
    report = _convert_vaihingen(str(raw), str(out))

    # only the present areas of the official split, in the right split
    files = sorted(_tree(out))
    layout = ['img_dir', 'dsm_dir', 'ann_dir', 'ann_eroded_dir']
    exts = dict(img_dir='.tif', dsm_dir='.tif', ann_dir='.tif',
                ann_eroded_dir='.tif')
    want = [f'{d}/train/area{n}{exts[d]}' for d in layout for n in (1, 3, 5)]
    want += [f'{d}/test/area2{exts[d]}' for d in layout]
    assert files == sorted(want + ['conversion.json'])
    for tile, split in [('area1', 'train'), ('area3', 'train'),
                        ('area5', 'train'), ('area2', 'test')]:
        _check_vaihingen_tile(str(out), split, tile, expected[tile])

    # missing areas listed, not fatal
    assert 'area7' in report.missing['train']
    assert 'area4' in report.missing['test']
    assert len(report.missing['train']) == 13
    assert len(report.missing['test']) == 16
    # the manifest records per-tile DSM range without the no-data values
    manifest = json.loads((out / 'conversion.json').read_text())
    stats = manifest['tiles']['area1']['dsm_stats']
    valid = expected['area1']['dsm'][np.isfinite(expected['area1']['dsm'])
                                     & (expected['area1']['dsm'] != -9999)]
    assert stats['min'] == pytest.approx(float(valid.min()))
    assert stats['max'] == pytest.approx(float(valid.max()))
    assert stats['nodata_pixels'] == 3
    assert manifest['tiles']['area1']['ann_colours']['snapped'] == 1
    assert manifest['tiles']['area1']['ann_colours']['unknown'] == 1
    # the label came from the COMPLETE archive, not gts_for_participants,
    # and the image from the image archive (same file name)
    sources = manifest['tiles']['area1']['sources']
    assert synth.VAIHINGEN_GT + '.zip!' in sources['ann']
    assert sources['img'].endswith(
        synth.VAIHINGEN_IMAGES + '.zip!top/top_mosaic_09cm_area1.tif')
    assert manifest['split'] == 'official'
    assert _no_staging_left(str(tmp_path))


def test_vaihingen_extracted_folders_at_depth_equal_zips(tmp_path):
    synth.make_vaihingen_raw(str(tmp_path / 'raw_zip'), areas=(1, 2))
    synth.make_vaihingen_raw(str(tmp_path / 'raw_dir'), areas=(1, 2),
                             as_zip=False, depth='downloads/isprs/vaihingen')
    _convert_vaihingen(str(tmp_path / 'raw_zip'), str(tmp_path / 'o1'))
    _convert_vaihingen(str(tmp_path / 'raw_dir'), str(tmp_path / 'o2'))
    t1, t2 = _tree(tmp_path / 'o1'), _tree(tmp_path / 'o2')
    t1.pop('conversion.json'), t2.pop('conversion.json')
    assert sorted(t1) == sorted(t2) and len(t1) == 8
    for k in t1:
        assert t1[k] == t2[k], k


def test_vaihingen_mfnet_split(tmp_path, capsys, monkeypatch):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    expected = synth.make_vaihingen_raw(str(raw), areas=(1, 2, 3, 5))
    ticks = itertools.count(step=60)  # a minute per clock reading
    monkeypatch.setattr(progress_module, 'clock', lambda: float(next(ticks)))
    report = _convert_vaihingen(str(raw), str(out), split='mfnet',
                                progress=True)
    assert 'tiles 3/3' in capsys.readouterr().out  # progress, one process
    assert sorted(os.listdir(out / 'img_dir' / 'train')) == [
        'area1.tif', 'area3.tif']
    assert sorted(os.listdir(out / 'img_dir' / 'test')) == ['area5.tif']
    assert report.ignored_tiles == ['area2']  # not in the MFNet split
    _check_vaihingen_tile(str(out), 'test', 'area5', expected['area5'])


def test_vaihingen_clips_with_stride_cover_tile(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    expected = synth.make_vaihingen_raw(str(raw), areas=(1, 2))
    report = _convert_vaihingen(str(raw), str(out), clip_size=32,
                                stride_size=16)
    # area1 is 50 x 70 (H x W): x starts 0,16,32,38 ; y starts 0,16,18
    xs, ys = [0, 16, 32, 38], [0, 16, 18]
    want = sorted(f'area1_{x}_{y}_{x + 32}_{y + 32}' for x in xs for y in ys)
    for folder, ext in [('img_dir', '.tif'), ('dsm_dir', '.tif'),
                        ('ann_dir', '.tif'), ('ann_eroded_dir', '.tif')]:
        names = sorted(os.listdir(out / folder / 'train'))
        assert names == sorted(s + ext for s in want)
    assert report.tiles['area1']['clips'] == 12
    exp = expected['area1']
    covered = np.zeros(exp['ann'].shape, int)
    for stem in want:
        x0, y0, x1, y1 = map(int, stem.split('_')[1:])
        assert (x1 - x0, y1 - y0) == (32, 32)
        img = _read(str(out), 'img_dir', 'train', stem)
        dsm = _read(str(out), 'dsm_dir', 'train', stem)
        ann = _read(str(out), 'ann_dir', 'train', stem)
        ero = _read(str(out), 'ann_eroded_dir', 'train', stem)
        np.testing.assert_array_equal(img, exp['img'][y0:y1, x0:x1])
        np.testing.assert_array_equal(dsm, exp['dsm'][y0:y1, x0:x1])
        np.testing.assert_array_equal(ann, exp['ann'][y0:y1, x0:x1])
        np.testing.assert_array_equal(ero, exp['ann_eroded'][y0:y1, x0:x1])
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1  # every pixel is in some clip
    assert covered.max() > 1  # stride < clip: clips overlap
    # area2 (45 x 60, test split) clipped too
    assert len(os.listdir(out / 'img_dir' / 'test')) == 3 * 2


def test_vaihingen_test_whole_keeps_test_tiles_whole(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_vaihingen_raw(str(raw), areas=(1, 2))
    _convert_vaihingen(str(raw), str(out), clip_size=32, test_whole=True)
    assert os.listdir(out / 'img_dir' / 'test') == ['area2.tif']
    assert len(os.listdir(out / 'img_dir' / 'train')) == 2 * 3


@pytest.mark.parametrize('preexisting', [False, True])
def test_size_mismatch_names_both_files_and_leaves_out_dir(tmp_path,
                                                           preexisting):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    # area2 is the last tile processed (train 1, 3, 5 first, then test 2)
    synth.make_vaihingen_raw(str(raw), areas=(1, 2, 3, 5),
                             dsm_shapes={2: (44, 60)})
    if preexisting:
        (out / 'notes').mkdir(parents=True)
        (out / 'notes' / 'keep.txt').write_text('mine')
    before = _tree(out) if preexisting else None
    with pytest.raises(ConversionError) as err:
        _convert_vaihingen(str(raw), str(out))
    msg = str(err.value)
    assert 'area2' in msg
    assert 'dsm_09cm_matching_area2.tif (44 x 60' in msg
    assert 'top_mosaic_09cm_area2.tif (45 x 60)' in msg
    if preexisting:
        assert _tree(out) == before
        assert sorted(os.listdir(out)) == ['notes']
    else:
        assert not out.exists()
    assert _no_staging_left(str(tmp_path))


def test_size_mismatch_resize_is_reported(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_vaihingen_raw(str(raw), areas=(1, 2),
                             dsm_shapes={2: (44, 60)})
    with pytest.warns(UserWarning, match='resampled'):
        report = _convert_vaihingen(str(raw), str(out),
                                    elevation_mismatch='resize')
    assert any('dsm_09cm_matching_area2.tif (44 x 60)' in m
               for m in report.messages)
    assert report.tiles['area2']['resized'] == ['dsm']
    assert _read(str(out), 'dsm_dir', 'test', 'area2').shape == (45, 60)


@pytest.mark.parametrize('nproc', [1, 2])
def test_failure_midway_leaves_out_dir_unchanged(tmp_path, nproc):
    """A corrupt file in the last tile: earlier tiles were already staged,
    nothing of them reaches OUT_DIR, and OUT_DIR's content is untouched."""
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_vaihingen_raw(str(raw), areas=(1, 3, 5), as_zip=False)
    synth.make_vaihingen_raw(str(raw), areas=(2, ), as_zip=False)
    dsm2 = raw / synth.VAIHINGEN_IMAGES / 'dsm' / 'dsm_09cm_matching_area2.tif'
    dsm2.write_bytes(dsm2.read_bytes()[:200])  # truncated download
    out.mkdir()
    (out / 'README').write_text('earlier content')
    before = _tree(out)
    with pytest.raises(ConversionError, match='Cannot read TIFF .*area2'):
        _convert_vaihingen(str(raw), str(out), clip_size=16, nproc=nproc)
    assert _tree(out) == before
    assert _no_staging_left(str(tmp_path))


def test_missing_modality_names_tile_and_names_looked_for(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_vaihingen_raw(str(raw), areas=(1, 2, 3),
                             skip={(3, 'ann_eroded'), (3, 'dsm')})
    with pytest.raises(ConversionError) as err:
        isprs_raw.convert(vaihingen.build_spec(), str(raw), str(out),
                          progress=False)
    msg = str(err.value)
    assert 'Tile area3: no DSM, eroded label found' in msg
    assert 'dsm_09cm_matching_area3.tif' in msg
    assert 'top_mosaic_09cm_area3_noBoundary.tif' in msg
    assert 'area1' not in msg.split('Found for this tile')[0]
    assert not out.exists()


def test_label_missing_when_ground_truth_not_marked(tmp_path):
    """Image and label share a name: a label outside any ground-truth
    archive/folder is not taken for the label (and says where it looked)."""
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_vaihingen_raw(str(raw), areas=(1, ), skip={(1, 'ann')})
    with pytest.raises(ConversionError,
                       match='no label found.*marks ground truth'):
        isprs_raw.convert(vaihingen.build_spec(), str(raw), str(out),
                          progress=False)


def _vaihingen_with_labels_in(raw, folder, areas=(1, 2)):
    """Extracted Vaihingen download whose COMPLETE ground truth sits in a
    folder named ``folder`` (no ground-truth word in it)."""
    expected = synth.make_vaihingen_raw(str(raw), areas=areas, as_zip=False)
    (raw / synth.VAIHINGEN_GT).rename(raw / folder)
    return expected


@pytest.mark.parametrize('folder', ['complete_set', 'misc'])
def test_label_in_unmarked_folder_is_never_the_image(tmp_path, folder):
    """The labels have the images' names; unzipped into a folder that does
    not mark ground truth they are told apart by content (the six class
    colours): the image stays the image, the label is the label."""
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    expected = _vaihingen_with_labels_in(raw, folder)
    report = _convert_vaihingen(str(raw), str(out))
    for tile, split in [('area1', 'train'), ('area2', 'test')]:
        _check_vaihingen_tile(str(out), split, tile, expected[tile])
        sources = report.tiles[tile]['sources']
        assert sources['img'].endswith(
            osp.join(synth.VAIHINGEN_IMAGES, 'top', f'top_mosaic_09cm_'
                     f'{tile}.tif'))
    # area2 (test) has no gts_for_participants label: it came from folder
    assert folder in report.tiles['area2']['sources']['ann']


def test_complete_label_folder_does_not_replace_the_image(tmp_path):
    """The reported case: area1's label is also in gts_for_participants, so
    nothing is missing, and a "complete" folder must not make the label the
    image (it was preferred, and the conversion exited 0)."""
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    expected = _vaihingen_with_labels_in(raw, 'complete_set', areas=(1, ))
    report = _convert_vaihingen(str(raw), str(out))
    _check_vaihingen_tile(str(out), 'train', 'area1', expected['area1'])
    assert 'complete_set' not in report.tiles['area1']['sources']['img']


def test_label_as_the_only_optical_candidate_is_refused(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    _vaihingen_with_labels_in(raw, 'complete_set', areas=(1, ))
    os.remove(raw / synth.VAIHINGEN_IMAGES / 'top' / 'top_mosaic_09cm_'
              'area1.tif')
    with pytest.raises(ConversionError) as err:
        isprs_raw.convert(vaihingen.build_spec(), str(raw), str(out),
                          progress=False)
    msg = str(err.value)
    assert 'complete_set' in msg and 'is a colour-coded label' in msg
    assert not out.exists() and _no_staging_left(str(tmp_path))


def test_two_different_images_for_one_tile_are_refused(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_vaihingen_raw(str(raw / 'a'), areas=(1, ), as_zip=False)
    other = raw / 'b' / 'top_mosaic_09cm_area1.tif'
    other.parent.mkdir()
    img = tifffile.imread(raw / 'a' / synth.VAIHINGEN_IMAGES / 'top' /
                          'top_mosaic_09cm_area1.tif')
    other.write_bytes(synth.tiff_bytes(255 - img))
    with pytest.raises(ConversionError) as err:
        isprs_raw.convert(vaihingen.build_spec(), str(raw), str(out),
                          progress=False)
    msg = str(err.value)
    assert 'several different files' in msg and 'optical image' in msg
    assert str(other) in msg
    assert osp.join(synth.VAIHINGEN_IMAGES, 'top',
                    'top_mosaic_09cm_area1.tif') in msg


@pytest.mark.parametrize('as_zip', [False, True])
def test_raw_path_named_like_ground_truth_marks_nothing(tmp_path, as_zip):
    """Only folders below RAW_PATH tell ground truth apart: a RAW_PATH
    called e.g. ``gt_labels`` does not make every file a label."""
    raw, out = tmp_path / 'isprs_gt_labels', tmp_path / 'out'
    expected = synth.make_vaihingen_raw(str(raw), areas=(1, 2),
                                        as_zip=as_zip)
    _convert_vaihingen(str(raw), str(out))
    _check_vaihingen_tile(str(out), 'train', 'area1', expected['area1'])
    _check_vaihingen_tile(str(out), 'test', 'area2', expected['area2'])


@pytest.mark.parametrize('content', [None, 'readme.txt'])
def test_empty_or_unrecognised_raw_path(tmp_path, content):
    raw = tmp_path / 'raw'
    raw.mkdir()
    if content:
        (raw / content).write_text('not ISPRS')
        (raw / 'top_mosaic_09cm.tif').write_bytes(b'x')
    with pytest.raises(ConversionError) as err:
        isprs_raw.convert(vaihingen.build_spec(), str(raw),
                          str(tmp_path / 'out'), progress=False)
    msg = str(err.value)
    assert 'No vaihingen tile' in msg
    for name in ('top_mosaic_09cm_area{N}.tif', 'dsm_09cm_matching_area{N}',
                 'top_mosaic_09cm_area{N}_noBoundary.tif'):
        assert name in msg
    assert not (tmp_path / 'out').exists()


def test_nonexistent_raw_path(tmp_path):
    with pytest.raises(ConversionError, match='does not exist'):
        isprs_raw.convert(vaihingen.build_spec(), str(tmp_path / 'nope'),
                          str(tmp_path / 'out'), progress=False)


def test_existing_conversion_refused_unless_overwrite(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_vaihingen_raw(str(raw), areas=(1, 2))
    _convert_vaihingen(str(raw), str(out))
    (out / 'mine.txt').write_text('keep')
    with pytest.raises(ConversionError, match='--overwrite'):
        isprs_raw.convert(vaihingen.build_spec(), str(raw), str(out),
                          progress=False)
    _convert_vaihingen(str(raw), str(out), overwrite=True, clip_size=32)
    assert (out / 'mine.txt').read_text() == 'keep'
    assert len(os.listdir(out / 'img_dir' / 'train')) == 2 * 3  # replaced
    assert _no_staging_left(str(tmp_path))


def test_not_an_image_in_ground_truth_folder_is_refused(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_vaihingen_raw(str(raw), areas=(1, ), as_zip=False)
    img = raw / synth.VAIHINGEN_IMAGES / 'top' / 'top_mosaic_09cm_area1.tif'
    lab = raw / synth.VAIHINGEN_GT / 'top_mosaic_09cm_area1.tif'
    lab.write_bytes(img.read_bytes())  # the image copied into the GT folder
    with pytest.raises(ConversionError, match='does not look like'):
        isprs_raw.convert(vaihingen.build_spec(), str(raw), str(out),
                          progress=False)


def test_vaihingen_cli_with_workers(tmp_path, capsys):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    expected = synth.make_vaihingen_raw(str(raw), areas=(1, 2, 3))
    cmd = [sys.executable, osp.join(CONVERTERS, 'vaihingen.py'), str(raw),
           '-o', str(out), '--clip-size', '32', '--stride-size', '16',
           '--nproc', '2', '--tmp-dir', str(tmp_path)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert 'warning: 14 train tiles' in res.stderr  # missing ones listed
    assert 'area7' in res.stderr
    # piped and shorter than one progress interval (10 s): no progress line
    assert not any(line.startswith('tiles ')
                   for line in res.stdout.splitlines())
    assert len(os.listdir(out / 'img_dir' / 'train')) == 12 + 6  # 1 and 3
    ann = _read(str(out), 'ann_dir', 'train', 'area1_38_18_70_50')
    np.testing.assert_array_equal(ann, expected['area1']['ann'][18:, 38:])
    # errors (in-process main, same code path): exit status 1 + message
    assert vaihingen.main([str(raw), '-o', str(tmp_path / 'o2'),
                           '--clip-size', '16', '--stride-size', '32']) == 1
    assert 'every pixel is covered' in capsys.readouterr().err


# --------------------------------------------------------------------------
# Potsdam
# --------------------------------------------------------------------------
def _convert_potsdam(raw, out, split='official', optical='RGBIR',
                     elevation='dsm', **kwargs):
    kwargs.setdefault('progress', False)
    with pytest.warns(UserWarning, match='not found under RAW_PATH'):
        return isprs_raw.convert(
            potsdam.build_spec(split, optical, elevation), raw, out,
            optical_bands=potsdam.OPTICAL[optical][1], **kwargs)


def test_potsdam_split_tables():
    official = potsdam.SPLITS['official']
    assert len(official['train']) == 23 and '7_10' not in official['train']
    assert len(official['test']) == 14
    assert len(potsdam.SPLITS['mmseg']['train']) == 24
    mfnet = potsdam.SPLITS['mfnet']
    assert len(mfnet['train']) == 18 and '7_10' in mfnet['train']
    assert sorted(mfnet['test']) == sorted(
        ['4_10', '5_11', '2_11', '3_10', '6_11', '7_12'])
    assert len(vaihingen.SPLITS['official']['train']) == 16
    assert len(vaihingen.SPLITS['official']['test']) == 17
    assert len(vaihingen.SPLITS['mfnet']['train']) == 12


def test_potsdam_rgbir_dsm_from_zips(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    expected = synth.make_potsdam_raw(str(raw))
    assert '4_Ortho_RGBIR.zip' in os.listdir(raw)
    report = _convert_potsdam(str(raw), str(out))
    # official (MoBaNet): 7_10 is not in the split
    assert report.ignored_tiles == ['7_10']
    assert sorted(os.listdir(out)) == sorted(
        ['img_dir', 'dsm_dir', 'ann_dir', 'ann_eroded_dir',
         'conversion.json'])
    assert sorted(os.listdir(out / 'img_dir' / 'train')) == [
        '2_10.tif', '2_11.tif']
    assert os.listdir(out / 'img_dir' / 'test') == ['2_13.tif']
    for split, tile in [('train', '2_10'), ('train', '2_11'),
                        ('test', '2_13')]:
        exp = expected[tile]
        img = _read(str(out), 'img_dir', split, tile)
        assert img.dtype == np.uint8 and img.shape == (48, 48, 4)
        np.testing.assert_array_equal(img, exp['img']['RGBIR'])  # R,G,B,IR
        dsm = _read(str(out), 'dsm_dir', split, tile)
        assert dsm.dtype == np.float32
        np.testing.assert_array_equal(dsm, exp['dsm'])
        assert np.isnan(dsm[0, 0]) and np.isnan(dsm[0, 1])
        ann = _read(str(out), 'ann_dir', split, tile)
        np.testing.assert_array_equal(ann, exp['ann'])
        assert ann[exp['special']['unknown']] == 255
        ero = _read(str(out), 'ann_eroded_dir', split, tile)
        np.testing.assert_array_equal(ero, exp['ann_eroded'])
    manifest = json.loads((out / 'conversion.json').read_text())
    assert manifest['notes']['bands'] == ['R', 'G', 'B', 'IR']
    assert manifest['tiles']['2_10']['sources']['dsm'].endswith(
        '1_DSM.zip!1_DSM/dsm_potsdam_02_10.tif')


@pytest.mark.parametrize('optical,elevation', [('RGB', 'ndsm'),
                                               ('IRRG', 'both')])
def test_potsdam_optical_and_elevation_choices(tmp_path, optical, elevation):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    expected = synth.make_potsdam_raw(str(raw), tiles=('2_10', '2_13'))
    _convert_potsdam(str(raw), str(out), optical=optical,
                     elevation=elevation)
    dirs = {'img_dir', 'ann_dir', 'ann_eroded_dir', 'ndsm_dir'}
    if elevation == 'both':
        dirs.add('dsm_dir')
    assert set(os.listdir(out)) == dirs | {'conversion.json'}
    exp = expected['2_10']
    img = _read(str(out), 'img_dir', 'train', '2_10')
    assert img.shape == (48, 48, 3)
    np.testing.assert_array_equal(img, exp['img'][optical])
    ndsm = _read(str(out), 'ndsm_dir', 'train', '2_10')
    assert ndsm.dtype == np.uint8 and ndsm.shape == (48, 48)
    np.testing.assert_array_equal(ndsm, exp['ndsm'])  # lossless from JPEG
    if elevation == 'both':
        np.testing.assert_array_equal(
            _read(str(out), 'dsm_dir', 'test', '2_13'),
            expected['2_13']['dsm'])


def test_potsdam_mfnet_split_extracted_folders(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_potsdam_raw(str(raw), as_zip=False, depth='Potsdam')
    report = _convert_potsdam(str(raw), str(out), split='mfnet')
    assert sorted(os.listdir(out / 'img_dir' / 'train')) == [
        '2_10.tif', '7_10.tif']
    assert os.listdir(out / 'img_dir' / 'test') == ['2_11.tif']
    assert report.ignored_tiles == ['2_13']


def test_potsdam_nested_zip_clipped_equals_flat(tmp_path):
    synth.make_potsdam_raw(str(tmp_path / 'flat'), tiles=('2_10', '2_13'))
    synth.make_potsdam_raw(str(tmp_path / 'nested'), tiles=('2_10', '2_13'),
                           nested_zip='Potsdam')
    assert os.listdir(tmp_path / 'nested') == ['Potsdam.zip']
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    for name in ('flat', 'nested'):
        _convert_potsdam(str(tmp_path / name), str(tmp_path / f'o_{name}'),
                         clip_size=32, stride_size=16,
                         tmp_dir=str(scratch))
    assert os.listdir(scratch) == []  # scratch cleaned up
    t1, t2 = _tree(tmp_path / 'o_flat'), _tree(tmp_path / 'o_nested')
    t1.pop('conversion.json'), t2.pop('conversion.json')
    assert t1 == t2
    # 48 x 48, clip 32 stride 16: starts 0, 16 per axis -> 4 clips per tile
    assert sorted(os.listdir(tmp_path / 'o_flat' / 'img_dir' / 'train')) == [
        f'2_10_{x}_{y}_{x + 32}_{y + 32}.tif' for x in (0, 16)
        for y in (0, 16)]


def test_potsdam_ndsm_size_mismatch(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_potsdam_raw(str(raw), tiles=('2_10', ),
                           dsm_shapes={'2_10': (48, 40)})
    with pytest.raises(ConversionError) as err:
        isprs_raw.convert(potsdam.build_spec('official', 'RGB', 'ndsm'),
                          str(raw), str(out), progress=False)
    msg = str(err.value)
    assert 'Tile 2_10' in msg
    assert 'dsm_potsdam_02_10_normalized_lastools.jpg (48 x 40' in msg
    assert 'top_potsdam_2_10_RGB.tif (48 x 48)' in msg
    assert not out.exists()


def test_potsdam_cli_parses_mmseg_shape(tmp_path):
    args = potsdam.parse_args([
        'raw', '-o', 'out', '--clip_size', '512', '--stride_size', '256',
        '--optical', 'IRRG', '--elevation', 'both', '--split', 'mfnet',
        '--tmp_dir', '/tmp', '--nproc', '3'
    ])
    assert (args.raw_paths, args.out_dir, args.clip_size, args.stride_size,
            args.optical, args.elevation, args.split, args.tmp_dir,
            args.nproc) == (['raw'], 'out', 512, 256, 'IRRG', 'both',
                            'mfnet', '/tmp', 3)
    defaults = potsdam.parse_args(['raw'])
    assert defaults.clip_size is None and defaults.optical == 'RGBIR'
    # in-process main(): error -> exit status 1
    assert potsdam.main([str(tmp_path), '-o', str(tmp_path / 'o')]) == 1


def test_potsdam_missing_modality_names_zero_padded_dsm(tmp_path):
    raw = tmp_path / 'raw'
    synth.make_potsdam_raw(str(raw), tiles=('2_10', ))
    os.remove(raw / '1_DSM.zip')
    with pytest.raises(ConversionError) as err:
        isprs_raw.convert(potsdam.build_spec(), str(raw),
                          str(tmp_path / 'out'), progress=False)
    msg = str(err.value)
    assert 'Tile 2_10: no DSM found' in msg
    assert 'dsm_potsdam_02_10.tif' in msg
    assert 'top_potsdam_2_10_RGBIR.tif' in msg  # what was found


def test_custom_split_table_complete_has_no_missing(tmp_path, recwarn):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_vaihingen_raw(str(raw), areas=(1, 2, 3))
    spec = vaihingen.build_spec({'train': ['area3', 'area1'],
                                 'test': ['area2']})
    report = isprs_raw.convert(spec, str(raw), str(out), progress=False)
    assert report.missing == {'train': [], 'test': []}
    assert not [w for w in recwarn if 'not found' in str(w.message)]
    assert sorted(os.listdir(out / 'ann_dir' / 'train')) == [
        'area1.tif', 'area3.tif']
    manifest = json.loads((out / 'conversion.json').read_text())
    assert manifest['split'] == 'custom'
    assert manifest['split_table']['test'] == ['area2']
