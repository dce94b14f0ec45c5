"""SceneDataset's random windows: drawn with probability proportional to
their AOI pixels (checked against the exact distribution over every window
origin), from tables whose size does not grow with the scenes."""
import csv
import json
import os
import os.path as osp

import numpy as np
import pytest

rasterio = pytest.importorskip('rasterio')
stats = pytest.importorskip('scipy.stats')

from mmengine.registry import init_default_scope  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402

import mmrsfusion  # noqa: E402,F401
from mmrsfusion.datasets import SceneDataset  # noqa: E402
from mmrsfusion.datasets import scene_dataset  # noqa: E402

SPEC = [dict(name='rgb', channels=3, kind='optical', mean=[0.] * 3,
             std=[1.] * 3)]
CRS = 'EPSG:32632'
#: 1 m pixels; scene k lies 100 km east of scene k - 1.
ORIGIN = (400000.0, 5000000.0)
#: A small p-value: a seeded draw that gives less is not the distribution
#: (each test also shows a wrong distribution rejected at this level).
P_MIN = 1e-3


def write_scene(root, k, height, width, aoi=None):
    """Scene ``scene_k``: a sparse tiled RGB GeoTIFF (no tile written: a
    few KB whatever its size), one label polygon covering it, and the AOI
    ``aoi`` (polygons as rings of (x, y) pixel coordinates; None: none).
    Returns its scene list row."""
    folder = osp.join(str(root), f'scene_{k}')
    west, north = ORIGIN[0] + 1e5 * k, ORIGIN[1]
    transform = from_origin(west, north, 1.0, 1.0)
    os.makedirs(folder, exist_ok=True)
    with rasterio.open(osp.join(folder, 'rgb.tif'), 'w', driver='GTiff',
                       height=height, width=width, count=3, dtype='uint8',
                       crs=CRS, transform=transform, tiled=True,
                       blockxsize=256, blockysize=256, compress='deflate',
                       sparse_ok=True):
        pass

    def geojson(name, rings, props):
        features = [dict(type='Feature', properties=props, geometry=dict(
            type='Polygon', coordinates=[[
                [west + x, north - y] for x, y in ring + ring[:1]]]))
            for ring in rings]
        with open(osp.join(folder, name), 'w') as f:
            json.dump(dict(type='FeatureCollection', features=features,
                           crs=dict(type='name',
                                    properties=dict(name=CRS))), f)
        return f'scene_{k}/{name}'

    row = dict(name=f'scene_{k}', rgb=f'scene_{k}/rgb.tif',
               labels=geojson('labels.geojson', [[
                   (0, 0), (width, 0), (width, height), (0, height)]],
                   {'class': 1}), aoi='', split='train')
    if aoi is not None:
        row['aoi'] = geojson('aoi.geojson', aoi, {})
    return row


def write_list(root, rows, name='scenes.csv'):
    with open(osp.join(str(root), name), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return name


def make(root, crop, ann_file='scenes.csv', **kwargs):
    init_default_scope('mmseg')
    return SceneDataset(ann_file=ann_file, data_root=str(root),
                        modalities=SPEC, crop_size=crop, pipeline=[],
                        metainfo=dict(classes=('a', 'b')),
                        samples_per_epoch=4, **kwargs)


def rect(y0, y1, x0, x1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def window_weights(mask, h, w):
    """(H - h + 1, W - w + 1): AOI pixels of the window at each origin."""
    t = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return t[h:, w:] - t[:-h, w:] - t[h:, :-w] + t[:-h, :-w]


def chi2_p(counts, probs):
    """p-value of ``counts`` drawn from ``probs`` (bins of expected count
    under 5 merged into one)."""
    counts, expected = np.asarray(counts, float), np.asarray(probs) * sum(
        counts)
    small = expected < 5
    counts = np.append(counts[~small], counts[small].sum())
    expected = np.append(expected[~small], expected[small].sum())
    keep = expected > 0
    return stats.chisquare(counts[keep], expected[keep]).pvalue


def all_bytes(obj) -> int:
    """Bytes of every numpy array in ``obj`` (dicts, lists, tuples)."""
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(all_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(all_bytes(v) for v in obj)
    return 0


def test_sampling_tables_bounded(tmp_path):
    """The numpy arrays the dataset holds (its sampling tables among them)
    stay under SAMPLING_CELLS * 8 bytes (and a little) for a scene at the
    cap and for one 64 times its area: they do not grow with the scene;
    both still draw windows inside their AOI."""
    held = {}
    for side in (1024, 8192):
        root = tmp_path / str(side)
        aoi = [[(side * 0.1, side * 0.1), (side * 0.9, side * 0.2),
                (side * 0.6, side * 0.95)]]
        write_list(root, [write_scene(root, 0, side, side, aoi)])
        ds = make(root, (128, 128))
        held[side] = all_bytes(ds.__dict__)
        rng = np.random.RandomState(0)
        for _ in range(5):
            i, span = ds.draw_window(rng)
            assert ds._aoi(ds.scenes[i], span).any()
    cap = scene_dataset.SAMPLING_CELLS * 8 + 2**16
    assert held[1024] <= cap and held[8192] <= cap, held
    assert held[8192] < 1.1 * held[1024], held


def test_coarse_cell_bounds_cells():
    """coarse_cell: the cells over all scenes stay under the cap, with
    the smallest side that does; one cell a scene at least."""
    for shapes, cap in (([(96, 120)], 64), ([(100000, 100000)], 2**20),
                        ([(5000, 7000), (300, 200), (20000, 100)], 4096),
                        ([(10, 10)] * 5, 3)):
        cell = scene_dataset.coarse_cell(shapes, cap)

        def cells(c):
            return sum(-(-h // c) * -(-w // c) for h, w in shapes)

        assert cells(cell) <= max(cap, len(shapes))
        assert cell == 1 or cells(cell - 1) > cap
    assert scene_dataset.coarse_cell([(1024, 1024)]) == 1
    assert scene_dataset.coarse_cell([(8192, 8192)]) == 8


#: Scene and window of the distribution test; the AOI: an L (a strip along
#: the west edge, another along the south), reaching past the scene's
#: edges, its inner corner off the pixel grid.
H, W, CROP = 96, 120, (32, 32)
L_AOI = [[(-5, -5), (30.4, -5), (30.4, 69.6), (125, 69.6), (125, 101),
          (-5, 101)]]


@pytest.mark.parametrize('cells', [None, 64])
def test_windows_drawn_by_aoi_pixels(tmp_path, monkeypatch, cells):
    """Over every window origin, drawn windows follow the AOI-pixel
    weighting (chi-square over 4 x 4 blocks of origins, and over the
    origins on the scene's edges); never a window without AOI pixel; edge
    origins (0 and H - h, W - w) drawn; the same draws for the same seed.
    ``cells``: the cap of the coarse grid (64: cells of 14 px, cut at the
    scene's edges; None: the default, cells of one pixel)."""
    if cells is not None:
        monkeypatch.setattr(scene_dataset, 'SAMPLING_CELLS', cells)
    write_list(tmp_path, [write_scene(tmp_path, 0, H, W, L_AOI)])
    ds = make(tmp_path, CROP)
    assert ds._draw['cell'] == (1 if cells is None else 14)
    mask = ds._aoi(ds.scenes[0], (0, H, 0, W)).copy()
    assert mask[:, 0].all() and mask[-1].all() and not mask[0, -1]
    weights = window_weights(mask, *CROP)
    rng = np.random.RandomState(0)
    origins = []
    for _ in range(3000):
        i, (y0, y1, x0, x1) = ds.draw_window(rng)
        assert i == 0 and (y1 - y0, x1 - x0) == CROP
        assert weights[y0, x0] > 0  # the window holds AOI pixels
        origins.append((y0, x0))
    ys, xs = np.array(origins).T
    counts = np.zeros(weights.shape, int)
    np.add.at(counts, (ys, xs), 1)
    by_block = [np.array_split(b, 4, 1) for b in np.array_split(counts, 4)]
    exact = weights / weights.sum()
    ex_block = [np.array_split(b, 4, 1) for b in np.array_split(exact, 4)]
    observed = [c.sum() for row in by_block for c in row]
    expected = [e.sum() for row in ex_block for e in row]
    assert chi2_p(observed, expected) > P_MIN
    # edges: each of the 4 edge rows / columns of origins
    edges = [(0, slice(None)), (-1, slice(None)),
             (slice(None), 0), (slice(None), -1)]
    observed = [counts[e].sum() for e in edges] + [
        len(origins) - sum(counts[e].sum() for e in edges)]
    expected = [exact[e].sum() for e in edges]
    assert chi2_p(observed, expected + [1 - sum(expected)]) > P_MIN
    assert {0, H - CROP[0]} <= set(ys) and {0, W - CROP[1]} <= set(xs)
    # the test can fail: uniform over windows with AOI pixels is rejected
    uniform = (weights > 0) / (weights > 0).sum()
    un_block = [np.array_split(b, 4, 1) for b in np.array_split(uniform, 4)]
    assert chi2_p([c.sum() for row in by_block for c in row],
                  [u.sum() for row in un_block for u in row]) < P_MIN
    again = np.random.RandomState(0)
    assert [ds.draw_window(again)[1][::2] for _ in range(50)] == \
        origins[:50]


@pytest.mark.parametrize('cells', [None, 64])
def test_scenes_drawn_by_aoi_area(tmp_path, monkeypatch, cells):
    """Scenes of different sizes are drawn in proportion to their AOI
    areas (AOIs a window's side from the edges: each AOI pixel in h * w
    windows); a wrong weighting (by scene area) is rejected."""
    if cells is not None:
        monkeypatch.setattr(scene_dataset, 'SAMPLING_CELLS', cells)
    shapes = [(96, 96), (64, 160), (128, 112)]
    aois = [rect(20, 40, 20, 40), rect(16, 36, 30, 70),
            rect(30, 70, 20, 60)]
    areas = np.array([400, 800, 1600], float)
    write_list(tmp_path, [write_scene(tmp_path, k, h, w, [a])
                          for k, ((h, w), a) in enumerate(zip(shapes, aois))])
    ds = make(tmp_path, (16, 16))
    rng = np.random.RandomState(1)
    counts = np.bincount([ds.draw_window(rng)[0] for _ in range(1500)],
                         minlength=3)
    assert chi2_p(counts, areas / areas.sum()) > P_MIN
    sizes = np.array([h * w for h, w in shapes], float)
    assert chi2_p(counts, sizes / sizes.sum()) < P_MIN


def test_aoi_outside_every_scene_named(tmp_path):
    """An AOI that touches no scene is refused at start, naming the scene
    list; one that touches cells but holds no pixel centre fails the draw,
    naming it too."""
    write_list(tmp_path, [write_scene(tmp_path, 0, 64, 64,
                                      [rect(100, 120, 100, 120)])])
    with pytest.raises(ValueError, match=r'scenes.csv: no window .*touches'):
        make(tmp_path, (16, 16))
    name = write_list(tmp_path, [write_scene(
        tmp_path, 1, 64, 64, [rect(10.1, 10.4, 10.1, 10.4)])], 'sliver.csv')
    ds = make(tmp_path, (16, 16), ann_file=name)
    with pytest.raises(ValueError, match=r'sliver.csv: 50 random windows'):
        ds.draw_window(np.random.RandomState(0), tries=50)
