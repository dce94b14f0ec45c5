"""The output rasters of a scene, written block by block, resumable, laid
out as Cloud-Optimised GeoTIFFs and renamed to their final names only when
complete."""
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence
from xml.etree import ElementTree

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.errors import RasterioError
from rasterio.windows import Window

from mmrsfusion.io.raster_scene import Span
from .class_polygons import check_vector_options, write_class_polygons

#: Value of pixels where every input is no-data, in every output.
NODATA = 255
#: Probabilities and confidences are stored as ``round(p * PROB_SCALE)``,
#: so that 255 stays free for no-data.
PROB_SCALE = 254
#: Overview resampling of each output: the most frequent class, the mean
#: probability (GDAL leaves no-data pixels out of both).
OVERVIEW_RESAMPLING = dict(out='MODE', probs='AVERAGE', conf='AVERAGE')


def class_names_sidecar(path: str) -> str:
    """The GDAL PAM sidecar of the class map ``path``, which holds its
    category (class) names."""
    return path + '.aux.xml'


class SceneOutputs:
    """The class map of a scene and, optionally, its per-class
    probabilities and confidence, as Cloud-Optimised GeoTIFFs (tiled,
    deflate-compressed, with overviews), and its class polygons.

    - ``out``: one uint8 band of class indices, the ``palette`` as its
      colour table, :data:`NODATA` where every input is no-data; the class
      names as GDAL category names in :func:`class_names_sidecar` (which
      QGIS shows in the legend and ``gdalinfo`` lists) and as the JSON tag
      ``classes``.
    - ``probs``: one uint8 band per class, ``round(p * 254)``; ``conf``: the
      top class's probability, same scale (GDAL scale metadata 1/254).
    - ``vector``: a GeoPackage of the class polygons
      (:func:`write_class_polygons`), ``simplify`` its tolerance.

    Overviews are resampled by :data:`OVERVIEW_RESAMPLING`. Blocks are
    written into tiled GeoTIFFs ``<name>.part``; :meth:`finish` lays each
    out as a COG (GDAL's COG driver reads it block by block: the scene is
    never in memory) under ``<name>.cog.part``, writes the sidecar and the
    polygons under temporary names too, and then renames them all, so an
    interrupted run never leaves a partial file under a final name. Each
    block is written by reopening the files (closing flushes it to disk)
    and then recorded in the resume state
    ``<out>.part.json``, written atomically: a block listed there is on
    disk. With ``resume=True`` the listed blocks are skipped, if the state
    was made with the same ``fingerprint`` (inputs, model, options).

    Args:
        out (str): Class map path.
        profile (dict): ``crs``, ``transform``, ``height``, ``width``.
        classes (Sequence[str]): Class names (category names, tag,
            probability band descriptions, polygon names).
        palette (Sequence, optional): One RGB triple per class.
        tile (int): GeoTIFF tile side (a multiple of 16).
        fingerprint (dict): What the results depend on (JSON-serialisable).
        probs (str, optional): Probabilities path.
        conf (str, optional): Confidence path.
        resume (bool): Continue a run interrupted with the same
            fingerprint.
        vector (str, optional): Class polygons GeoPackage path.
        simplify (float): Polygon simplification tolerance in map units
            (0: pixel edges).

    Raises:
        ValueError: ``resume`` with a state made by another run (what
            differs is named), or with a damaged state or partial file
            (every tile of each is read first; the file is named);
            ``simplify`` negative or without ``vector``; ``vector`` without
            its libraries.
    """

    def __init__(self,
                 out: str,
                 profile: dict,
                 classes: Sequence[str],
                 palette: Optional[Sequence[Sequence[int]]],
                 tile: int,
                 fingerprint: dict,
                 probs: Optional[str] = None,
                 conf: Optional[str] = None,
                 resume: bool = False,
                 vector: Optional[str] = None,
                 simplify: float = 0.0) -> None:
        check_vector_options(vector, simplify)
        self.vector, self.simplify = vector, float(simplify)
        self.classes = list(classes)
        self.finals = {'out': out}
        if probs:
            self.finals['probs'] = probs
        if conf:
            self.finals['conf'] = conf
        self.parts = {k: v + '.part' for k, v in self.finals.items()}
        self.cogs = {k: v + '.cog.part' for k, v in self.finals.items()}
        self.temps = dict(self.cogs, sidecar=class_names_sidecar(out) +
                          '.part')
        if vector:  # GDAL wants GeoPackages to end in .gpkg
            root, ext = osp.splitext(vector)
            self.temps['vector'] = root + '.part' + ext
        self.state_path = out + '.part.json'
        self.fingerprint = json.loads(json.dumps(fingerprint))
        self.done = set()
        self.profile = profile
        num_classes = len(classes)
        self.counts = {k: num_classes if k == 'probs' else 1
                       for k in self.parts}
        if resume and self._load_state():
            return
        base = dict(
            driver='GTiff',
            height=profile['height'],
            width=profile['width'],
            dtype='uint8',
            nodata=NODATA,
            tiled=True,
            blockxsize=tile,
            blockysize=tile,
            compress='deflate')
        if profile.get('crs') is not None:  # else a plain (pixel) TIFF
            base.update(crs=profile['crs'], transform=profile['transform'])
        for key, path in self.parts.items():
            os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
            count = self.counts[key]
            with rasterio.open(path, 'w', count=count, **base) as dst:
                if key == 'out':
                    if palette is not None:
                        dst.write_colormap(1, {
                            i: tuple(int(c) for c in rgb)
                            for i, rgb in enumerate(palette)
                        })
                    dst.set_band_description(1, 'class')
                    dst.update_tags(classes=json.dumps(list(classes)))
                else:
                    dst.scales = [1 / PROB_SCALE] * count
                    names = classes if key == 'probs' else ['confidence']
                    for i, name in enumerate(names):
                        dst.set_band_description(i + 1, str(name))
        self._save_state()

    def _load_state(self) -> bool:
        if not osp.isfile(self.state_path):
            return False
        try:
            with open(self.state_path) as f:
                state = json.load(f)
            old, done = state['fingerprint'], set(state['done'])
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(
                f'--resume: {self.state_path} is damaged ({type(e).__name__}'
                f': {e}); start over without --resume') from e
        if old != self.fingerprint:
            diff = sorted(k for k in set(old) | set(self.fingerprint)
                          if old.get(k) != self.fingerprint.get(k))
            raise ValueError(
                f'--resume: {self.state_path} was written by a run with '
                f'other {diff}; rerun those arguments, or start over '
                f'without --resume')
        missing = [p for p in self.parts.values() if not osp.isfile(p)]
        if missing:
            raise ValueError(f'--resume: {self.state_path} lists finished '
                             f'blocks but {missing} are missing; start over '
                             f'without --resume')
        for key, path in self.parts.items():
            self._check_part(path, self.counts[key])
        self.done = done
        return True

    def _check_part(self, path: str, count: int) -> None:
        """Read every tile of ``path``: a file cut short or damaged since
        the interrupted run fails here, not in the finished output."""
        height, width = self.profile['height'], self.profile['width']
        try:
            with rasterio.open(path) as src:
                found = (src.count, src.height, src.width, src.dtypes[0])
                if found != (count, height, width, 'uint8'):
                    raise ValueError(
                        f'expected {count} band(s) of {height}x{width} '
                        f'uint8, got {found[0]} of {found[1]}x{found[2]} '
                        f'{found[3]}')
                for _, window in src.block_windows(1):
                    src.read(window=window)
        except (RasterioError, ValueError) as e:
            raise ValueError(
                f'--resume: {path} is damaged ({e}); start over without '
                f'--resume') from e

    def _save_state(self) -> None:
        tmp = self.state_path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(
                dict(fingerprint=self.fingerprint, done=sorted(self.done)),
                f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)

    def write(self, index: int, span: Span, classes: np.ndarray,
              probs: Optional[np.ndarray] = None) -> None:
        """Write block ``index`` covering ``span``: ``classes`` (h, w) uint8
        and, if probability / confidence outputs are open, ``probs``
        (K, h, w) uint8 on the :data:`PROB_SCALE` scale (:data:`NODATA`
        where ``classes`` is); then record it."""
        y0, y1, x0, x1 = span
        window = Window(x0, y0, x1 - x0, y1 - y0)
        arrays: Dict[str, np.ndarray] = dict(out=classes[None])
        if 'probs' in self.parts:
            arrays['probs'] = probs
        if 'conf' in self.parts:
            arrays['conf'] = probs.max(0, keepdims=True)
        for key, arr in arrays.items():
            with rasterio.open(self.parts[key], 'r+') as dst:
                dst.write(arr, window=window)
        self.done.add(index)
        self._save_state()

    def finish(self) -> None:
        """Lay every partial file out as a COG, write the class names
        sidecar and the polygons, rename them all to their final names
        (the class map last), then drop the partial files and the state.
        Interrupted before the renaming, a ``resume`` run finishes again."""
        for key, part in self.parts.items():
            _write_cog(part, self.cogs[key], OVERVIEW_RESAMPLING[key])
        _write_class_names(self.temps['sidecar'], self.classes)
        finals = dict(self.finals,
                      sidecar=class_names_sidecar(self.finals['out']))
        if self.vector:
            write_class_polygons(self.cogs['out'], self.temps['vector'],
                                 self.classes, NODATA, self.simplify)
            finals['vector'] = self.vector
        for key in sorted(self.temps, key=lambda k: k == 'out'):
            os.replace(self.temps[key], finals[key])
        for path in self.parts.values():
            os.remove(path)
        os.remove(self.state_path)

    def discard(self) -> None:
        """Remove the partial and temporary files and the state (a run that
        failed before finishing any block leaves nothing to resume)."""
        for path in (list(self.parts.values()) + list(self.temps.values()) +
                     [self.state_path]):
            if osp.exists(path):
                os.remove(path)


def _write_cog(src: str, dst: str, resampling: str) -> None:
    """Copy the tiled GeoTIFF ``src`` to ``dst`` with GDAL's COG driver:
    same tiles and compression, overviews (``resampling``) down to one
    tile, image data after all the directories, the smallest overview
    first. Colour table, tags, band descriptions, scales and no-data are
    copied."""
    with rasterio.open(src) as f:
        tile = f.block_shapes[0][0]
    if osp.exists(dst):  # left by a run killed while finishing
        os.remove(dst)
    rasterio.shutil.copy(src, dst, driver='COG', COMPRESS='DEFLATE',
                         BLOCKSIZE=tile, OVERVIEW_RESAMPLING=resampling)


def _write_class_names(path: str, classes: Sequence[str]) -> None:
    """A GDAL PAM document at ``path`` giving band 1 the category names
    ``classes`` (value i is ``classes[i]``). GeoTIFF has no tag for them
    and rasterio no call, so GDAL keeps them in the ``.aux.xml`` sidecar;
    QGIS labels a paletted band's legend with them."""
    root = ElementTree.Element('PAMDataset')
    band = ElementTree.SubElement(root, 'PAMRasterBand', band='1')
    names = ElementTree.SubElement(band, 'CategoryNames')
    for name in classes:
        ElementTree.SubElement(names, 'Category').text = str(name)
    ElementTree.indent(root)
    with open(path, 'wb') as f:
        ElementTree.ElementTree(root).write(f, encoding='utf-8')
        f.flush()
        os.fsync(f.fileno())
