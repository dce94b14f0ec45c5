"""Clipping windows and converting one tile: read, check, map labels, clip
and write every modality of the converted layout."""
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from mmrsfusion.io import WrittenFileError, verify_written
from .labels import colour_to_index, is_colour_label
from .layout import (BOUNDARY_COLOUR, LAYOUT, MAX_UNKNOWN_FRACTION,
                     NODATA_VALUES, PALETTE, ROLE_NAMES, TILE_SIZE,
                     ConversionError)
from .raw_file import RawFile
from .readers import read_colour_label, read_dsm, read_gray, read_optical


def clip_starts(length: int, clip: int, stride: int) -> List[int]:
    """Start offsets of windows of ``clip`` pixels every ``stride`` pixels
    along an axis of ``length`` pixels. The last window is flush with the
    border, so every pixel is covered; a side shorter than ``clip`` gives
    one window (of the side's length)."""
    if clip <= 0 or stride <= 0:
        raise ValueError(f'clip ({clip}) and stride ({stride}) must be > 0')
    if stride > clip:
        raise ValueError(f'stride ({stride}) larger than clip ({clip}) '
                         'would leave pixels uncovered')
    if length <= clip:
        return [0]
    starts = list(range(0, length - clip + 1, stride))
    if starts[-1] + clip < length:
        starts.append(length - clip)
    return starts


def clip_boxes(height: int, width: int, clip: Optional[int],
               stride: Optional[int]) -> List[Tuple[int, int, int, int]]:
    """Boxes ``(x0, y0, x1, y1)`` in row-major order; ``clip=None`` gives
    the whole tile."""
    if clip is None:
        return [(0, 0, width, height)]
    stride = clip if stride is None else stride
    return [(x, y, min(x + clip, width), min(y + clip, height))
            for y in clip_starts(height, clip, stride)
            for x in clip_starts(width, clip, stride)]


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------
def write_tiff(path: str, arr: np.ndarray, nodata: Optional[float] = None
               ) -> None:
    """Write ``arr`` (H x W or H x W x C) as a tiled, zlib-compressed TIFF,
    with a ``GDAL_NODATA`` tag when ``nodata`` is given."""
    import tifffile
    kwargs = dict(compression='zlib', tile=TILE_SIZE)
    if arr.ndim == 3:
        kwargs['photometric'] = 'rgb'
        if arr.shape[-1] > 3:
            kwargs['extrasamples'] = ['unspecified'] * (arr.shape[-1] - 3)
    else:
        kwargs['photometric'] = 'minisblack'
    if nodata is not None:
        kwargs['extratags'] = [(42113, 's', 0, repr(float(nodata)), True)]
    tifffile.imwrite(path, np.ascontiguousarray(arr), **kwargs)


def elevation_valid(arr: np.ndarray,
                    nodata: Optional[float] = None) -> np.ndarray:
    """Mask of the valid values of an elevation raster (no-data: non-finite,
    :data:`NODATA_VALUES` and ``nodata``, e.g. the TIFF's GDAL_NODATA)."""
    valid = np.isfinite(arr)
    for v in NODATA_VALUES + ((nodata, ) if nodata is not None else ()):
        valid &= arr != v
    return valid


def elevation_stats(arr: np.ndarray,
                    nodata: Optional[float] = None) -> Dict[str, object]:
    """Min / max over the valid values of an elevation raster (see
    :func:`elevation_valid`)."""
    valid = elevation_valid(arr, nodata)
    n_valid = int(valid.sum())
    return dict(
        min=float(arr[valid].min()) if n_valid else None,
        max=float(arr[valid].max()) if n_valid else None,
        nodata_pixels=int(arr.size - n_valid),
        nodata_value=nodata)


@dataclass(frozen=True)
class TileJob:
    """Everything a worker needs to convert one tile (picklable)."""
    tile: str
    split: str
    sources: Dict[str, RawFile]
    staging: str
    clip_size: Optional[int]
    stride_size: Optional[int]
    tolerance: int
    elevation_mismatch: str
    optical_bands: Optional[int]


def convert_tile(job: TileJob) -> Dict[str, object]:
    """Read, check and write one tile; returns its manifest entry.

    All of a tile's rasters are read and checked before any is written;
    every file written is read back and checked (:func:`verify_written`).
    """
    img_src = job.sources['img']
    arrays = {'img': read_optical(img_src, job.optical_bands)}
    if is_colour_label(arrays['img']):
        raise ConversionError(
            f'Tile {job.tile}: {img_src} was found as the optical image but '
            'is a colour-coded label (its pixels are the ISPRS class '
            'colours). Ground truth is never used as the image: put it in an '
            'archive or folder whose name marks ground truth (e.g. '
            '*ground_truth*), and the image where it belongs.')
    height, width = arrays['img'].shape[:2]
    info: Dict[str, object] = dict(
        split=job.split, height=height, width=width,
        sources={role: str(raw) for role, raw in job.sources.items()},
        img_dtype=str(arrays['img'].dtype),
        img_max=arrays['img'].max().item())
    messages: List[str] = []
    for role in ('dsm', 'ndsm'):
        if role not in job.sources:
            continue
        raw = job.sources[role]
        if role == 'dsm':
            arr, nodata = read_dsm(raw)
        else:
            arr, nodata = read_gray(raw), None
        if arr.shape != (height, width):
            if job.elevation_mismatch != 'resize':
                raise ConversionError(
                    f'Tile {job.tile}: size mismatch between the '
                    f'{ROLE_NAMES[role]} {raw} ({arr.shape[0]} x '
                    f'{arr.shape[1]}, H x W) and the optical image '
                    f'{img_src} ({height} x {width}). Nothing was written. '
                    'Check the download, or pass --elevation-mismatch '
                    'resize to resample the elevation to the image size '
                    '(nearest neighbour).')
            import cv2
            messages.append(
                f'Tile {job.tile}: {ROLE_NAMES[role]} {raw} ({arr.shape[0]} '
                f'x {arr.shape[1]}) resampled to the size of {img_src} '
                f'({height} x {width}) by nearest neighbour.')
            info.setdefault('resized', []).append(role)
            arr = cv2.resize(arr, (width, height),
                             interpolation=cv2.INTER_NEAREST)
        info[f'{role}_stats'] = elevation_stats(arr, nodata)
        if role == 'dsm':
            # one no-data convention in the output, whatever the source
            # used (-9999, a GDAL_NODATA tag, NaN): NaN
            arr = np.where(elevation_valid(arr, nodata), arr,
                           np.float32(np.nan))
        arrays[role] = arr
    for role in ('ann', 'ann_eroded'):
        if role not in job.sources:
            continue
        raw = job.sources[role]
        rgb = read_colour_label(raw)
        if rgb.shape[:2] != (height, width):
            raise ConversionError(
                f'Tile {job.tile}: size mismatch between the '
                f'{ROLE_NAMES[role]} {raw} ({rgb.shape[0]} x {rgb.shape[1]},'
                f' H x W) and the optical image {img_src} ({height} x '
                f'{width}). Labels are never resampled.')
        ignore = (BOUNDARY_COLOUR, ) if role == 'ann_eroded' else ()
        index, stats = colour_to_index(rgb, PALETTE, ignore, job.tolerance)
        if stats['unknown'] > MAX_UNKNOWN_FRACTION * index.size:
            raise ConversionError(
                f'Tile {job.tile}: {raw} does not look like an ISPRS '
                f'colour-coded {ROLE_NAMES[role]}: {stats["unknown"]} of '
                f'{index.size} pixels are farther than {job.tolerance} '
                'levels from every class colour. Is it an image in an '
                'archive or folder that looked like ground truth?')
        info[f'{role}_colours'] = stats
        arrays[role] = index

    whole = job.clip_size is None
    boxes = clip_boxes(height, width, job.clip_size, job.stride_size)
    for role in arrays:
        os.makedirs(osp.join(job.staging, LAYOUT[role][0], job.split),
                    exist_ok=True)
    for x0, y0, x1, y1 in boxes:
        stem = job.tile if whole else f'{job.tile}_{x0}_{y0}_{x1}_{y1}'
        for role, arr in arrays.items():
            folder, ext = LAYOUT[role]
            path = osp.join(job.staging, folder, job.split, stem + ext)
            write_tiff(path, arr[y0:y1, x0:x1])
            try:
                verify_written(path, arr[y0:y1, x0:x1])
            except WrittenFileError as e:
                raise ConversionError(f'Tile {job.tile}: {e}') from e
    info['clips'] = len(boxes)
    info['messages'] = messages
    return info
