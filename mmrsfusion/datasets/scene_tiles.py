"""The scenes of a scene list cut into co-registered GeoTIFF tiles in the
converted layout that the tiled datasets read (``img_dir/<split>``,
``<name>_dir/<split>``, ``ann_dir/<split>``, ``conversion.json``).

The windows and labels are :class:`~.scene_dataset.SceneDataset`'s own (its
grid mode: one home for the resampling onto the reference grid, no-data,
label rasterisation and the AOI); the modality values are written raw, as
:class:`~mmrsfusion.io.raster_scene.RasterScene` reads them for it, so that
a tiled loader reading a tile gives what SceneDataset gives for the same
window (elevation normalised by the scene's range, recorded in the
manifest).
"""
import json
import os
import os.path as osp
import re
from typing import Dict, Optional, Tuple

import numpy as np

from mmrsfusion.io import check_outputs
from mmrsfusion.io.raster_scene import RasterScene
from mmrsfusion.utils import ModalitySpec, Progress
from .isprs_raw.layout import MANIFEST, TILE_SIZE
from .scene_dataset import SceneDataset
from .transforms.loading import LoadMultiModalImageFromFiles

#: Folder of the label tiles (the converters' ``ann_dir``).
LABEL_DIR = 'ann_dir'
#: A split is a folder name.
_SPLIT = re.compile(r'^[A-Za-z0-9][\w.-]*$')


def tile_dirs(modalities: ModalitySpec) -> Dict[str, Tuple[str, str]]:
    """Modality name -> ``(data info key, folder)``: the tiled loader's
    key (:class:`~.transforms.LoadMultiModalImageFromFiles`: ``img_path``
    for the first optical modality, ``<name>_path`` for the others) and
    the folder named after it (``img_dir``, ``<name>_dir``)."""
    keys = LoadMultiModalImageFromFiles(modalities).path_keys
    return {name: (key, key[:-len('_path')] + '_dir')
            for name, key in keys.items()}


def tile_stem(scene: str, span: Tuple[int, int, int, int]) -> str:
    """``<scene>_<x0>_<y0>_<x1>_<y1>`` (pixels of the scene; the converters'
    clip naming, by which the tiled datasets find the scene's elevation
    range in the manifest)."""
    y0, y1, x0, x1 = span
    return f'{scene}_{x0}_{y0}_{x1}_{y1}'


def scene_splits(dataset: SceneDataset,
                 default_split: Optional[str] = None) -> Dict[str, str]:
    """Scene name -> its ``split`` cell (``default_split`` if empty).

    Raises:
        ValueError: An empty cell without ``default_split``, or a split
            that is not a folder name; naming the scene list row.
    """
    splits = {}
    for scene in dataset.scenes:
        split = scene['split'] or default_split
        if split is None:
            raise ValueError(f'{scene["row"]}: no split; fill the split '
                             f'column or pass --default-split')
        if not _SPLIT.match(str(split)):
            raise ValueError(f'{scene["row"]}: split {split!r} is not a '
                             f'folder name (letters, digits, _ . -)')
        splits[scene['name']] = str(split)
    return splits


def _write_tile(path: str, arr: np.ndarray, scene: dict,
                span: Tuple[int, int, int, int],
                nodata: Optional[float]) -> None:
    """Write ``arr`` (h, w, bands) as a tiled, deflate GeoTIFF with the
    window's georeferencing, under ``path.part`` renamed when complete."""
    import rasterio
    from rasterio.windows import Window, transform
    y0, y1, x0, x1 = span
    profile = dict(driver='GTiff', height=y1 - y0, width=x1 - x0,
                   count=arr.shape[2], dtype=arr.dtype.name, nodata=nodata,
                   tiled=True, blockysize=TILE_SIZE[0],
                   blockxsize=TILE_SIZE[1], compress='deflate')
    if scene['crs'] is not None:  # else a plain (pixel) TIFF
        profile.update(crs=scene['crs'], transform=transform(
            Window(x0, y0, x1 - x0, y1 - y0), scene['transform']))
    part = path + '.part'
    try:
        with rasterio.open(part, 'w', **profile) as dst:
            dst.write(np.moveaxis(arr, -1, 0))
        os.replace(part, path)
    finally:
        if osp.exists(part):
            os.remove(part)


def _elevation_stats(dataset: SceneDataset, scene: dict) -> Dict[str, dict]:
    """``<modality>_stats`` (min / max of the valid values over the whole
    scene: SceneDataset's range for ``norm='minmax'``, else found by a
    windowed pass) per elevation modality of the scene, as the converters
    record them."""
    stats = {}
    for mod in dataset.modalities:
        if mod.kind == 'elevation' and mod.name in scene['paths']:
            low, high = scene['ranges'].get(mod.name) or _elevation_range(
                dataset, scene, mod.name)
            stats[f'{mod.name}_stats'] = dict(min=low, max=high)
    return stats


def _elevation_range(dataset: SceneDataset, scene: dict,
                     name: str) -> Tuple[float, float]:
    with dataset.gdal_env(), RasterScene(scene['paths'],
                                         dataset.modalities) as rs:
        return rs.elevation_range(name, 2048)


def scenes_to_tiles(dataset: SceneDataset,
                    out_dir: str,
                    default_split: Optional[str] = None,
                    overwrite: bool = False,
                    progress: bool = True,
                    notes: Optional[dict] = None) -> dict:
    """Write every grid window of ``dataset`` (a :class:`SceneDataset` in
    grid mode, over all splits) as tiles under ``out_dir``.

    Per window ``span`` of scene ``s``, stem :func:`tile_stem`, split the
    scene's ``split`` cell:

    - ``<modality dir>/<split>/<stem>.tif`` (:func:`tile_dirs`) per
      modality the scene has: the raw values on the reference grid in the
      file's dtype (uint8 RGB stays uint8); elevation float32 metres,
      no-data NaN (the file's no-data, the spec's ``nodata`` and pixels the
      resampled DSM does not cover);
    - ``ann_dir/<split>/<stem>.tif``: SceneDataset's ``gt_seg_map`` (uint8,
      ``ignore_index`` outside the AOI, where no modality has data, and
      under no polygon unless ``background``).

    Every tile is a tiled, deflate GeoTIFF carrying the window's transform
    and the scene's CRS, written as ``.part`` and renamed when complete.
    ``conversion.json`` (written last, atomically) records the layout, the
    tiles of each scene, their split and source row, and each scene's
    elevation range (``<modality>_stats``), by which the tiled datasets
    normalise every tile of the scene as SceneDataset does.

    Args:
        dataset (SceneDataset): Built with ``grid=True``, ``split=None``;
            ``crop_size`` is the tile size.
        out_dir (str): Output root (created).
        default_split (str, optional): Split of rows with an empty cell.
        overwrite (bool): Replace existing tiles and manifest.
        progress (bool): Report with :class:`Progress`.
        notes (dict, optional): Extra manifest entries (the command line).

    Returns:
        dict: The manifest.

    Raises:
        ValueError: An existing output without ``overwrite`` (before
            anything is written); a window that cannot be read (naming the
            scene list row, the scene and the window).
    """
    spec = dataset.modalities
    dirs = tile_dirs(spec)
    splits = scene_splits(dataset, default_split)
    windows = [dataset.get_data_info(k) for k in range(len(dataset))]
    plan = []
    for info in windows:
        scene = dataset.scenes[info['scene']]
        split, stem = splits[scene['name']], tile_stem(scene['name'],
                                                       info['window'])
        files = {name: osp.join(out_dir, dirs[name][1], split,
                                stem + '.tif')
                 for name in scene['paths']}
        files['labels'] = osp.join(out_dir, LABEL_DIR, split, stem + '.tif')
        plan.append((info['scene'], tuple(info['window']), stem, files))
    manifest_path = osp.join(out_dir, MANIFEST)
    inputs = {f'{s["row"]} {m}': p for s in dataset.scenes
              for m, p in s['paths'].items()}
    check_outputs(dict([(f'tile {stem} {key}', path)
                        for _, _, stem, files in plan
                        for key, path in files.items()] +
                       [('manifest', manifest_path)]), inputs, overwrite)
    for folder in {osp.dirname(p) for *_, files in plan
                   for p in files.values()}:
        os.makedirs(folder, exist_ok=True)

    tiles = {s['name']: dict(split=splits[s['name']], row=s['row'],
                             height=s['height'], width=s['width'], tiles=[])
             for s in dataset.scenes}
    bar = Progress(len(plan), 'tiles') if progress else None
    current = None
    try:
        for i, span, stem, files in plan:
            scene = dataset.scenes[i]
            if current != i:
                current = i
                tiles[scene['name']].update(_elevation_stats(dataset, scene))
                nodata = _nodata(scene['paths'])
            try:
                _write_window(dataset, i, span, files, nodata)
            except (OSError, ValueError) as e:
                y0, y1, x0, x1 = span
                raise ValueError(
                    f'{scene["row"]} (scene {scene["name"]!r}), rows '
                    f'{y0}:{y1}, columns {x0}:{x1}: {e}') from e
            tiles[scene['name']]['tiles'].append(stem)
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()

    layout = {name: dict(dir=d, ext='.tif') for name, (_, d) in dirs.items()}
    layout['ann'] = dict(dir=LABEL_DIR, ext='.tif')
    counts: Dict[str, int] = {}
    for info in tiles.values():
        counts[info['split']] = counts.get(info['split'], 0) + \
            len(info['tiles'])
    manifest = dict(
        notes=dict(notes or {}, scene_list=dataset.ann_file,
                   tile_size=list(dataset.crop_size),
                   ignore_index=dataset.ignore_index,
                   modalities=spec.to_dict()),
        layout=layout,
        data_prefix={split: dict({key: f'{d}/{split}'
                                  for key, d in dirs.values()},
                                 seg_map_path=f'{LABEL_DIR}/{split}')
                     for split in sorted(counts)},
        splits=dict(sorted(counts.items())),
        tiles=tiles)
    tmp = manifest_path + '.part'
    with open(tmp, 'w') as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, manifest_path)
    return manifest


def _nodata(paths: Dict[str, str]) -> Dict[str, Optional[float]]:
    """Modality -> its file's no-data value (or None)."""
    import rasterio
    out = {}
    for name, path in paths.items():
        with rasterio.open(path) as src:
            out[name] = src.nodata
    return out


def _write_window(dataset: SceneDataset, i: int,
                  span: Tuple[int, int, int, int], files: Dict[str, str],
                  nodata: Dict[str, Optional[float]]) -> None:
    """Read window ``span`` of scene ``i`` (:meth:`SceneDataset.read_raw`)
    and write its tiles ``files`` (``nodata``: the optical and band files'
    no-data values, kept)."""
    scene = dataset.scenes[i]
    reads, labels = dataset.read_raw(i, span)
    for mod in dataset.modalities:
        if mod.name not in reads:
            continue
        arr = reads[mod.name][0]
        if mod.kind == 'elevation':  # invalid pixels are NaN
            _write_tile(files[mod.name], arr.astype(np.float32), scene, span,
                        float('nan'))
        else:
            _write_tile(files[mod.name], arr, scene, span, nodata[mod.name])
    _write_tile(files['labels'], labels[..., None], scene, span,
                dataset.ignore_index)
