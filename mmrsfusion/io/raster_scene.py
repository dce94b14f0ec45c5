"""The input rasters of a scene, read window by window on one pixel grid."""
import warnings
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import rasterio
from rasterio import windows
from rasterio.dtypes import in_dtype_range
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import (NotGeoreferencedWarning, RasterioIOError,
                             WarpOperationError)
from rasterio.vrt import WarpedVRT
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window

from mmrsfusion.utils.modality_spec import Modality, ModalitySpec
from .elevation import nodata_mask

#: (y0, y1, x0, x1) in pixels of the reference grid.
Span = Tuple[int, int, int, int]

#: Resampling of each modality kind onto the reference grid (all kinds are
#: continuous; a categorical kind would use ``Resampling.nearest``).
RESAMPLING = dict(
    optical=Resampling.bilinear,
    elevation=Resampling.bilinear,
    band=Resampling.bilinear)


def _bit_depth_mismatch(mod: Modality, arr: np.ndarray) -> bool:
    """Whether optical values ``arr`` exceed the 8-bit range (by 1 %)
    that ``mod``'s mean / std (all below 256) were computed on."""
    stats = (mod.mean or ()) + (mod.std or ())
    return bool(stats) and max(stats) < 256 and arr.size > 0 and \
        float(arr.max()) > 255 * 1.01


class WindowWarp:
    """A raster on another grid read window by window on the reference
    grid: each read warps the window's pixels only, with GDAL's warper
    (:func:`rasterio.warp.reproject`, the options of the
    :class:`WarpedVRT` it replaces: the same values), and takes validity
    from the warped values.

    A WarpedVRT warps whole blocks of 512 x 128 pixels for any window
    (a 128 x 128 window: up to four blocks, 16 times its pixels) and its
    dataset mask warps them again; this reader is for sources whose only
    mask is their no-data value (or none), where the warped values say
    all: a pixel is valid where any band is not ``nodata`` (GDAL's no-data
    mask, as ``dataset_mask`` has it).

    Args:
        ds: The source dataset (all bands of one dtype).
        crs, transform: The reference grid.
        resampling (Resampling): The warp's resampling.
        nodata (float): The source's no-data value (and the warped one's,
            where the source does not cover).
    """

    def __init__(self, ds, crs, transform, resampling: Resampling,
                 nodata: float) -> None:
        self.ds, self.crs, self.transform = ds, crs, transform
        self.resampling, self.nodata = resampling, nodata

    @staticmethod
    def fits(ds, nodata: Optional[float]) -> bool:
        """Whether ``ds`` can be read so: a no-data value its dtype holds,
        no mask but no-data's (no alpha, no internal mask), one dtype."""
        return nodata is not None and len(set(ds.dtypes)) == 1 and \
            in_dtype_range(nodata, ds.dtypes[0]) and all(
                flags in ([MaskFlags.nodata], [MaskFlags.all_valid])
                for flags in ds.mask_flag_enums)

    def read(self, indexes: Sequence[int], window: Window
             ) -> Tuple[np.ndarray, np.ndarray]:
        """Bands ``indexes`` (1-based) over ``window`` of the reference
        grid: values (len(indexes), h, w) in the source's dtype (``nodata``
        where invalid) and ``valid`` (h, w) bool."""
        h, w = int(window.height), int(window.width)
        out = np.empty((self.ds.count, h, w), self.ds.dtypes[0])
        reproject(
            rasterio.band(self.ds, list(range(1, self.ds.count + 1))), out,
            src_nodata=self.nodata, dst_nodata=self.nodata,
            dst_transform=windows.transform(window, self.transform),
            dst_crs=self.crs, resampling=self.resampling,
            init_dest_nodata=True)
        invalid = np.isnan(out) if np.isnan(self.nodata) \
            else out == self.nodata
        valid = ~invalid.all(0)
        if list(indexes) == list(range(1, self.ds.count + 1)):
            return out, valid  # all bands in order: no copy
        return out[[i - 1 for i in indexes]], valid


class RasterScene:
    """The input files of a scene, one per present modality, read window by
    window on the pixel grid of the reference input.

    The reference is the first modality of the spec that is given; its CRS,
    transform and size define the scene. An input on another grid (another
    resolution, extent or CRS) is resampled on the fly with a
    :class:`rasterio.vrt.WarpedVRT` (:data:`RESAMPLING` per kind; pixels it
    does not cover are no-data). Inputs without a CRS (plain TIFF, PNG)
    must have the reference's size and are taken as pixel-aligned, unless
    their geotransform puts them elsewhere on the reference's grid (an
    error naming the offset).

    Validity per pixel: the file's dataset mask (no-data value, internal
    mask or alpha) and, for elevation, values that are NaN / inf or one of
    the spec entry's ``nodata`` (the training loader's rule). An elevation
    file without a no-data value is warped with the entry's first
    ``nodata`` as its no-data, so that no-data never leaks into resampled
    values.

    Args:
        paths (dict): Modality name -> file, for the present modalities.
        modalities (ModalitySpec): The model's spec.
        bands (dict, optional): Modality name -> 0-based band indices to
            read, instead of the spec entry's ``bands``; default all bands
            of the file.

    Raises:
        ValueError: A name not in the spec, a band count that does not
            match the spec, inputs that do not overlap or whose CRS cannot
            be related (both files named).
    """

    def __init__(self,
                 paths: Mapping[str, str],
                 modalities: ModalitySpec,
                 bands: Optional[Mapping[str, Sequence[int]]] = None
                 ) -> None:
        modalities.check_names(list(paths), '--input')
        if not paths:
            raise ValueError(f'no input given; expected files for some of '
                             f'{list(modalities.names)}')
        self.modalities = [m for m in modalities if m.name in paths]
        self.paths = {m.name: paths[m.name] for m in self.modalities}
        self._datasets: Dict[str, rasterio.io.DatasetReader] = {}
        self._readers = {}
        #: datasets and readers of :meth:`open_on_grid`
        self._extra = []
        #: modality -> 1-based band indexes read from its file
        self.bands: Dict[str, List[int]] = {}
        #: optical modalities already warned of for their value range
        self._warned = set()
        try:
            self._open(dict(bands or {}))
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ opening --
    def _open(self, bands: Dict[str, Sequence[int]]) -> None:
        for mod in self.modalities:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', NotGeoreferencedWarning)
                try:
                    ds = rasterio.open(self.paths[mod.name])
                except RasterioIOError as e:
                    raise FileNotFoundError(
                        f"modality '{mod.name}': cannot open "
                        f'{self.paths[mod.name]} ({e})') from e
            self._datasets[mod.name] = ds
            self.bands[mod.name] = self._select_bands(
                mod, ds, bands.get(mod.name, mod.bands))
        ref = self.modalities[0]
        ref_ds = self._datasets[ref.name]
        self.reference = ref.name
        self.height, self.width = ref_ds.height, ref_ds.width
        self.crs = ref_ds.crs
        self.transform = ref_ds.transform
        for mod in self.modalities:
            self._readers[mod.name] = self._reader(mod, ref_ds)

    def _select_bands(self, mod: Modality, ds,
                      selected: Optional[Sequence[int]]) -> List[int]:
        path = self.paths[mod.name]
        if selected is None:
            selected = range(ds.count)
        selected = [int(b) for b in selected]
        bad = [b for b in selected if not 0 <= b < ds.count]
        if bad:
            raise ValueError(f"{path}: modality '{mod.name}' selects bands "
                             f'{selected} but the file has {ds.count}')
        if len(selected) != mod.channels:
            raise ValueError(
                f"{path}: modality '{mod.name}' expects {mod.channels} "
                f'channel(s) (modality spec) but got {len(selected)} band(s)'
                f'; select bands with --bands {mod.name}=i,j,...')
        return [b + 1 for b in selected]  # rasterio counts from 1

    def _reader(self, mod: Modality, ref_ds):
        ds = self._datasets[mod.name]
        if ds is ref_ds:
            return ds
        nodata = ds.nodata
        if nodata is None and mod.nodata:
            nodata = mod.nodata[0]
        return self._on_grid(ds, self.paths[mod.name], RESAMPLING[mod.kind],
                             nodata, per_window=True)

    def _on_grid(self, ds, path: str, resampling: Resampling,
                 nodata: Optional[float], per_window: bool = False):
        """``ds`` (opened from ``path``) as a reader on the reference grid:
        itself when it is on that grid (or pixel-aligned without a CRS),
        else a :class:`WarpedVRT` (``resampling``; ``nodata`` where it does
        not cover, or an alpha band when None), or with ``per_window`` a
        :class:`WindowWarp` where it fits."""
        ref_ds = self._datasets[self.reference]
        ref_path = self.paths[self.reference]
        if ds.crs is None or ref_ds.crs is None:
            if (ds.height, ds.width) != (ref_ds.height, ref_ds.width):
                which = path if ds.crs is None else ref_path
                raise ValueError(
                    f'cannot relate {path} ({ds.height}x{ds.width}) to '
                    f'{ref_path} ({ref_ds.height}x{ref_ds.width}): {which} '
                    f'has no CRS, so both must be pixel-aligned rasters of '
                    f'the same size (or both georeferenced)')
            self._check_same_grid(ds, ref_ds, path, ref_path)
            return ds
        if (ds.crs == ref_ds.crs and ds.transform == ref_ds.transform
                and (ds.height, ds.width) == (ref_ds.height, ref_ds.width)):
            return ds
        try:
            bounds = transform_bounds(ds.crs, ref_ds.crs, *ds.bounds)
        except Exception as e:  # CRSError, projection errors
            raise ValueError(
                f'cannot relate the CRS of {path} ({ds.crs}) to that of '
                f'{ref_path} ({ref_ds.crs}): {e}') from e
        left, bottom, right, top = ref_ds.bounds
        if not np.all(np.isfinite(bounds)) or bounds[0] >= right or \
                bounds[2] <= left or bounds[1] >= top or bounds[3] <= bottom:
            raise ValueError(
                f'{path} and {ref_path} do not overlap: {path} covers '
                f'{tuple(round(float(b), 3) for b in bounds)} and {ref_path} '
                f'covers {tuple(ref_ds.bounds)} (left, bottom, right, top '
                f'in {ref_ds.crs})')
        if per_window and WindowWarp.fits(ds, nodata):
            return WindowWarp(ds, ref_ds.crs, ref_ds.transform, resampling,
                              nodata)
        options = dict(src_nodata=nodata, nodata=nodata) \
            if nodata is not None else dict(add_alpha=True)
        return WarpedVRT(
            ds,
            crs=ref_ds.crs,
            transform=ref_ds.transform,
            width=ref_ds.width,
            height=ref_ds.height,
            resampling=resampling,
            **options)

    def open_on_grid(self, path: str, resampling: Resampling,
                     nodata: Optional[float] = None):
        """Another raster of the scene (e.g. its class labels), opened as a
        reader on the reference grid (see :meth:`_on_grid`; ``nodata``
        where the file has none); closed with the scene.

        Raises:
            FileNotFoundError: ``path`` cannot be opened.
            ValueError: It cannot be related to the reference grid.
        """
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', NotGeoreferencedWarning)
            try:
                ds = rasterio.open(path)
            except RasterioIOError as e:
                raise FileNotFoundError(f'cannot open {path} ({e})') from e
        self._extra.append(ds)
        reader = self._on_grid(
            ds, path, resampling, ds.nodata if ds.nodata is not None
            else nodata)
        if reader is not ds:
            self._extra.append(reader)
        return reader

    @staticmethod
    def _check_same_grid(ds, ref_ds, path: str, ref_path: str) -> None:
        """Two rasters of which one has no CRS are pixel-aligned only if
        either has no geotransform or their geotransforms agree; else a
        ValueError naming the file and the offset."""
        t, ref = ds.transform, ref_ds.transform
        if t.is_identity or ref.is_identity or t.almost_equals(ref):
            return
        which = path if ds.crs is None else ref_path
        dx, dy = t.c - ref.c, t.f - ref.f
        raise ValueError(
            f'{which} has a geotransform but no CRS, and it puts {path} off '
            f'the grid of {ref_path}: origin offset ({dx:g}, {dy:g}) map '
            f'units = ({dx / ref.a:g}, {dy / ref.e:g}) pixels, pixel size '
            f'({t.a:g}, {t.e:g}) vs ({ref.a:g}, {ref.e:g}); give it the CRS '
            f'of the other, or drop its geotransform to take it as '
            f'pixel-aligned')

    # ------------------------------------------------------------ reading --
    def read(self, name: str, span: Span) -> Tuple[np.ndarray, np.ndarray]:
        """Modality ``name`` over ``span`` of the reference grid.

        Returns:
            tuple: values (h, w, channels) in the file's dtype (float64 for
            elevation, invalid pixels NaN) and ``valid`` (h, w) bool.
        """
        y0, y1, x0, x1 = span
        window = Window(x0, y0, x1 - x0, y1 - y0)
        reader = self._readers[name]
        try:
            if isinstance(reader, WindowWarp):
                arr, valid = reader.read(self.bands[name], window)
            else:
                arr = reader.read(self.bands[name], window=window)
                valid = reader.dataset_mask(window=window) > 0
            arr = np.moveaxis(arr, 0, -1)
        except (RasterioIOError, WarpOperationError) as e:
            raise ValueError(
                f"{self.paths[name]}: cannot read modality '{name}' at rows "
                f'{y0}:{y1}, columns {x0}:{x1} of the scene (damaged or '
                f'truncated file?): {e}') from e
        mod = next(m for m in self.modalities if m.name == name)
        if mod.kind == 'optical' and name not in self._warned and \
                _bit_depth_mismatch(mod, arr):
            self._warned.add(name)
            warnings.warn(
                f"{self.paths[name]}: modality '{name}' has values up to "
                f'{arr.max():g} but the model\'s mean / std ({mod.mean} / '
                f'{mod.std}) are of 8-bit data: rescale it to 0..255, or '
                f'use a model trained on this range')
        if mod.kind == 'elevation':
            arr = arr.astype(np.float64)
            valid &= ~nodata_mask(arr, mod.nodata).any(-1)
            arr[~valid] = np.nan
        return arr, valid

    def blocks(self, size: int) -> List[Span]:
        """The scene cut into ``size`` x ``size`` blocks, row-major."""
        return [(y, min(y + size, self.height), x, min(x + size, self.width))
                for y in range(0, self.height, size)
                for x in range(0, self.width, size)]

    def elevation_range(self, name: str, block: int) -> Tuple[float, float]:
        """Valid (min, max) of elevation modality ``name`` over the scene,
        read ``block`` x ``block`` pixels at a time (no-data excluded).

        Raises:
            ValueError: The modality has no valid pixel (file named).
        """
        low, high = np.inf, -np.inf
        for span in self.blocks(block):
            arr, valid = self.read(name, span)
            if valid.any():
                values = arr[valid]
                low, high = min(low, values.min()), max(high, values.max())
        if low > high:
            raise ValueError(f'{self.paths[name]}: elevation modality '
                             f"'{name}' is entirely no-data over the scene")
        return float(low), float(high)

    def close(self) -> None:
        for extra in reversed(self._extra):
            extra.close()
        for reader in self._readers.values():
            if isinstance(reader, WarpedVRT):
                reader.close()
        for ds in self._datasets.values():
            ds.close()

    def __enter__(self) -> 'RasterScene':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
