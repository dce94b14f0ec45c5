"""Rewrite an already-converted data set as tiled TIFFs (what the converters
write now), so that training windows are read without decoding whole
tiles."""
import json
import os
import os.path as osp
from typing import Dict, List

import tifffile

from mmrsfusion.io import (TIFF_SUFFIXES, WrittenFileError, read_raster,
                           verify_written)
from mmrsfusion.utils import Progress
from .layout import LAYOUT, MANIFEST, ConversionError
from .tiles import write_tiff

#: Raster suffixes rewritten (everything else in the folders is left alone).
RETILE_SUFFIXES = TIFF_SUFFIXES + ('.png', )


def _is_tiled(path: str) -> bool:
    if osp.splitext(path)[1].lower() not in TIFF_SUFFIXES:
        return False
    with tifffile.TiffFile(path) as tif:
        return tif.pages[0].is_tiled


def retile(data_root: str, dry_run: bool = False,
           progress: bool = True) -> Dict[str, List[str]]:
    """Rewrite every raster of the layout folders of ``data_root``
    (``img_dir``, ``dsm_dir``, ``ndsm_dir``, ``ann_dir``,
    ``ann_eroded_dir``, at any depth) that is not a tiled TIFF as a tiled,
    zlib-compressed ``.tif`` with the same stem, the same values, dtype and
    band order, and its ``GDAL_NODATA`` tag. A PNG is replaced by the TIFF
    (``STEM.png`` -> ``STEM.tif``). Each file is written to a temporary
    name and renamed over the old one, so an interrupted run leaves every
    file either old or new; running again finishes the job. The
    manifest's layout extensions are updated.

    Args:
        data_root (str): The converted data set.
        dry_run (bool): Only list what would be rewritten.
        progress (bool): Report files checked, elapsed time and ETA
            (:class:`Progress`).

    Returns:
        dict: ``rewritten`` (files rewritten, old names) and ``tiled``
        (files already tiled, left alone).

    Raises:
        ConversionError: No layout folder in ``data_root``, or a stem has
            both a PNG and a TIFF.
    """
    folders = [
        osp.join(data_root, folder) for folder, _ in LAYOUT.values()
        if osp.isdir(osp.join(data_root, folder))
    ]
    if not folders:
        raise ConversionError(
            f'{data_root}: no converted layout folder found (expected some '
            f'of {sorted({f for f, _ in LAYOUT.values()})})')
    done: Dict[str, List[str]] = dict(rewritten=[], tiled=[])
    files = [
        osp.join(parent, name) for folder in folders
        for parent, _, names in sorted(os.walk(folder))
        for name in sorted(names)
        if osp.splitext(name)[1].lower() in RETILE_SUFFIXES
        and not name.startswith('.')
    ]
    bar = Progress(len(files), 'files') if progress else None
    for path in files:
        if bar is not None:
            bar.update()
        parent, name = osp.split(path)
        stem = osp.splitext(name)[0]
        if _is_tiled(path):
            done['tiled'].append(path)
            continue
        target = osp.join(parent, stem + '.tif')
        if target != path and osp.exists(target):
            raise ConversionError(
                f'{path} and {target} both exist; remove one')
        done['rewritten'].append(path)
        if dry_run:
            continue
        arr, nodata = read_raster(path, with_nodata=True)
        # hidden, and a .tif so that it is read back as a TIFF
        tmp = osp.join(parent, f'.{stem}.retile-tmp.tif')
        write_tiff(tmp, arr[..., 0] if arr.shape[2] == 1 else arr, nodata)
        try:
            verify_written(tmp, arr)
        except WrittenFileError as e:
            os.remove(tmp)
            raise ConversionError(str(e)) from e
        os.replace(tmp, target)
        if target != path:
            os.remove(path)
    if bar is not None:
        bar.close()
    manifest = osp.join(data_root, MANIFEST)
    if not dry_run and osp.isfile(manifest):
        with open(manifest) as f:
            info = json.load(f)
        for entry in (info.get('layout') or {}).values():
            if entry.get('ext') == '.png':
                entry['ext'] = '.tif'
        tmp = manifest + '.retile-tmp'
        with open(tmp, 'w') as f:
            json.dump(info, f, indent=1)
        os.replace(tmp, manifest)
    return done
