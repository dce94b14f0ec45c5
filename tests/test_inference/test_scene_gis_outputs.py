"""The scene outputs as a GIS reads them: Cloud-Optimised GeoTIFFs with
overviews, class names and palette, and the class polygons GeoPackage.

What GDAL reads back is checked with ``gdalinfo -json`` run through the
GDAL library that rasterio bundles (:func:`gdalinfo`: GDALInfo via ctypes,
the same answer as the ``gdalinfo`` command of that GDAL), and the COG
layout additionally by walking the TIFF directories in Python
(:func:`tiff_directories`). The writer (:class:`SceneOutputs`) is driven
directly with a synthetic class map, block by block as predict_scene does;
one test runs the whole tool."""
import ctypes
import json
import os
import os.path as osp
import struct
import subprocess
import sys

import numpy as np
import pytest

rasterio = pytest.importorskip('rasterio')
shapely = pytest.importorskip('shapely')
pyogrio = pytest.importorskip('pyogrio')
from rasterio import features  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402

from mmrsfusion.inference.class_polygons import LAYER  # noqa: E402
from mmrsfusion.inference.scene_output import (  # noqa: E402
    NODATA, SceneOutputs, class_names_sidecar)
# the demo model's fixture and scene helpers (test files are imported by
# their basename: setup.cfg's pytest section)
from test_predict_scene import (CONFIG, ROOT, _env, checkpoint,  # noqa
                                synth, write)

CLASSES = ['impervious', 'building', 'low vegetation', 'tree', 'car',
           'clutter & background']
PALETTE = [[255, 255, 255], [0, 0, 255], [0, 255, 255], [0, 255, 0],
           [255, 255, 0], [255, 0, 0]]
TRANSFORM = from_origin(366000.0, 5808000.0, 0.25, 0.25)
H, W, BLOCK = 600, 520, 128


def class_map(seed=0):
    """(H, W) uint8: blobs of the 6 classes (smooth noise: curved borders,
    holes, islands down to single pixels), no-data in a left strip and a
    corner."""
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    noise = ndimage.zoom(rng.random((H // 24 + 2, W // 24 + 2,
                                     len(CLASSES))), (24, 24, 1),
                         order=1)[:H, :W]
    noise += 0.02 * rng.random((H, W, len(CLASSES)))  # ragged borders
    out = noise.argmax(-1).astype(np.uint8)
    out[:, :37] = NODATA
    out[-50:, -70:] = NODATA
    return out


def write_scene(folder, arr, probs=True, **kwargs):
    """Write ``arr`` through :class:`SceneOutputs` in blocks of
    :data:`BLOCK` (probabilities and confidence too) and finish."""
    paths = dict(out=str(folder / 'pred.tif'))
    if probs:
        paths.update(probs=str(folder / 'probs.tif'),
                     conf=str(folder / 'conf.tif'))
    outputs = SceneOutputs(
        paths['out'], dict(crs='EPSG:32632', transform=TRANSFORM, height=H,
                           width=W), CLASSES, PALETTE, BLOCK, {},
        probs=paths.get('probs'), conf=paths.get('conf'), **kwargs)
    rng = np.random.default_rng(1)
    index = 0
    for y in range(0, H, BLOCK):
        for x in range(0, W, BLOCK):
            block = arr[y:y + BLOCK, x:x + BLOCK]
            p = rng.integers(0, 255, (len(CLASSES), ) + block.shape,
                             dtype=np.uint8)
            p[:, block == NODATA] = NODATA
            outputs.write(index, (y, y + block.shape[0], x,
                                  x + block.shape[1]), block, p)
            index += 1
    outputs.finish()
    return paths


def gdalinfo(path, *options):
    """``gdalinfo -json [options] path`` as a dict, computed by GDALInfo of
    the GDAL library that rasterio loaded (category names and RATs, which
    rasterio does not expose, included)."""
    with open('/proc/self/maps') as f:
        # pyogrio's wheel loads a GDAL of its own
        libs = {line.split()[-1] for line in f
                if 'libgdal' in line and 'pyogrio' not in line}
    assert len(libs) == 1, f'rasterio\'s GDAL library: found {libs}'
    lib = ctypes.CDLL(libs.pop())
    lib.GDALOpen.restype = ctypes.c_void_p
    lib.GDALOpen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.GDALInfoOptionsNew.restype = ctypes.c_void_p
    lib.GDALInfoOptionsNew.argtypes = [
        ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p]
    lib.GDALInfo.restype = ctypes.c_void_p
    lib.GDALInfo.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.GDALInfoOptionsFree.argtypes = [ctypes.c_void_p]
    lib.GDALClose.argtypes = [ctypes.c_void_p]
    lib.VSIFree.argtypes = [ctypes.c_void_p]
    lib.GDALAllRegister()
    argv = [a.encode() for a in ('-json', ) + options] + [None]
    opts = lib.GDALInfoOptionsNew((ctypes.c_char_p * len(argv))(*argv), None)
    ds = lib.GDALOpen(str(path).encode(), 0)
    assert ds, f'GDAL cannot open {path}'
    try:
        text = lib.GDALInfo(ds, opts)
        info = json.loads(ctypes.string_at(text).decode())
        lib.VSIFree(text)
    finally:
        lib.GDALClose(ds)
        lib.GDALInfoOptionsFree(opts)
    return info


def tiff_directories(path):
    """The image file directories of a (Big)TIFF in file order of their
    headers: for each, its offset, size (width, height) and the offsets of
    its tiles' data (tags 324 TileOffsets / 273 StripOffsets)."""
    with open(path, 'rb') as f:
        data = f.read()
    order = {b'II': '<', b'MM': '>'}[data[:2]]
    big = struct.unpack(order + 'H', data[2:4])[0] == 43
    fmt = dict(count='Q' if big else 'H', entry=20 if big else 12,
               off='Q' if big else 'I')
    offset = struct.unpack(order + fmt['off'],
                           data[8:16] if big else data[4:8])[0]
    sizes = {3: 2, 4: 4, 16: 8}  # SHORT, LONG, LONG8
    dirs = []
    while offset:
        n_size = 8 if big else 2
        (count, ) = struct.unpack(order + fmt['count'],
                                  data[offset:offset + n_size])
        tags = {}
        for i in range(count):
            e = offset + n_size + i * fmt['entry']
            tag, typ = struct.unpack(order + 'HH', data[e:e + 4])
            if big:
                (num, ) = struct.unpack(order + 'Q', data[e + 4:e + 12])
                field = data[e + 12:e + 20]
            else:
                (num, ) = struct.unpack(order + 'I', data[e + 4:e + 8])
                field = data[e + 8:e + 12]
            if typ not in sizes:
                continue
            size = sizes[typ] * num
            if size > len(field):
                (ptr, ) = struct.unpack(order + fmt['off'], field)
                field = data[ptr:ptr + size]
            code = {2: 'H', 4: 'I', 8: 'Q'}[sizes[typ]]
            tags[tag] = struct.unpack(order + code * num, field[:size])
        dirs.append(dict(offset=offset, size=(tags[256][0], tags[257][0]),
                         tiles=tags.get(324) or tags.get(273)))
        e = offset + n_size + count * fmt['entry']
        (offset, ) = struct.unpack(order + fmt['off'],
                                   data[e:e + (8 if big else 4)])
    return dirs


def test_class_map_is_a_cog_with_overviews_names_and_palette(tmp_path):
    arr = class_map()
    paths = write_scene(tmp_path, arr)
    info = gdalinfo(paths['out'])
    assert info['driverShortName'] == 'GTiff'
    assert info['metadata']['IMAGE_STRUCTURE']['LAYOUT'] == 'COG'
    assert info['metadata']['IMAGE_STRUCTURE']['COMPRESSION'] == 'DEFLATE'
    (band, ) = info['bands']
    assert band['block'] == [BLOCK, BLOCK]
    assert band['noDataValue'] == NODATA
    assert band['colorInterpretation'] == 'Palette'
    assert band['categories'] == CLASSES  # QGIS's legend labels
    assert [e[:3] for e in band['colorTable']['entries'][:6]] == PALETTE
    # overviews halve down to one tile
    assert [o['size'] for o in band['overviews']] == [[260, 300],
                                                      [130, 150], [65, 75]]
    assert json.loads(info['metadata']['']['classes']) == CLASSES
    # the COG layout itself: every directory before any image data, the
    # smallest overview's tiles first, the full resolution's last
    dirs = tiff_directories(paths['out'])
    assert [d['size'] for d in dirs] == [(520, 600), (260, 300),
                                         (130, 150), (65, 75)]
    starts = [min(d['tiles']) for d in dirs]
    ends = [max(d['tiles']) for d in dirs]
    assert max(d['offset'] for d in dirs) < min(starts)
    assert all(ends[i + 1] < starts[i] for i in range(len(dirs) - 1))
    with rasterio.open(paths['out']) as src:
        assert np.array_equal(src.read(1), arr)
        assert src.overviews(1) == [2, 4, 8]
        # mode resampling: an overview pixel is a class, never a blend;
        # no-data only where the whole 2x2 was no-data
        ov = src.read(1, out_shape=(300, 260))
        quads = arr.reshape(300, 2, 260, 2).transpose(0, 2, 1, 3)
        quads = quads.reshape(300, 260, 4)
        has = (quads == ov[..., None]).any(-1)
        assert has.all()
        assert np.array_equal(ov == NODATA, (quads == NODATA).all(-1))
    assert osp.isfile(class_names_sidecar(paths['out']))
    assert not [p for p in os.listdir(tmp_path) if 'part' in p]


def test_probabilities_are_cogs_with_average_overviews(tmp_path):
    paths = write_scene(tmp_path, class_map(1))
    for key, count in (('probs', len(CLASSES)), ('conf', 1)):
        info = gdalinfo(paths[key])
        assert info['metadata']['IMAGE_STRUCTURE']['LAYOUT'] == 'COG'
        assert len(info['bands']) == count
        assert all(len(b['overviews']) == 3 for b in info['bands'])
        assert all(b['scale'] == pytest.approx(1 / 254)
                   for b in info['bands'])
    with rasterio.open(paths['probs']) as src:
        assert src.descriptions == tuple(CLASSES)
        full = src.read(1).astype(float)
        ov = src.read(1, out_shape=(300, 260)).astype(float)
    quads = full.reshape(300, 2, 260, 2)
    valid = (quads != NODATA)
    mean = np.where(valid, quads, 0).sum((1, 3)) / np.maximum(
        valid.sum((1, 3)), 1)
    some = valid.any((1, 3))
    # the mean of the valid pixels (GDAL rounds it to the nearest integer)
    assert np.abs(ov[some] - mean[some]).max() <= 0.5 + 1e-9
    assert (ov[~some] == NODATA).all()


def test_vector_polygons_cover_exactly_the_class_pixels(tmp_path):
    arr = class_map(2)
    vector = str(tmp_path / 'classes.gpkg')
    paths = write_scene(tmp_path, arr, probs=False, vector=vector)
    info = pyogrio.read_info(vector, layer=LAYER)
    assert pyogrio.list_layers(vector)[:, 0].tolist() == [LAYER]
    assert info['geometry_type'] == 'Polygon'
    assert list(info['fields']) == ['class', 'name']
    assert info['crs'] == 'EPSG:32632'
    _, _, wkb, fields = pyogrio.raw.read(vector, layer=LAYER)
    geoms = shapely.from_wkb(wkb)
    values, names = fields
    assert info['features'] == len(geoms) > 100
    assert set(values) == set(range(len(CLASSES)))
    assert [CLASSES[v] for v in values] == list(names)
    assert shapely.is_valid(geoms).all()
    # rasterised back (pixel centres), the polygons give the map exactly:
    # every class pixel in exactly one polygon of its class, no-data in none
    back = features.rasterize(zip(geoms, values), out_shape=(H, W),
                              transform=TRANSFORM, fill=NODATA,
                              dtype='uint8')
    assert np.array_equal(back, arr)
    hits = features.rasterize(((g, 1) for g in geoms), out_shape=(H, W),
                              transform=TRANSFORM, merge_alg=features.
                              MergeAlg.add, dtype='uint8')
    assert np.array_equal(hits, (arr != NODATA).astype(np.uint8))
    # one feature per 4-connected region of a class
    from scipy import ndimage
    regions = sum(ndimage.label(arr == c)[1] for c in range(len(CLASSES)))
    assert len(geoms) == regions
    with rasterio.open(paths['out']) as src:
        assert np.array_equal(src.read(1), arr)


def test_simplified_polygons_stay_edge_to_edge(tmp_path):
    """Simplified with a tolerance of 2 pixels: far fewer vertices, still a
    coverage (no gaps, no overlaps, the data area unchanged) and within a
    few per cent of the pixels' classes."""
    arr = class_map(3)
    exact, simple = str(tmp_path / 'exact.gpkg'), str(tmp_path / 's.gpkg')
    for folder in 'ab':
        os.makedirs(tmp_path / folder)
    write_scene(tmp_path / 'a', arr, probs=False, vector=exact)
    write_scene(tmp_path / 'b', arr, probs=False, vector=simple,
                simplify=2 * TRANSFORM.a)
    layers = {}
    for name, path in (('exact', exact), ('simple', simple)):
        _, _, wkb, (values, _) = pyogrio.raw.read(path, layer=LAYER)
        layers[name] = (shapely.from_wkb(wkb), values)
    (g0, v0), (g1, v1) = layers['exact'], layers['simple']
    assert np.array_equal(v0, v1)
    assert shapely.get_num_coordinates(g1).sum() < 0.6 * \
        shapely.get_num_coordinates(g0).sum()
    assert shapely.is_valid(g1).all()
    assert shapely.coverage_is_valid(g1)  # edge-matched, no overlaps
    pixel_area = TRANSFORM.a * TRANSFORM.a
    assert shapely.area(g1).sum() == pytest.approx(
        (arr != NODATA).sum() * pixel_area, rel=0.01)
    back = features.rasterize(zip(g1, v1), out_shape=(H, W),
                              transform=TRANSFORM, fill=NODATA,
                              dtype='uint8')
    assert 0.9 < (back == arr).mean() < 1


def test_bad_vector_options_named(tmp_path):
    for kwargs, match in [
        (dict(simplify=1.0), '--simplify: .* with --vector'),
        (dict(vector=str(tmp_path / 'v.gpkg'), simplify=-1),
         '--simplify: expected a tolerance >= 0'),
    ]:
        with pytest.raises(ValueError, match=match):
            write_scene(tmp_path, class_map(), probs=False, **kwargs)
    assert not os.listdir(tmp_path)


def test_interrupted_finish_leaves_no_final_file_and_resumes(tmp_path,
                                                            monkeypatch):
    """A failure while writing the polygons (the last step before the
    renaming) leaves no output under a final name and the blocks on disk;
    the resumed writer finishes everything."""
    from mmrsfusion.inference import scene_output
    arr = class_map(4)
    vector = str(tmp_path / 'classes.gpkg')

    def fail(*args, **kwargs):
        raise OSError('disk full')

    monkeypatch.setattr(scene_output, 'write_class_polygons', fail)
    with pytest.raises(OSError, match='disk full'):
        write_scene(tmp_path, arr, vector=vector)
    left = sorted(os.listdir(tmp_path))
    assert not [p for p in left if not ('.part' in p)], left
    monkeypatch.undo()
    outputs = SceneOutputs(
        str(tmp_path / 'pred.tif'), dict(crs='EPSG:32632',
                                         transform=TRANSFORM, height=H,
                                         width=W), CLASSES, PALETTE, BLOCK,
        {}, probs=str(tmp_path / 'probs.tif'), conf=str(tmp_path /
                                                        'conf.tif'),
        resume=True, vector=vector)
    assert len(outputs.done) == 5 * 5
    outputs.finish()
    assert sorted(os.listdir(tmp_path)) == [
        'classes.gpkg', 'conf.tif', 'pred.tif', 'pred.tif.aux.xml',
        'probs.tif']
    assert gdalinfo(tmp_path / 'pred.tif')['bands'][0]['categories'] == \
        CLASSES
    with rasterio.open(tmp_path / 'pred.tif') as src:
        assert np.array_equal(src.read(1), arr)


def test_predict_scene_cli_writes_cog_names_and_polygons(checkpoint,
                                                         tmp_path):
    """tools/predict_scene.py --vector: the class map is a COG whose GDAL
    categories are the model's classes (ISPRS's, from the demo config's
    dataset), and the GeoPackage's polygons rasterise back to it."""
    from mmrsfusion.datasets.isprs import ISPRS_CLASSES
    rgb, dsm = synth(200, 180, seed=21)
    out, vector = str(tmp_path / 'pred.tif'), str(tmp_path / 'pred.gpkg')
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'predict_scene.py'),
           CONFIG, checkpoint,
           '--input', 'rgb=' + write(tmp_path / 'rgb.tif', rgb),
           '--input', 'dsm=' + write(tmp_path / 'dsm.tif', dsm,
                                     nodata=-9999.),
           '-o', out, '--vector', vector, '--block-size', '64',
           '--no-progress', '--cfg-options',
           'model.backbone.frozen_checkpoint=None',
           'model.test_cfg.crop_size=(64,64)',
           'model.test_cfg.stride=(40,40)']
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    info = gdalinfo(out)
    assert info['metadata']['IMAGE_STRUCTURE']['LAYOUT'] == 'COG'
    band = info['bands'][0]
    assert band['categories'] == list(ISPRS_CLASSES)
    assert len(band['overviews']) == 2  # 100x90 and 50x45: one 64 tile
    with rasterio.open(out) as src:
        pred, transform = src.read(1), src.transform
    _, _, wkb, (values, names) = pyogrio.raw.read(vector, layer=LAYER)
    back = features.rasterize(zip(shapely.from_wkb(wkb), values),
                              out_shape=pred.shape, transform=transform,
                              fill=NODATA, dtype='uint8')
    assert len(np.unique(pred)) > 1 and np.array_equal(back, pred)
    assert list(names) == [ISPRS_CLASSES[v] for v in values]
    # every output is its own file: a second run is refused, naming it
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 1 and 'pred.tif exists' in proc.stderr

