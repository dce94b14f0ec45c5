"""A large synthetic scene as georeferenced GeoTIFFs (RGB ortho, DSM,
labels), for mapping whole scenes (``tools/predict_scene.py``), and a set of
such scenes with a scene list, polygon labels and areas of interest, for
training from scenes (:class:`~mmrsfusion.datasets.SceneDataset`)."""
import csv
import json
import os
import os.path as osp
from typing import Dict, Tuple

import numpy as np

from .isprs import ISPRS_PALETTE
from .synthetic import NODATA, synthesize_tile

#: UTM zone 32N, as the ISPRS Potsdam / Vaihingen data.
SCENE_CRS = 'EPSG:32632'
SCENE_ORIGIN = (366000.0, 5808000.0)  # west, north (metres)


def write_synthetic_scene(out_dir: str,
                          height: int,
                          width: int,
                          seed: int = 0,
                          resolution: float = 0.25,
                          dsm_factor: int = 1,
                          tile: int = 512,
                          origin: Tuple[float, float] = SCENE_ORIGIN
                          ) -> Dict[str, str]:
    """Write ``rgb.tif``, ``dsm.tif`` and ``label.tif`` of one scene.

    The scene is a mosaic of :func:`synthesize_tile` tiles of ``tile``
    pixels (so it is written tile by tile, in bounded memory, at any size),
    georeferenced in :data:`SCENE_CRS` with ``resolution`` metres per RGB
    pixel. The DSM (float32, no-data -9999 declared in the file) has
    ``dsm_factor`` times coarser pixels (every ``dsm_factor``-th sample),
    as real DSMs often do; the labels (uint8, ISPRS palette as colour
    table) are on the RGB grid. All files are tiled, deflate-compressed
    GeoTIFFs. ``origin``: (west, north) of the scene in metres.

    Returns:
        dict: ``rgb``, ``dsm``, ``label`` -> path.
    """
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    if tile % dsm_factor:
        raise ValueError(f'tile={tile} must be a multiple of '
                         f'dsm_factor={dsm_factor}')
    os.makedirs(out_dir, exist_ok=True)
    west, north = origin
    common = dict(driver='GTiff', crs=SCENE_CRS, tiled=True, blockxsize=256,
                  blockysize=256, compress='deflate')
    dsm_hw = (-(-height // dsm_factor), -(-width // dsm_factor))
    paths = {k: osp.join(out_dir, f'{k}.tif')
             for k in ('rgb', 'dsm', 'label')}
    profiles = dict(
        rgb=dict(count=3, dtype='uint8', height=height, width=width,
                 transform=from_origin(west, north, resolution, resolution),
                 photometric='RGB'),
        dsm=dict(count=1, dtype='float32', height=dsm_hw[0],
                 width=dsm_hw[1], nodata=NODATA,
                 transform=from_origin(west, north, resolution * dsm_factor,
                                       resolution * dsm_factor)),
        label=dict(count=1, dtype='uint8', height=height, width=width,
                   transform=from_origin(west, north, resolution,
                                         resolution)))
    files = {k: rasterio.open(paths[k], 'w', **common, **p)
             for k, p in profiles.items()}
    try:
        files['label'].write_colormap(
            1, {i: tuple(c) for i, c in enumerate(ISPRS_PALETTE)})
        for y in range(0, height, tile):
            for x in range(0, width, tile):
                h, w = min(tile, height - y), min(tile, width - x)
                rng = np.random.default_rng([seed, y, x])
                rgb, dsm, label = synthesize_tile(rng, *_tile_hw(h, w))
                rgb, dsm, label = rgb[:h, :w], dsm[:h, :w], label[:h, :w]
                win = Window(x, y, w, h)
                files['rgb'].write(np.moveaxis(rgb, -1, 0), window=win)
                files['label'].write(label[None], window=win)
                f = dsm_factor
                sub = dsm[::f, ::f]
                files['dsm'].write(
                    sub[None], window=Window(x // f, y // f, sub.shape[1],
                                             sub.shape[0]))
    finally:
        for f in files.values():
            f.close()
    return paths


def _tile_hw(h: int, w: int) -> Tuple[int, int]:
    # the tile generator needs sides >= 32; edge tiles are cropped
    return max(h, 32), max(w, 32)


#: DSM grid of a scene of the set, against the RGB's: ``DSM_SHIFT`` DSM
#: pixels more to the west and north, ``DSM_CUT`` DSM columns fewer in the
#: east (that strip of the scene has no heights).
DSM_SHIFT = (3, 2)
DSM_CUT = 6


def write_synthetic_scene_set(out_dir: str,
                              num_scenes: int = 3,
                              height: int = 256,
                              width: int = 320,
                              seed: int = 0) -> str:
    """Write ``num_scenes`` scenes and their scene list ``scenes.csv``.

    Scene ``i`` (folder ``scene_i``, origin 1 km east of scene ``i - 1``):
    ``rgb.tif`` (0.25 m), ``dsm.tif`` (1 m, on another extent: shifted by
    :data:`DSM_SHIFT` pixels west / north, :data:`DSM_CUT` columns short in
    the east, no-data -9999), ``label.tif`` (the classes on the RGB grid),
    ``labels.geojson`` (the same classes as polygons, property ``class``,
    polygonised from ``label.tif`` so that rasterising them gives it back),
    ``aoi.geojson`` (a pentagon inside the scene). Both GeoJSON files state
    the scene's CRS (legacy ``crs`` member). The last scene is split
    ``val``, the others ``train``.

    Returns:
        str: The scene list's path.
    """
    import rasterio
    from rasterio import features
    from rasterio.transform import from_origin

    rows = []
    for i in range(num_scenes):
        folder = osp.join(out_dir, f'scene_{i}')
        west, north = SCENE_ORIGIN[0] + 1000.0 * i, SCENE_ORIGIN[1]
        paths = write_synthetic_scene(folder, height, width, seed=seed + i,
                                      dsm_factor=4, tile=128,
                                      origin=(west, north))
        with rasterio.open(paths['dsm']) as src:
            dsm, profile, res = src.read(1), src.profile, src.res[0]
        sx, sy = DSM_SHIFT
        dsm = np.pad(dsm, ((sy, 0), (sx, 0)), constant_values=NODATA)
        dsm = dsm[:, :dsm.shape[1] - sx - DSM_CUT]
        profile.update(height=dsm.shape[0], width=dsm.shape[1],
                       transform=from_origin(west - sx * res,
                                             north + sy * res, res, res))
        with rasterio.open(paths['dsm'], 'w', **profile) as dst:
            dst.write(dsm[None])
        crs = dict(type='name', properties=dict(name=SCENE_CRS))
        with rasterio.open(paths['label']) as src:
            shapes = features.shapes(src.read(1), transform=src.transform)
            polygons = [dict(type='Feature', geometry=geom,
                             properties={'class': int(value)})
                        for geom, value in shapes]
            left, bottom, right, top = src.bounds
        _write_geojson(osp.join(folder, 'labels.geojson'), polygons, crs)
        w, h = right - left, top - bottom
        ring = [(left + 0.1 * w, bottom + 0.1 * h),
                (left + 0.7 * w, bottom + 0.05 * h),
                (left + 0.85 * w, bottom + 0.6 * h),
                (left + 0.4 * w, bottom + 0.9 * h),
                (left + 0.05 * w, bottom + 0.5 * h)]
        aoi = dict(type='Feature', properties={},
                   geometry=dict(type='Polygon',
                                 coordinates=[ring + ring[:1]]))
        _write_geojson(osp.join(folder, 'aoi.geojson'), [aoi], crs)
        rows.append(dict(
            name=f'scene_{i}', rgb=f'scene_{i}/rgb.tif',
            dsm=f'scene_{i}/dsm.tif', labels=f'scene_{i}/labels.geojson',
            aoi=f'scene_{i}/aoi.geojson',
            split='val' if i == num_scenes - 1 and num_scenes > 1
            else 'train'))
    path = osp.join(out_dir, 'scenes.csv')
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _write_geojson(path: str, features: list, crs: dict) -> None:
    with open(path, 'w') as f:
        json.dump(dict(type='FeatureCollection', crs=crs,
                       features=features), f)
