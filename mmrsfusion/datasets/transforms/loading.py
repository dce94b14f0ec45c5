"""Loading of aligned multimodal tiles into one stacked float32 array."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmseg.registry import TRANSFORMS
from mmrsfusion.io import normalize_elevation, read_raster
from mmrsfusion.utils import Modality, ModalitySpec


@TRANSFORMS.register_module()
class LoadMultiModalImageFromFiles(BaseTransform):
    """Load the aligned files of one tile and stack them in spec order.

    Each modality of the spec is read from the file (or, through the Python
    API, the (H, W[, bands]) array) given by a key of the data info
    (``results``): the first ``'optical'`` modality from
    ``img_path``, every other modality ``name`` from ``'{name}_path'`` (e.g.
    ``dsm_path``), unless ``path_keys`` says otherwise. The arrays are
    converted to float32 and concatenated along channels into
    ``results['img']`` of shape (H, W, sum of ``channels``).

    Per kind:

    - ``'optical'`` and ``'band'``: raw values, no scaling. uint8 images
      stay in [0, 255]; **uint16 images keep their raw values** (e.g.
      0..65535 or 11-bit 0..2047) -- the ``mean`` / ``std`` of the
      modality in the config (used by the data preprocessor) must be in the
      same units, and :class:`OpticalOnly` must be told the range
      (``value_range``) so that 8-bit photometric transforms see 0..255.
    - ``'elevation'`` (DSM / nDSM, float32 TIFF or 8-bit image): normalised
      per tile by :func:`normalize_elevation` as the spec entry's ``norm``
      says (min-max to [0, 1] by default, or z-score, or none); no-data
      (NaN, inf, the entry's ``nodata`` and a TIFF's ``GDAL_NODATA`` value)
      is excluded from the statistics and becomes 0.

    Band selection: a modality may read a subset / reordering of its file's
    bands, given as 0-based indices either by the spec entry (``bands=[3,
    0, 1]``) or by the dataset (``results['bands'][path_key]``, e.g.
    :class:`PotsdamMMDataset` ``optical_bands='IRRG'``). Without one, all
    bands of the file are used. The selected band count must equal the
    modality's ``channels``.

    Missing modalities: a data info key that is present but None (what a
    dataset with ``allow_missing`` gives for a tile without that file)
    makes the modality absent: its channels are zeros (the segmentor
    zeroes them again after normalisation) and ``presence`` marks it False.
    At least one must be present.

    Added keys: ``img`` (float32, H x W x C), ``img_shape``, ``ori_shape``,
    ``modalities`` (the :class:`ModalitySpec`), ``modality_paths`` (name ->
    file), ``modality_bands`` (name -> the file's bands read, None: all),
    ``presence`` (one bool per modality, spec order; the dataset
    packs it).

    Args:
        modalities (ModalitySpec | list[dict]): The modality spec (the
            dataset's, handed down; see
            :mod:`mmrsfusion.utils.modality_spec`).
        path_keys (dict, optional): Modality name -> data info key of its
            file, overriding the default rule above.
        backend_args (dict, optional): mmengine file backend arguments.

    Raises (at load time, each naming the file and what was expected):
        FileNotFoundError: a modality's file is missing, or the data info
            has no path for it.
        ValueError: mismatched tile sizes (both files and sizes named), a
            band count that does not match the spec, band indices out of
            range, an all-no-data elevation tile.
    """

    def __init__(self,
                 modalities: Union[ModalitySpec, Sequence[dict]],
                 path_keys: Optional[Dict[str, str]] = None,
                 backend_args: Optional[dict] = None) -> None:
        self.modalities = ModalitySpec.build(
            modalities, f'{type(self).__name__}.modalities')
        path_keys = dict(path_keys or {})
        self.modalities.check_names(list(path_keys),
                                    f'{type(self).__name__}.path_keys')
        first_optical = next(
            (m.name for m in self.modalities if m.kind == 'optical'), None)
        self.path_keys = {
            m.name: path_keys.get(
                m.name,
                'img_path' if m.name == first_optical else f'{m.name}_path')
            for m in self.modalities
        }
        self.backend_args = backend_args.copy() if backend_args else None

    def _bands(self, mod: Modality, results: dict) -> Optional[Tuple[int]]:
        key = self.path_keys[mod.name]
        from_data = (results.get('bands') or {}).get(key)
        from_spec = mod.bands
        if from_data is not None and from_spec is not None \
                and tuple(from_data) != from_spec:
            raise ValueError(
                f"modality '{mod.name}': the spec selects bands "
                f'{list(from_spec)} but the dataset selects '
                f'{list(from_data)} for {key}; set only one of them')
        bands = from_spec if from_spec is not None else from_data
        return None if bands is None else tuple(bands)

    @staticmethod
    def nodata_values(mod: Modality, file_nodata: Optional[float]) -> tuple:
        """Elevation no-data values of a file: the spec entry's ``nodata``
        and the file's own (``GDAL_NODATA``), if any."""
        return mod.nodata if file_nodata is None else \
            mod.nodata + (file_nodata, )

    def _read(self, path: str,
              results: dict) -> Tuple[np.ndarray, Optional[float]]:
        """The raster of one modality and its no-data value (see
        :func:`read_raster`); subclasses read part of it."""
        return read_raster(path, self.backend_args, with_nodata=True)

    def _load(self, mod: Modality, results: dict) -> Tuple[np.ndarray, str]:
        key = self.path_keys[mod.name]
        path = results.get(key)
        if path is None:
            raise FileNotFoundError(
                f"modality '{mod.name}': the data info has no '{key}' (the "
                f'file of this modality); keys present: '
                f'{sorted(k for k in results if k.endswith("_path"))}')
        if isinstance(path, np.ndarray):  # given in memory (Python API)
            if path.ndim not in (2, 3):
                raise ValueError(f"modality '{mod.name}': expected an (H, W) "
                                 f'or (H, W, bands) array, got shape '
                                 f'{path.shape}')
            arr = path if path.ndim == 3 else path[..., None]
            return self._finish(mod, results, arr, None,
                                f'<{mod.name} array>')
        try:
            arr, file_nodata = self._read(path, results)
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f"modality '{mod.name}' ({mod.kind}): missing file {path} "
                f"(from '{key}')") from e
        return self._finish(mod, results, arr, file_nodata, path)

    def _finish(self, mod: Modality, results: dict, arr: np.ndarray,
                file_nodata: Optional[float],
                path: str) -> Tuple[np.ndarray, str]:
        """Select bands, check the channel count, normalise elevation."""
        bands = self._bands(mod, results)
        if bands is not None:
            bad = [b for b in bands if not -arr.shape[2] <= b < arr.shape[2]]
            if bad:
                raise ValueError(
                    f"{path}: modality '{mod.name}' selects bands "
                    f'{list(bands)} but the file has {arr.shape[2]} band(s)')
            arr = arr[..., list(bands)]
        if arr.shape[2] != mod.channels:
            hint = '' if bands is not None else \
                ' (select bands with `bands=[...]` in the spec entry or the' \
                ' dataset\'s band option)'
            raise ValueError(
                f"{path}: modality '{mod.name}' expects {mod.channels} "
                f'channel(s) (modality spec) but got {arr.shape[2]}'
                f'{" selected" if bands is not None else ""} band(s) of '
                f'dtype {arr.dtype}{hint}')
        if mod.kind == 'elevation':
            ranges = results.get('elevation_range') or {}
            arr = normalize_elevation(
                arr, mod.norm, self.nodata_values(mod, file_nodata), path,
                ranges.get(self.path_keys[mod.name]))
        else:
            arr = arr.astype(np.float32)
        return arr, path

    def transform(self, results: dict) -> dict:
        arrays: List[Optional[np.ndarray]] = []
        paths: Dict[str, str] = {}
        first = None
        # a key present with the value None: the dataset found no file and
        # allows it (``allow_missing``); that modality is absent
        absent = [
            self.path_keys[m.name] in results
            and results[self.path_keys[m.name]] is None
            for m in self.modalities
        ]
        if all(absent):
            raise FileNotFoundError(
                f'{results.get("img_path")}: every modality is missing '
                f'({list(self.path_keys.values())} are None)')
        for mod, missing in zip(self.modalities, absent):
            if missing:
                arrays.append(None)
                continue
            arr, path = self._load(mod, results)
            if first is None:
                first = (path, arr.shape[:2])
            elif arr.shape[:2] != first[1]:
                raise ValueError(
                    f"tiles of mismatched sizes: {first[0]} is "
                    f'{first[1][0]}x{first[1][1]} (HxW) but {path} '
                    f"(modality '{mod.name}') is "
                    f'{arr.shape[0]}x{arr.shape[1]}')
            arrays.append(arr)
            paths[mod.name] = path
        arrays = [
            np.zeros(first[1] + (mod.channels, ), np.float32)
            if arr is None else arr
            for mod, arr in zip(self.modalities, arrays)
        ]
        img = np.ascontiguousarray(np.concatenate(arrays, axis=2))
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        results['modalities'] = self.modalities
        results['modality_paths'] = paths
        # the bands read of each file, wherever chosen (spec or dataset):
        # the visualizer draws what the model reads
        results['modality_bands'] = {
            m.name: self._bands(m, results)
            for m in self.modalities if m.name in paths
        }
        results['presence'] = tuple(not a for a in absent)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(modalities=['
                f'{self.modalities.layout}], path_keys={self.path_keys})')
