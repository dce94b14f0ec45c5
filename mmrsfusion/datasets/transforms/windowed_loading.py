"""Training samples read by window: draw the random crop from the tile's
size, then read only that window of every modality file and the label."""
import os.path as osp
import warnings
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from mmseg.datasets.transforms import RandomCrop
from mmseg.registry import TRANSFORMS
from mmrsfusion.io import (TIFF_SUFFIXES, check_not_all_nodata, nodata_mask,
                           read_raster)
from mmrsfusion.io.raster_window import Window, WindowReader
from mmrsfusion.utils import Modality, ModalitySpec
from .loading import LoadMultiModalImageFromFiles

#: How to convert whole-tile rasters into tiled TIFFs (named in warnings).
RETILE_HINT = 'mmrsfusion convert retile DATA_ROOT'


class _LazyRaster:
    """A raster's ``shape`` and ``[y0:y1, x0:x1, ...]`` slices, read on
    demand: what :meth:`RandomCrop.crop_bbox` needs of ``img`` and
    ``gt_seg_map``."""

    def __init__(self, shape: Tuple[int, int], read) -> None:
        self.shape = shape
        self._read = read

    def __getitem__(self, index) -> np.ndarray:
        rows, cols = index[:2]
        return self._read((rows.start, rows.stop, cols.start, cols.stop))


@TRANSFORMS.register_module()
class LoadMultiModalRandomWindow(LoadMultiModalImageFromFiles):
    """``LoadMultiModalImageFromFiles`` + ``LoadAnnotations`` +
    ``RandomCrop`` in one step that reads only the crop.

    The crop is drawn by mmseg's :class:`RandomCrop` (same random calls,
    ``cat_max_ratio`` re-draws included) from the tile's size, read from
    the file headers; then only that window is read from every modality
    file and the label. With the same numpy random state the result equals
    the three transforms run on the whole tile: ``img`` (crop, float32,
    modalities stacked), ``gt_seg_map``, ``img_shape`` (the crop's),
    ``ori_shape`` (the tile's), ``modalities``, ``modality_paths``.

    Elevation is min-max normalised with the range of the *whole tile*:
    ``results['elevation_range'][key]`` when the dataset gives it (the
    converters' ``conversion.json``), else the range is computed once per
    file from a full read, with the loader's no-data rule, and kept.
    An elevation ``norm='zscore'`` needs whole-tile statistics that are not
    recorded: use the three transforms instead.

    Windowed reads need local TIFFs, read with rasterio
    (:class:`~mmrsfusion.io.raster_window.WindowReader`: GDAL's windowed
    reads and bounded block cache, the files kept open in each dataloader
    worker, opened there); tiled ones (written by the converters, or by
    ``tools/dataset_converters/retile.py`` for data converted before) make
    a window cost a few tiles. Any other file (PNG, remote storage) is read
    whole and cropped, with one warning naming the file and the re-tiling
    command.

    Args:
        modalities, path_keys, backend_args: As for
            :class:`LoadMultiModalImageFromFiles`.
        crop_size (int | tuple[int, int]): ``(h, w)`` of the crop.
        cat_max_ratio (float): As for :class:`RandomCrop`. Defaults to 1.
        ignore_index (int): As for :class:`RandomCrop`. Defaults to 255.
        with_seg (bool): Read the label (``seg_map_path``). Defaults to
            True.
        reduce_zero_label (bool, optional): As for mmseg's
            ``LoadAnnotations``; None takes the data info's.

    Raises:
        ValueError: an elevation ``norm='zscore'``; files of one tile with
            different sizes (both named); see the base class.
    """

    def __init__(self,
                 modalities: Union[ModalitySpec, Sequence[dict]],
                 crop_size: Union[int, Tuple[int, int]],
                 cat_max_ratio: float = 1.,
                 ignore_index: int = 255,
                 with_seg: bool = True,
                 reduce_zero_label: Optional[bool] = None,
                 **kwargs) -> None:
        super().__init__(modalities, **kwargs)
        zscore = [m.name for m in self.modalities if m.norm == 'zscore']
        if zscore:
            raise ValueError(
                f"LoadMultiModalRandomWindow: modalities {zscore} have "
                f"norm='zscore', which needs the mean / std of the whole "
                f"tile, not recorded; use 'minmax' or None, or "
                f'LoadMultiModalImageFromFiles + LoadAnnotations + '
                f'RandomCrop')
        self.cropper = RandomCrop(crop_size, cat_max_ratio, ignore_index)
        self.with_seg = with_seg
        self.reduce_zero_label = reduce_zero_label
        self._tile_ranges: Dict[str, Tuple[float, float]] = {}
        self._reader = WindowReader()
        self._warned = set()

    # ----------------------------------------------------------- reading --
    def _warn_once(self, path: str, what: str) -> None:
        if path not in self._warned:
            self._warned.add(path)
            warnings.warn(f'{path} {what}. Convert the data set once with '
                          f'`{RETILE_HINT}` for windowed reads.')

    @staticmethod
    def _is_local_tiff(path: str) -> bool:
        return osp.splitext(path)[1].lower() in TIFF_SUFFIXES and \
            osp.isfile(path)

    def _read_window(self, path: str,
                     window: Window) -> Tuple[np.ndarray, Optional[float]]:
        if self._is_local_tiff(path):
            return self._reader.read(path, window)
        arr, nodata = read_raster(path, self.backend_args, with_nodata=True)
        y0, y1, x0, x1 = window
        return arr[y0:y1, x0:x1], nodata

    def _shape(self, path: str) -> Tuple[int, int]:
        """(H, W) from the header of a local TIFF, else from a full read
        (with a warning: such files are read whole for every window)."""
        if not self._is_local_tiff(path):
            self._warn_once(path, 'is not a local TIFF: each training '
                            'sample reads the whole file')
            return read_raster(path, self.backend_args).shape[:2]
        shape = self._reader.shape(path)
        crop_h, crop_w = self.cropper.crop_size
        # a stripped file no larger than a crop is read whole either way
        # (e.g. scenes_to_tiles' small tiles, which GDAL writes in strips)
        if not self._reader.tiled(path) and (shape[0] > crop_h
                                             or shape[1] > crop_w):
            self._warn_once(path, 'is a stripped TIFF: each window decodes '
                            'whole rows of the tile')
        return shape

    def _read(self, path: str,
              results: dict) -> Tuple[np.ndarray, Optional[float]]:
        return self._read_window(path, results['crop_window'])

    def _tile_range(self, mod: Modality,
                    path: str) -> Tuple[float, float]:
        """Min / max of the valid values of a whole elevation file."""
        if path not in self._tile_ranges:
            arr, file_nodata = read_raster(
                path, self.backend_args, with_nodata=True)
            if arr.shape[2] != 1:
                raise ValueError(
                    f'{path}: {arr.shape[2]}-band elevation without a '
                    f'recorded range (elevation_range); only 1-band files '
                    f'get their range computed')
            nodata = self.nodata_values(mod, file_nodata)
            invalid = nodata_mask(arr, nodata)
            check_not_all_nodata(invalid, path, 0, nodata)
            valid = arr[~invalid]
            self._tile_ranges[path] = (float(valid.min()),
                                       float(valid.max()))
        return self._tile_ranges[path]

    def _label(self, results: dict, window: Window) -> np.ndarray:
        """The label window, mapped as mmseg's ``LoadAnnotations`` maps
        it (its ``_load_seg_map`` maps right after reading the whole file,
        so it cannot be called on a window; a test holds the two equal)."""
        seg = self._read_window(results['seg_map_path'], window)[0]
        seg = seg[..., 0].astype(np.uint8)
        reduce_zero_label = self.reduce_zero_label
        if reduce_zero_label is None:
            reduce_zero_label = results.get('reduce_zero_label', False)
        if reduce_zero_label:
            seg[seg == 0] = 255
            seg = seg - 1
            seg[seg == 254] = 255
        if results.get('label_map') is not None:
            original = seg.copy()
            for old_id, new_id in results['label_map'].items():
                seg[original == old_id] = new_id
        return seg

    # --------------------------------------------------------- transform --
    def transform(self, results: dict) -> dict:
        paths = {m.name: results.get(self.path_keys[m.name])
                 for m in self.modalities}
        if self.with_seg:
            paths['label'] = results['seg_map_path']
        shapes = {
            name: self._shape(path)
            for name, path in paths.items() if path is not None
        }
        (first, shape), *others = shapes.items()
        for name, other in others:
            if other != shape:
                raise ValueError(
                    f'tiles of mismatched sizes: {paths[first]} is '
                    f'{shape[0]}x{shape[1]} (HxW) but {paths[name]} '
                    f"({name}) is {other[0]}x{other[1]}")
        label = None
        if self.with_seg:
            label = _LazyRaster(shape,
                                lambda window: self._label(results, window))
        y0, y1, x0, x1 = self.cropper.crop_bbox(
            dict(img=_LazyRaster(shape, None), gt_seg_map=label))
        window = (y0, min(y1, shape[0]), x0, min(x1, shape[1]))

        given = results.get('elevation_range')
        ranges = dict(given or {})
        for mod in self.modalities:
            key = self.path_keys[mod.name]
            if mod.norm == 'minmax' and key not in ranges and \
                    paths[mod.name] is not None:
                ranges[key] = self._tile_range(mod, paths[mod.name])
        # the base class reads both; the data info is left as it came
        results.update(elevation_range=ranges, crop_window=window)
        results = super().transform(results)
        del results['crop_window'], results['elevation_range']
        if given is not None:
            results['elevation_range'] = given
        results['ori_shape'] = shape
        if self.with_seg:
            results['gt_seg_map'] = self._label(results, window)
            results.setdefault('seg_fields', []).append('gt_seg_map')
        return results

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] +
                f', crop_size={self.cropper.crop_size}, '
                f'cat_max_ratio={self.cropper.cat_max_ratio})')
