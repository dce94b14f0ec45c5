"""LoadMultiModalImageFromFiles: formats, dtypes, band selection, elevation
normalisation and the errors it raises."""
import os.path as osp

import cv2
import numpy as np
import pytest
import tifffile

import mmrsfusion  # noqa: F401  (registers the transforms)
from mmseg.registry import TRANSFORMS
from mmrsfusion.datasets.transforms import LoadMultiModalImageFromFiles
from mmrsfusion.io import normalize_elevation, read_raster

RGB_DSM = [
    dict(name='rgb', channels=3, kind='optical'),
    dict(name='dsm', channels=1, kind='elevation'),
]


def _tif(path, arr, **kwargs):
    tifffile.imwrite(str(path), arr, **kwargs)
    return str(path)


def _tif_bands(path, arr):
    """A pixel-interleaved multi-band TIFF as the converters write it."""
    extra = ['unspecified'] * (arr.shape[-1] - 3)
    return _tif(path, arr, photometric='rgb', extrasamples=extra)


def _rgb(h=12, w=10, dtype=np.uint8, seed=0, bands=3):
    rng = np.random.default_rng(seed)
    high = 255 if dtype == np.uint8 else 4000
    return rng.integers(0, high + 1, (h, w, bands)).astype(dtype)


def _dsm(h=12, w=10, seed=1):
    rng = np.random.default_rng(seed)
    return (250 + 20 * rng.random((h, w))).astype(np.float32)


def _load(spec, **paths):
    t = LoadMultiModalImageFromFiles(spec)
    return t(dict(paths))


def test_registered_and_stacks_optical_then_dsm(tmp_path):
    rgb, dsm = _rgb(), _dsm()
    dsm[0, 0], dsm[1, 1], dsm[2, 2] = -9999., np.nan, np.inf
    t = TRANSFORMS.build(
        dict(type='LoadMultiModalImageFromFiles', modalities=RGB_DSM))
    res = t(
        dict(
            img_path=_tif(tmp_path / 'a.tif', rgb, photometric='rgb'),
            dsm_path=_tif(tmp_path / 'd.tif', dsm)))
    img = res['img']
    assert img.dtype == np.float32 and img.shape == (12, 10, 4)
    assert res['img_shape'] == (12, 10) and res['ori_shape'] == (12, 10)
    assert res['modalities'].names == ('rgb', 'dsm')
    # optical: raw values, band order of the file
    np.testing.assert_array_equal(img[..., :3], rgb.astype(np.float32))
    # DSM: min-max over the valid pixels only, no-data -> 0
    valid = np.isfinite(dsm) & (dsm != -9999.)
    lo, hi = dsm[valid].min(), dsm[valid].max()
    expected = np.where(valid, (dsm.astype(np.float64) - lo) / (hi - lo), 0)
    np.testing.assert_allclose(img[..., 3], expected, atol=1e-6)
    assert img[0, 0, 3] == 0 and img[1, 1, 3] == 0 and img[2, 2, 3] == 0
    assert img[..., 3][valid].min() == 0 and img[..., 3][valid].max() == 1


def test_uint16_optical_keeps_raw_values(tmp_path):
    """Documented choice: uint16 optical is not rescaled; the config's
    mean/std (in raw units) normalise it."""
    rgb = _rgb(dtype=np.uint16)
    rgb[0, 0] = 4000
    res = _load(
        RGB_DSM,
        img_path=_tif(tmp_path / 'a.tif', rgb, photometric='rgb'),
        dsm_path=_tif(tmp_path / 'd.tif', _dsm()))
    np.testing.assert_array_equal(res['img'][..., :3], rgb.astype(np.float32))
    assert res['img'][..., :3].max() == 4000


def test_png_and_tiff_give_the_same_band_order(tmp_path):
    rgb = _rgb()
    png = str(tmp_path / 'a.png')
    cv2.imwrite(png, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(read_raster(png), rgb)
    rgba = _rgb(bands=4)
    png4 = str(tmp_path / 'b.png')
    cv2.imwrite(png4, cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    np.testing.assert_array_equal(read_raster(png4), rgba)
    tif = _tif(tmp_path / 'a.tif', rgb, photometric='rgb')
    np.testing.assert_array_equal(read_raster(tif), rgb)


def test_band_interleaved_tiff(tmp_path):
    rgbir = _rgb(bands=4)
    planar = _tif(
        tmp_path / 'p.tif',
        np.ascontiguousarray(rgbir.transpose(2, 0, 1)),
        planarconfig='separate',
        photometric='minisblack')
    np.testing.assert_array_equal(read_raster(planar), rgbir)


def test_8bit_elevation_image_is_normalised(tmp_path):
    ndsm = np.zeros((12, 10), np.uint8)
    ndsm[:, 5:] = 200
    ndsm[0, 0] = 50
    path = str(tmp_path / 'n.png')
    cv2.imwrite(path, ndsm)
    res = _load(
        RGB_DSM,
        img_path=_tif(tmp_path / 'a.tif', _rgb(), photometric='rgb'),
        dsm_path=path)
    np.testing.assert_allclose(res['img'][..., 3], ndsm / 200., atol=1e-6)


def test_band_selection_from_spec_and_from_dataset(tmp_path):
    rgbir = _rgb(bands=4)
    img = _tif_bands(tmp_path / 'a.tif', rgbir)
    dsm = _tif(tmp_path / 'd.tif', _dsm())
    irrg = [dict(RGB_DSM[0], bands=[3, 0, 1]), RGB_DSM[1]]
    res = _load(irrg, img_path=img, dsm_path=dsm)
    np.testing.assert_array_equal(res['img'][..., :3], rgbir[...,
                                                             [3, 0, 1]])
    # the dataset's choice (data info 'bands'), e.g. PotsdamMMDataset
    t = LoadMultiModalImageFromFiles(RGB_DSM)
    res = t(dict(img_path=img, dsm_path=dsm, bands=dict(img_path=(0, 1, 2))))
    np.testing.assert_array_equal(res['img'][..., :3], rgbir[..., :3])
    # RGBIR: 4 optical channels
    spec4 = [dict(name='rgb', channels=4, kind='optical'), RGB_DSM[1]]
    res = _load(spec4, img_path=img, dsm_path=dsm)
    assert res['img'].shape[-1] == 5
    np.testing.assert_array_equal(res['img'][..., :4], rgbir)
    # spec and dataset disagree -> error naming both
    t = LoadMultiModalImageFromFiles(irrg)
    with pytest.raises(ValueError, match=r'\[3, 0, 1\].*\[0, 1, 2\]'):
        t(dict(img_path=img, dsm_path=dsm, bands=dict(img_path=(0, 1, 2))))
    with pytest.raises(ValueError, match='has 4 band'):
        _load([dict(RGB_DSM[0], bands=[0, 1, 7]), RGB_DSM[1]],
              img_path=img,
              dsm_path=dsm)


def test_extra_band_stacked_in_spec_order_raw(tmp_path):
    spec = [
        dict(name='rgb', channels=3, kind='optical'),
        dict(name='nir', channels=1, kind='band'),
        dict(name='dsm', channels=1, kind='elevation'),
    ]
    rgb, dsm = _rgb(), _dsm()
    nir = np.arange(120, dtype=np.uint16).reshape(12, 10) * 30
    res = _load(
        spec,
        img_path=_tif(tmp_path / 'a.tif', rgb, photometric='rgb'),
        nir_path=_tif(tmp_path / 'n.tif', nir),
        dsm_path=_tif(tmp_path / 'd.tif', dsm))
    img = res['img']
    assert img.shape == (12, 10, 5)
    np.testing.assert_array_equal(img[..., 3], nir.astype(np.float32))
    assert img[..., 4].min() == 0 and img[..., 4].max() == 1
    assert set(res['modality_paths']) == {'rgb', 'nir', 'dsm'}


def test_path_keys_override(tmp_path):
    t = LoadMultiModalImageFromFiles(RGB_DSM, path_keys=dict(dsm='ndsm_path'))
    res = t(
        dict(
            img_path=_tif(tmp_path / 'a.tif', _rgb(), photometric='rgb'),
            ndsm_path=_tif(tmp_path / 'd.tif', _dsm())))
    assert res['modality_paths']['dsm'].endswith('d.tif')
    with pytest.raises(ValueError, match='unknown modalities'):
        LoadMultiModalImageFromFiles(RGB_DSM, path_keys=dict(sar='x'))


def test_zscore_flat_and_custom_nodata():
    dsm = np.array([[1., 2., 3.], [4., -32768., np.nan]], np.float32)[...,
                                                                       None]
    out = normalize_elevation(dsm, 'zscore', nodata=(-32768., ))
    valid = np.array([1., 2., 3., 4.])
    z = (valid - valid.mean()) / valid.std()
    np.testing.assert_allclose(out[0, :, 0], z[:3], atol=1e-6)
    np.testing.assert_allclose(out[1, 0, 0], z[3], atol=1e-6)
    assert out[1, 1, 0] == 0 and out[1, 2, 0] == 0
    # -32768 is data unless declared no-data
    out = normalize_elevation(dsm, 'minmax', nodata=())
    assert out[1, 1, 0] == 0 and out[1, 0, 0] == 1
    assert out[0, 0, 0] > 0.99  # 1 is near the top of [-32768, 4]
    # flat tile -> 0 (min-max and z-score), no-data still 0
    flat = np.full((4, 4, 1), 7., np.float32)
    flat[0, 0] = -9999.
    for mode in ('minmax', 'zscore'):
        np.testing.assert_array_equal(normalize_elevation(flat, mode), 0)
    # no normalisation: values kept, no-data mapped to 0
    out = normalize_elevation(flat, None)
    assert out[0, 0, 0] == 0 and out[1, 1, 0] == 7
    # a given range (whole tile of a clip) replaces the array's own
    out = normalize_elevation(dsm, 'minmax', (-32768., ), value_range=(0, 8))
    np.testing.assert_allclose(out[0, :, 0], [1 / 8, 2 / 8, 3 / 8])
    with pytest.raises(ValueError, match='elevation_norm'):
        normalize_elevation(dsm, 'log')


def test_gdal_nodata_tag_is_honoured(tmp_path):
    dsm = _dsm()
    dsm[3, 4] = -32767.
    path = _tif(tmp_path / 'd.tif', dsm, extratags=[(42113, 's', 0,
                                                     '-32767', True)])
    assert read_raster(path, with_nodata=True)[1] == -32767.
    res = _load(
        RGB_DSM,
        img_path=_tif(tmp_path / 'a.tif', _rgb(), photometric='rgb'),
        dsm_path=path)
    valid = dsm != -32767.
    assert res['img'][3, 4, 3] == 0
    assert res['img'][..., 3][valid].min() == 0
    assert res['img'][..., 3][valid].max() == 1


def test_zscore_option_in_transform(tmp_path):
    dsm = _dsm()
    t = LoadMultiModalImageFromFiles(
        [RGB_DSM[0], dict(RGB_DSM[1], norm='zscore')])
    res = t(
        dict(
            img_path=_tif(tmp_path / 'a.tif', _rgb(), photometric='rgb'),
            dsm_path=_tif(tmp_path / 'd.tif', dsm)))
    assert abs(res['img'][..., 3].mean()) < 1e-5
    assert abs(res['img'][..., 3].std() - 1) < 1e-4


def test_elevation_range_from_data_info(tmp_path):
    dsm = _dsm()
    t = LoadMultiModalImageFromFiles(RGB_DSM)
    res = t(
        dict(
            img_path=_tif(tmp_path / 'a.tif', _rgb(), photometric='rgb'),
            dsm_path=_tif(tmp_path / 'd.tif', dsm),
            elevation_range=dict(dsm_path=(200., 300.))))
    np.testing.assert_allclose(res['img'][..., 3], (dsm - 200.) / 100.,
                               atol=1e-6)


def test_error_missing_modality_file(tmp_path):
    img = _tif(tmp_path / 'a.tif', _rgb(), photometric='rgb')
    missing = str(tmp_path / 'nope.tif')
    with pytest.raises(FileNotFoundError) as e:
        _load(RGB_DSM, img_path=img, dsm_path=missing)
    assert 'nope.tif' in str(e.value) and "'dsm'" in str(e.value)
    with pytest.raises(FileNotFoundError, match="no 'dsm_path'"):
        _load(RGB_DSM, img_path=img)


def test_error_mismatched_sizes_names_both_files(tmp_path):
    img = _tif(tmp_path / 'top.tif', _rgb(12, 10), photometric='rgb')
    dsm = _tif(tmp_path / 'dsm.tif', _dsm(12, 11))
    with pytest.raises(ValueError) as e:
        _load(RGB_DSM, img_path=img, dsm_path=dsm)
    msg = str(e.value)
    assert 'top.tif' in msg and 'dsm.tif' in msg
    assert '12x10' in msg and '12x11' in msg


def test_error_wrong_channel_count(tmp_path):
    img = _tif_bands(tmp_path / 'rgbir.tif', _rgb(bands=4))
    dsm = _tif(tmp_path / 'd.tif', _dsm())
    with pytest.raises(ValueError) as e:
        _load(RGB_DSM, img_path=img, dsm_path=dsm)
    assert 'rgbir.tif' in str(e.value) and 'expects 3 channel' in str(
        e.value) and 'got 4' in str(e.value)
    dsm2 = _tif(tmp_path / 'd2.tif', np.stack([_dsm(), _dsm()], -1),
                photometric='minisblack', planarconfig='contig')
    with pytest.raises(ValueError, match="d2.tif: modality 'dsm' expects 1"):
        _load(RGB_DSM, img_path=_tif(tmp_path / 'a.tif', _rgb(),
                                     photometric='rgb'), dsm_path=dsm2)


def test_error_all_nodata_tile(tmp_path):
    img = _tif(tmp_path / 'a.tif', _rgb(), photometric='rgb')
    dsm = np.full((12, 10), -9999., np.float32)
    dsm[0, :3] = np.nan
    path = _tif(tmp_path / 'empty_dsm.tif', dsm)
    with pytest.raises(ValueError, match='empty_dsm.tif.*entirely no-data'):
        _load(RGB_DSM, img_path=img, dsm_path=path)


def test_error_undecodable_file(tmp_path):
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not an image')
    with pytest.raises(ValueError, match='bad.png'):
        read_raster(str(bad))
    assert osp.isfile(str(bad))
