"""A large synthetic scene as georeferenced GeoTIFFs (RGB ortho, DSM,
labels), for mapping whole scenes (``tools/predict_scene.py``)."""
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
                          tile: int = 512) -> Dict[str, str]:
    """Write ``rgb.tif``, ``dsm.tif`` and ``label.tif`` of one scene.

    The scene is a mosaic of :func:`synthesize_tile` tiles of ``tile``
    pixels (so it is written tile by tile, in bounded memory, at any size),
    georeferenced in :data:`SCENE_CRS` with ``resolution`` metres per RGB
    pixel. The DSM (float32, no-data -9999 declared in the file) has
    ``dsm_factor`` times coarser pixels (every ``dsm_factor``-th sample),
    as real DSMs often do; the labels (uint8, ISPRS palette as colour
    table) are on the RGB grid. All files are tiled, deflate-compressed
    GeoTIFFs.

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
    west, north = SCENE_ORIGIN
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
