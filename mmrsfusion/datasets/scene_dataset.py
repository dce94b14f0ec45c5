"""Windows of georeferenced scenes: rasters per modality on any grid, labels
as a class raster or polygons, an optional area of interest."""
import csv
import json
import os
import os.path as osp
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from mmseg.registry import DATASETS
from mmrsfusion.io import normalize_elevation
from mmrsfusion.io.gdal_env import GDAL_CACHE, gdal_env
from mmrsfusion.io.vector_polygons import Span, VectorPolygons
from mmrsfusion.utils import ModalitySpec
from .multimodal_dataset import MultiModalSegDataset
from .transforms.run_pipeline import run_pipeline

#: Columns of a scene list besides the modality names.
SCENE_COLUMNS = ('name', 'labels', 'aoi', 'split')
#: Open scenes kept per process (file handles).
OPEN_SCENES = 8
#: GDAL's raster block cache while reading, MiB (``gdal_cache_mb``).
GDAL_CACHE_MB = GDAL_CACHE // 2**20
#: Most cells of the coarse grid that random windows are drawn on, over all
#: scenes: the sampling tables hold 8 bytes a cell (plus a few per scene),
#: whatever the scenes' size; the cell side grows with the scenes' area.
SAMPLING_CELLS = 2**20
#: Rejected draws in a row after which :meth:`SceneDataset.draw_window`
#: gives up (each accepted with the probability stated there).
DRAW_TRIES = 1000


def read_scene_list(path: str) -> List[dict]:
    """The rows of a scene list: CSV (header row), JSON (a list of objects,
    or ``{"scenes": [...]}``) or YAML (the same), one scene a row; empty
    cells are None."""
    ext = osp.splitext(path)[1].lower()
    if not osp.isfile(path):
        raise FileNotFoundError(f'scene list {path} does not exist')
    with open(path, newline='') as f:
        if ext == '.csv':
            rows = list(csv.DictReader(f))
        elif ext in ('.yaml', '.yml'):
            import yaml
            rows = yaml.safe_load(f)
        elif ext == '.json':
            rows = json.load(f)
        else:
            raise ValueError(f'scene list {path}: expected a .csv, .json, '
                             f'.yaml or .yml file')
    if isinstance(rows, dict):
        rows = rows.get('scenes')
    if not isinstance(rows, list) or not all(isinstance(r, dict)
                                             for r in rows):
        raise ValueError(f'scene list {path}: expected one object per scene '
                         f'(a list, or {{"scenes": [...]}})')
    return [{k.strip(): (v.strip() or None) if isinstance(v, str) else v
             for k, v in row.items()} for row in rows]


def scene_rows(path: str, names: Sequence[str], split: Optional[str] = None,
               allow_missing: Sequence[str] = ()) -> List[dict]:
    """The scenes of the scene list ``path`` (:func:`read_scene_list`) of
    ``split`` (all if None), each a dict: ``name`` (the ``name`` cell, else
    ``scene_<row index>``), ``paths`` (modality -> existing file, relative
    paths joined to the list's folder), ``labels``, ``aoi`` (paths or
    None), ``split`` and ``row`` (the file and row, for messages).

    Raises:
        ValueError: A column that is neither a modality of ``names`` nor
            one of :data:`SCENE_COLUMNS`, or two scenes of one name.
        FileNotFoundError: A modality file that is missing (an empty cell,
            or a file that does not exist) and not in ``allow_missing``,
            or a scene without any modality file.
    """
    root = osp.dirname(path)
    scenes, seen = [], {}
    for r, row in enumerate(read_scene_list(path)):
        where = f'{path} row {r + 1}'
        unknown = sorted(set(row) - set(names) - set(SCENE_COLUMNS))
        if unknown:
            raise ValueError(f'{where}: unknown columns {unknown}; '
                             f'expected modalities {list(names)} and '
                             f'{list(SCENE_COLUMNS)}')
        if split is not None and row.get('split') != split:
            continue
        cell = {k: None if row.get(k) is None else osp.join(root, str(row[k]))
                for k in tuple(names) + ('labels', 'aoi')}
        paths = {}
        for name in names:
            if cell[name] is not None and osp.exists(cell[name]):
                paths[name] = cell[name]
            elif name not in allow_missing:
                raise FileNotFoundError(
                    f'{where}: modality {name!r} file '
                    f'{cell[name] or "(empty cell)"} not found; list it '
                    f'in allow_missing to mark it absent instead')
        if not paths:
            raise FileNotFoundError(f'{where}: no modality file found')
        scene_name = str(row.get('name') or f'scene_{r}')
        if scene_name in seen:
            raise ValueError(f'{where}: scene name {scene_name!r} is also '
                             f'{seen[scene_name]}; give each scene its own')
        seen[scene_name] = where
        scenes.append(dict(name=scene_name, paths=paths,
                           labels=cell['labels'], aoi=cell['aoi'],
                           split=row.get('split'), row=where))
    return scenes


def grid_spans(height: int, width: int, size: Tuple[int, int]) -> List[Span]:
    """``size`` windows tiling a ``height`` x ``width`` scene row-major,
    without overlap (the last row / column cut at the edge)."""
    return [(y, min(y + size[0], height), x, min(x + size[1], width))
            for y in range(0, height, size[0])
            for x in range(0, width, size[1])]


def coarse_cell(shapes: Sequence[Tuple[int, int]],
                cap: Optional[int] = None) -> int:
    """The side (pixels) of the smallest square cell whose grids over
    scenes of ``shapes`` ((height, width) each) hold at most ``cap``
    cells in all (default :data:`SAMPLING_CELLS`; at least one cell a
    scene)."""
    cap = SAMPLING_CELLS if cap is None else cap

    def cells(c):
        return sum(-(-h // c) * -(-w // c) for h, w in shapes)

    # cells() does not grow with the side: bisect from its lower bound
    lo = max(1, int(np.sqrt(sum(h * w for h, w in shapes) / cap)))
    hi = max(lo, max(max(s) for s in shapes))
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if cells(mid) <= cap else (mid + 1, hi)
    return lo


@DATASETS.register_module()
class SceneDataset(MultiModalSegDataset):
    """Windows of georeferenced scenes listed in a scene list.

    A scene is one raster per modality of the spec (any GDAL raster, any
    CRS, resolution and extent: read on the grid of its first modality,
    resampled on the fly by :class:`~mmrsfusion.io.raster_scene.RasterScene`
    as ``tools/predict_scene.py`` does), labels (a class raster, read with
    nearest resampling, or polygons rasterised per window) and an optional
    area of interest (polygons: windows without an AOI pixel are never
    drawn; label pixels outside it are ``ignore_index``).

    The scene list (``ann_file``; CSV, JSON or YAML, one scene a row) has a
    column per modality name (a file; empty, or a file that does not exist,
    makes the modality absent for that scene when it is in
    ``allow_missing``), ``labels``, optional ``aoi``, ``name`` and
    ``split``. Relative paths are relative to the list's folder.

    Sampling: random (training): each of the ``samples_per_epoch`` samples
    is a ``crop_size`` window drawn over all scenes with probability
    proportional to its number of AOI pixels (pixel centres inside the AOI;
    all its pixels in a scene without one), exactly (see
    :meth:`draw_window`); a window without AOI pixel is never drawn, and
    scenes are drawn in proportion to their AOI area (exactly so where the
    AOI keeps a window's side from the scene's edges). The draw's tables
    hold at most :data:`SAMPLING_CELLS` coarse cells over all scenes
    (8 bytes each), whatever the scenes' size. Grid (``test_mode``): each
    scene tiled by ``crop_size`` windows without overlap (edge windows cut
    short; windows without AOI pixel left out).

    A sample holds what the loader gives: ``img`` (h, w, C) float32 in spec
    order (raw values; elevation with no-data 0 and normalised by the
    entry's ``norm``: ``'minmax'`` with the scene's valid range, found once
    at start by a windowed pass, or None), ``gt_seg_map`` (h, w) uint8
    (``ignore_index`` outside the AOI, where no modality has data, and where
    no polygon lies when ``background`` is it), ``presence``, ``img_shape``,
    ``ori_shape``, ``seg_fields``, plus ``scene`` and ``window``; then the
    configured ``pipeline`` (flips, packing) runs on it. Only windows are
    read; the scenes stay on disk.

    Args:
        ann_file (str): The scene list (joined to ``data_root``).
        modalities (ModalitySpec | list[dict]): The spec (bound from the
            config's top-level ``modalities``).
        crop_size (tuple[int, int]): Window (h, w).
        samples_per_epoch (int): Random windows per epoch (training).
        split (str, optional): Only rows whose ``split`` is this.
        allow_missing (Sequence[str]): Modality names a scene may lack.
        label_attribute (str): Polygon property holding the class index.
        label_class (int, optional): One class for every polygon instead.
        background (int, optional): Class of pixels under no polygon;
            default ``ignore_index`` (not learnt).
        grid (bool, optional): Grid windows instead of random ones;
            default ``test_mode``.
        gdal_cache_mb (int): GDAL's block cache (``GDAL_CACHEMAX``) while
            this dataset reads, in each process; default
            :data:`GDAL_CACHE_MB`.
        **kwargs: :class:`mmseg.datasets.BaseSegDataset` arguments
            (``metainfo`` with the classes, ``pipeline``, ``test_mode``,
            ``ignore_index``, ``data_root``).

    Raises:
        FileNotFoundError / ValueError: A scene list, raster or vector file
            that is missing or unreadable, a column naming no modality, a
            scene without labels or any modality, ``norm='zscore'`` (needs
            whole-scene statistics); each names the file and row.
    """

    def __init__(self,
                 ann_file: str,
                 modalities: Union[ModalitySpec, Sequence[dict]],
                 crop_size: Tuple[int, int] = (512, 512),
                 samples_per_epoch: int = 1000,
                 split: Optional[str] = None,
                 allow_missing: Sequence[str] = (),
                 label_attribute: str = 'class',
                 label_class: Optional[int] = None,
                 background: Optional[int] = None,
                 grid: Optional[bool] = None,
                 gdal_cache_mb: int = GDAL_CACHE_MB,
                 **kwargs) -> None:
        spec = ModalitySpec.build(modalities, 'SceneDataset.modalities')
        self.scene_allow_missing = spec.check_names(
            allow_missing, 'SceneDataset.allow_missing')
        zscore = [m.name for m in spec if m.norm == 'zscore']
        if zscore:
            raise ValueError(
                f"SceneDataset: modalities {zscore} have norm='zscore', "
                f"which needs whole-scene statistics; use 'minmax' (the "
                f"scene's range) or None")
        self.crop_size = tuple(int(v) for v in crop_size)
        self.samples_per_epoch = int(samples_per_epoch)
        self.split = split
        self.label_attribute = label_attribute
        self.label_class = label_class
        self.background = background
        self.grid = grid
        if not int(gdal_cache_mb) == gdal_cache_mb > 0:
            raise ValueError(f'SceneDataset.gdal_cache_mb: expected a '
                             f'positive integer (MiB), got {gdal_cache_mb}')
        self.gdal_cache_mb = int(gdal_cache_mb)
        self._open: 'OrderedDict[int, tuple]' = OrderedDict()
        self._pid = None
        self._last_aoi = (None, None)
        super().__init__(ann_file=ann_file, modalities=spec, manifest=None,
                         **kwargs)

    # ----------------------------------------------------------- scenes --
    def load_data_list(self) -> List[dict]:
        """Read the scene list, then open each scene once (grid, elevation
        ranges, the bounding boxes of the AOI's and labels' polygons) and
        list the windows (grid) or one placeholder per random sample (and
        build the table of :meth:`draw_window`)."""
        from mmrsfusion.io.raster_scene import RasterScene
        if self.grid is None:
            self.grid = self.test_mode
        self.scenes = []
        for row in scene_rows(self.ann_file, self.modalities.names,
                              self.split, self.scene_allow_missing):
            where, paths = row['row'], row['paths']
            if row['labels'] is None:
                raise ValueError(f'{where}: no labels given')
            scene = dict(name=row['name'], paths=paths, labels=row['labels'],
                         row=where, split=row['split'])
            with self.gdal_env(), RasterScene(paths, self.modalities) as rs:
                scene.update(height=rs.height, width=rs.width,
                             transform=rs.transform, crs=rs.crs,
                             reference=rs.reference)
                scene['ranges'] = {
                    m.name: rs.elevation_range(m.name, 2048)
                    for m in rs.modalities if m.norm == 'minmax'
                }
            # vector files: bounding boxes only; polygons read per window
            if not row['labels'].lower().endswith(('.tif', '.tiff', '.vrt',
                                                   '.png', '.img')):
                scene['polygons'] = VectorPolygons(
                    row['labels'], scene['crs'], self.label_attribute,
                    self.label_class)
            scene['aoi'] = None if row['aoi'] is None else VectorPolygons(
                row['aoi'], scene['crs'])
            self.scenes.append(scene)
        if not self.scenes:
            raise ValueError(f'{self.ann_file}: no scene'
                             + (f' of split {self.split!r}' if self.split
                                else ''))
        cell = coarse_cell([(s['height'], s['width']) for s in self.scenes])
        if self.grid:
            windows = []
            for i, s in enumerate(self.scenes):
                touched = self._touched(s, cell)
                windows += [dict(scene=i, window=span) for span in grid_spans(
                    s['height'], s['width'], self.crop_size)
                    if self._coverage(touched, cell, span)
                    and self._aoi(s, span).any()]
            return windows
        self._draw = self._draw_table(cell)
        return [dict(scene=None) for _ in range(self.samples_per_epoch)]

    def _window_hw(self, scene: dict) -> Tuple[int, int]:
        return (min(self.crop_size[0], scene['height']),
                min(self.crop_size[1], scene['width']))

    @staticmethod
    def _touched(scene: dict, cell: int) -> np.ndarray:
        """uint8 (ceil(height / cell), ceil(width / cell)): 1 where the
        scene's AOI touches the ``cell`` x ``cell`` pixel cell (all ones
        without an AOI). Rasterised with ``all_touched``: a cell holding
        the centre of an AOI pixel meets the AOI's interior, so it is
        marked (cells the AOI only grazes are too)."""
        from rasterio import Affine
        hc, wc = -(-scene['height'] // cell), -(-scene['width'] // cell)
        if scene['aoi'] is None:
            return np.ones((hc, wc), np.uint8)
        return scene['aoi'].rasterize(scene['transform'] @ Affine.scale(cell),
                                      (0, hc, 0, wc), 0, all_touched=True)

    @staticmethod
    def _coverage(touched: np.ndarray, cell: int, span: Span) -> bool:
        """Whether ``span`` meets a cell of ``touched`` (:meth:`_touched`):
        else it holds no AOI pixel."""
        y0, y1, x0, x1 = span
        return bool(touched[y0 // cell:-(-y1 // cell),
                            x0 // cell:-(-x1 // cell)].any())

    def _most_windows(self, scene: dict) -> int:
        """The most windows of the scene that hold one pixel (a pixel at
        least a window from the edges is in h * w of them)."""
        h, w = self._window_hw(scene)
        return min(h, scene['height'] - h + 1) * \
            min(w, scene['width'] - w + 1)

    def _draw_table(self, cell: int) -> dict:
        """The table of :meth:`draw_window`: ``cell`` (pixels), ``cdf``
        (float64 (cells,), ending at 1): the cumulative weights of the
        cells of every scene in turn (row-major), ``first`` (int64
        (scenes + 1,)): each scene's first cell. A cell's weight: its
        pixels in the scene if the AOI touches it (else 0) times the
        scene's :meth:`_most_windows`. At most :data:`SAMPLING_CELLS`
        cells (:func:`coarse_cell`): 8 bytes each, whatever the scenes'
        size."""
        grids = [(-(-s['height'] // cell), -(-s['width'] // cell))
                 for s in self.scenes]
        first = np.cumsum([0] + [hc * wc for hc, wc in grids])
        cdf = np.empty(first[-1])
        for s, (hc, wc), k in zip(self.scenes, grids, first):
            rows = np.minimum(cell, s['height'] - cell * np.arange(hc))
            cols = np.minimum(cell, s['width'] - cell * np.arange(wc))
            cdf[k:k + hc * wc] = (self._touched(s, cell) * (
                rows[:, None] * self._most_windows(s)) * cols).ravel()
        np.cumsum(cdf, out=cdf)
        if not cdf[-1]:
            raise ValueError(f'{self.ann_file}: no window of any scene '
                             f'touches its area of interest')
        cdf /= cdf[-1]
        return dict(cell=cell, cdf=cdf, first=first)

    def draw_window(self, rng=np.random, tries: int = DRAW_TRIES
                    ) -> Tuple[int, Span]:
        """A random ``(scene index, span)``: every window of every scene
        drawn with probability proportional to its AOI pixels (those of
        :meth:`_aoi`: pixel centres inside the AOI; all pixels of a scene
        without one), exactly; draws are a function of ``rng``'s state.

        Each try: a cell by weight (:meth:`_draw_table`), a pixel uniform
        in it, a window uniform among the n holding that pixel, kept with
        probability n / :meth:`_most_windows` and if the pixel is in the
        AOI. A pixel is then drawn uniformly over all AOI pixels of all
        scenes (scaled by the scene's most windows, which the acceptance
        divides out) and each window it lies in with the same probability:
        a window's odds are the sum over its AOI pixels. Tries that pass
        the first test read the window's AOI (kept for its labels).

        Raises:
            ValueError: ``tries`` tries in a row rejected (an AOI that
                holds few pixel centres of the cells it touches).
        """
        d = self._draw
        cell = d['cell']
        for _ in range(tries):
            # = rng.choice(len(cdf), p=...) without its O(cells) checks
            # and cumulative sum at every draw (the same draws)
            k = int(d['cdf'].searchsorted(rng.random_sample(), 'right'))
            i = int(d['first'].searchsorted(k, 'right')) - 1
            s = self.scenes[i]
            r, q = divmod(k - int(d['first'][i]), -(-s['width'] // cell))
            py = r * cell + rng.randint(min(cell, s['height'] - r * cell))
            px = q * cell + rng.randint(min(cell, s['width'] - q * cell))
            h, w = self._window_hw(s)
            # origins of the windows holding (py, px): [lo, hi) per axis
            ylo, yhi = max(0, py - h + 1), min(py, s['height'] - h) + 1
            xlo, xhi = max(0, px - w + 1), min(px, s['width'] - w) + 1
            y, x = ylo + rng.randint(yhi - ylo), xlo + rng.randint(xhi - xlo)
            if rng.random_sample() * self._most_windows(s) >= \
                    (yhi - ylo) * (xhi - xlo):
                continue
            span = (y, y + h, x, x + w)
            if self._aoi(s, span)[py - y, px - x]:
                return i, span
        raise ValueError(f'{self.ann_file}: {tries} random windows in a row '
                         f'were rejected (the areas of interest hold few '
                         f'pixel centres of the coarse cells they touch)')

    def _aoi(self, scene: dict, span: Span) -> np.ndarray:
        """(h, w) bool: pixels of ``span`` inside the scene's AOI. The last
        one is kept: a drawn window's AOI is read again for its labels, and
        each read opens the AOI's file."""
        y0, y1, x0, x1 = span
        if scene['aoi'] is None:
            return np.ones((y1 - y0, x1 - x0), bool)
        key = (scene['name'], tuple(span))
        if self._last_aoi[0] != key:
            self._last_aoi = (key, scene['aoi'].rasterize(
                scene['transform'], span, 0) > 0)
        return self._last_aoi[1]

    # ---------------------------------------------------------- reading --
    def gdal_env(self):
        """The GDAL settings of this dataset's reads (a ``rasterio.Env``
        with its bounded block cache)."""
        return gdal_env(self.gdal_cache_mb * 2**20)

    def __getstate__(self) -> dict:
        # open files stay with their process (dataloader workers reopen)
        state = self.__dict__.copy()
        state.update(_open=OrderedDict(), _pid=None)
        return state

    def _scene_reader(self, i: int) -> tuple:
        """``(RasterScene, label reader or None)`` of scene ``i``, opened
        in this process (at most :data:`OPEN_SCENES` kept open)."""
        from rasterio.enums import Resampling
        from mmrsfusion.io.raster_scene import RasterScene
        if self._pid != os.getpid():  # a dataloader worker: reopen
            self._open, self._pid = OrderedDict(), os.getpid()
        if i in self._open:
            self._open.move_to_end(i)
            return self._open[i]
        s = self.scenes[i]
        rs = RasterScene(s['paths'], self.modalities)
        labels = None if 'polygons' in s else rs.open_on_grid(
            s['labels'], Resampling.nearest)
        self._open[i] = (rs, labels)
        if len(self._open) > OPEN_SCENES:
            self._open.popitem(last=False)[1][0].close()
        return self._open[i]

    def read_window(self, i: int, span: Span) -> dict:
        """The loader's results for window ``span`` of scene ``i`` (see the
        class docstring), read under :meth:`gdal_env`."""
        with self.gdal_env():
            return self._read_window(i, span)

    def read_raw(self, i: int, span: Span) -> Tuple[dict, np.ndarray]:
        """Window ``span`` of scene ``i`` before normalisation, read under
        :meth:`gdal_env`: modality name -> ``(values (h, w, c), valid (h,
        w))`` as :meth:`RasterScene.read` gives them, for the modalities
        the scene has, and the labels ``gt_seg_map`` (h, w) uint8 of
        :meth:`read_window`."""
        with self.gdal_env():
            return self._read_raw(i, span)

    def _read_raw(self, i: int, span: Span) -> Tuple[dict, np.ndarray]:
        from rasterio.windows import Window
        s = self.scenes[i]
        rs, label_reader = self._scene_reader(i)
        y0, y1, x0, x1 = span
        reads = {name: rs.read(name, span) for name in s['paths']}
        valid = np.zeros((y1 - y0, x1 - x0), bool)
        for _, ok in reads.values():
            valid |= ok
        ignore = self.ignore_index
        if label_reader is None:
            fill = ignore if self.background is None else self.background
            gt = s['polygons'].rasterize(s['transform'], span, fill)
        else:
            win = Window(x0, y0, x1 - x0, y1 - y0)
            gt = label_reader.read(1, window=win).astype(np.uint8)
            gt[label_reader.dataset_mask(window=win) == 0] = ignore
        gt[~valid | ~self._aoi(s, span)] = ignore
        return reads, gt

    def _read_window(self, i: int, span: Span) -> dict:
        s = self.scenes[i]
        reads, gt = self._read_raw(i, span)
        img = np.zeros(gt.shape + (self.modalities.num_channels,),
                       np.float32)
        for mod in self.modalities:
            if mod.name not in reads:
                continue
            arr, ok = reads[mod.name]
            if mod.kind == 'elevation':
                arr = normalize_elevation(
                    arr, mod.norm, (), s['paths'][mod.name],
                    s['ranges'].get(mod.name)) if ok.any() else 0
            img[..., mod.slice] = arr
        return dict(
            img=img, gt_seg_map=gt, img_shape=img.shape[:2],
            ori_shape=img.shape[:2], seg_fields=['gt_seg_map'],
            presence=tuple(m.name in s['paths'] for m in self.modalities),
            modalities=self.modalities, img_path=s['paths'][s['reference']],
            seg_map_path=s['labels'], modality_paths=dict(s['paths']),
            reduce_zero_label=False, scene=s['name'], window=span)

    def prepare_data(self, idx: int):
        info = self.get_data_info(idx)
        if info['scene'] is None:
            i, span = self.draw_window()
        else:
            i, span = info['scene'], tuple(info['window'])
        results = self.read_window(i, span)
        self.check_label(results)
        return run_pipeline(self.pipeline.transforms, results)
