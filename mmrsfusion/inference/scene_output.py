"""The output rasters of a scene, written block by block, resumable, and
renamed to their final names only when complete."""
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from mmrsfusion.io.raster_scene import Span

#: Value of pixels where every input is no-data, in every output.
NODATA = 255
#: Probabilities and confidences are stored as ``round(p * PROB_SCALE)``,
#: so that 255 stays free for no-data.
PROB_SCALE = 254


class SceneOutputs:
    """The class map of a scene and, optionally, its per-class
    probabilities and confidence, as tiled, compressed GeoTIFFs.

    - ``out``: one uint8 band of class indices, the ``palette`` as its
      colour table, :data:`NODATA` where every input is no-data.
    - ``probs``: one uint8 band per class, ``round(p * 254)``; ``conf``: the
      top class's probability, same scale (GDAL scale metadata 1/254).

    Every file is written under ``<name>.part`` and renamed to its final
    name by :meth:`finish`, so an interrupted run never leaves a partial
    file under the final name. Each block is written by reopening the files
    (closing flushes it to disk) and then recorded in the resume state
    ``<out>.part.json``, written atomically: a block listed there is on
    disk. With ``resume=True`` the listed blocks are skipped, if the state
    was made with the same ``fingerprint`` (inputs, model, options).

    Args:
        out (str): Class map path.
        profile (dict): ``crs``, ``transform``, ``height``, ``width``.
        classes (Sequence[str]): Class names (band description, tags).
        palette (Sequence, optional): One RGB triple per class.
        tile (int): GeoTIFF tile side (a multiple of 16).
        fingerprint (dict): What the results depend on (JSON-serialisable).
        probs (str, optional): Probabilities path.
        conf (str, optional): Confidence path.
        resume (bool): Continue a run interrupted with the same
            fingerprint.

    Raises:
        ValueError: ``resume`` with a state made by another run (what
            differs is named), or with a damaged state or partial file
            (every tile of each is read first; the file is named).
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
                 resume: bool = False) -> None:
        self.finals = {'out': out}
        if probs:
            self.finals['probs'] = probs
        if conf:
            self.finals['conf'] = conf
        self.parts = {k: v + '.part' for k, v in self.finals.items()}
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
        """Rename every file to its final name, then drop the state."""
        for key in sorted(self.parts, key=lambda k: k == 'out'):
            os.replace(self.parts[key], self.finals[key])
        os.remove(self.state_path)

    def discard(self) -> None:
        """Remove the partial files and the state (a run that failed
        before finishing any block leaves nothing to resume)."""
        for path in list(self.parts.values()) + [self.state_path]:
            if osp.exists(path):
                os.remove(path)
