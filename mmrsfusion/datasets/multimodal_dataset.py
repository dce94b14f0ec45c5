"""Base class of datasets whose samples are aligned multimodal tiles."""
import json
import logging
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Union

import mmengine
import mmengine.fileio as fileio
import numpy as np
from mmengine.logging import print_log
from mmengine.registry import TRANSFORMS

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS
from mmseg.registry import TRANSFORMS as SEG_TRANSFORMS
from mmrsfusion.utils import ModalitySpec
from .transforms.run_pipeline import run_pipeline

#: Suffixes tried, in this order, for a modality whose suffix is not given.
RASTER_SUFFIXES = ('.tif', '.tiff', '.png', '.jpg', '.jpeg')
#: Folder names of the two elevation choices in the converted layout.
ELEVATION_DIRS = dict(dsm='dsm_dir', ndsm='ndsm_dir')
#: Stem of a clip written by the converters: ``{tile}_{x0}_{y0}_{x1}_{y1}``.
_CLIP_STEM = re.compile(r'^(.+)_(\d+)_(\d+)_(\d+)_(\d+)$')


@DATASETS.register_module()
class MultiModalSegDataset(BaseSegDataset):
    """Segmentation dataset of aligned multimodal tiles paired by file stem.

    The converted layout (one folder per modality, same stem across them)::

        data_root/
          img_dir/{train,test}/STEM.tif        optical (any band count)
          dsm_dir/{train,test}/STEM.tif        DSM, float32 (or ndsm_dir/)
          ann_dir/{train,test}/STEM.tif        labels 0..K-1, 255 = ignore
          ann_eroded_dir/{train,test}/STEM.tif eroded labels (evaluation)

    ``data_prefix`` names the folders: ``img_path`` (optical; the tiles are
    the files ending in ``img_suffix`` there, or the stems listed in
    ``ann_file``), ``seg_map_path`` (labels, ``seg_map_suffix``) and one
    entry per other modality, keyed ``'{name}_path'`` as the loader
    :class:`LoadMultiModalImageFromFiles` expects (e.g. ``dsm_path``). Each
    data info carries those keys with the paired file of the tile. A
    modality's suffix is ``modality_suffixes[key]`` if given, else any of
    :data:`RASTER_SUFFIXES` (exactly one file per stem must exist).

    The converters' manifest (``data_root/conversion.json``), when present,
    is used for two things: (1) per-tile elevation ranges -- the protocol
    min-max normalises the DSM over the *whole tile*; each data info of a
    tile or of a clip of it (stems ``{tile}_{x0}_{y0}_{x1}_{y1}``) gets
    ``elevation_range[key] = (min, max)`` of the tile, which the loaders
    use instead of the clip's or window's own range; (2) the band order of the optical
    files (``notes.bands``), against which named ``optical_bands`` presets
    are resolved.

    Args:
        img_suffix (str): Suffix of the optical files. Defaults to '.tif'.
        seg_map_suffix (str, optional): Suffix of the label files. Defaults
            to None: any of :data:`RASTER_SUFFIXES` (the converters write
            ``.tif``; data converted before has ``.png``).
        modality_suffixes (dict, optional): ``data_prefix`` key -> suffix.
        optical_bands (str | Sequence[int], optional): Band indices (0-based)
            of the optical files to load, or a name of :attr:`BAND_PRESETS`
            (a tuple of band names, looked up in the files' band order: the
            manifest's ``notes.bands``, else :attr:`FILE_BANDS`); stored in
            each data info as ``bands['img_path']``. ``None``: all bands.
        elevation (str, optional): ``'dsm'`` or ``'ndsm'``: switch the
            ``elevation_key`` folder of ``data_prefix`` between ``dsm_dir``
            and ``ndsm_dir`` (the path must contain one of them). ``None``:
            ``data_prefix`` as given.
        elevation_key (str): The ``data_prefix`` key of the elevation
            modality. Defaults to ``'dsm_path'``.
        manifest (str, optional): The converters' manifest, relative to
            ``data_root``; ignored if absent. ``None`` disables it.
            Defaults to ``'conversion.json'``.
        allow_missing (Sequence[str]): ``data_prefix`` keys of modalities a
            tile may lack (e.g. ``['nir_path']``): such a tile's data info
            gets ``key=None`` and the loader marks the modality absent in
            ``presence``. Defaults to none (a missing file is an error).
        modalities (ModalitySpec | list[dict], optional): The modality spec
            (a config declares it once, at the top level, and
            :func:`~mmrsfusion.utils.bind_config_spec` puts it here). It is
            handed to every pipeline transform that takes ``modalities``.
            None: the transforms carry their own.
        **kwargs: :class:`mmseg.datasets.BaseSegDataset` arguments.

    Raises:
        FileNotFoundError: A folder is missing, no tile is found, or a tile
            has no file for a modality or no label (the tile and the
            expected path are named).
        ValueError: Several files match one stem of a modality, or an
            unknown band preset / elevation choice.
    """

    #: Named band selections: name -> band names, e.g. ``dict(RGB=('R',
    #: 'G', 'B'))``; empty in the base class.
    BAND_PRESETS: Dict[str, Sequence[str]] = {}
    #: Band names of the optical files in file order, when the manifest does
    #: not say (``notes.bands``).
    FILE_BANDS: Optional[Sequence[str]] = None
    #: The command that writes this dataset's converted layout, ``{root}``
    #: standing for ``data_root`` (named when a folder is missing); None:
    #: no command of ours writes it.
    MAKE_COMMAND: Optional[str] = None

    def __init__(self,
                 img_suffix: str = '.tif',
                 seg_map_suffix: Optional[str] = None,
                 modality_suffixes: Optional[Dict[str, str]] = None,
                 optical_bands: Union[str, Sequence[int], None] = None,
                 elevation: Optional[str] = None,
                 elevation_key: str = 'dsm_path',
                 manifest: Optional[str] = 'conversion.json',
                 allow_missing: Sequence[str] = (),
                 modalities: Union[ModalitySpec, Sequence[dict], None] = None,
                 data_prefix: dict = dict(img_path='', seg_map_path=''),
                 **kwargs) -> None:
        self.modality_suffixes = dict(modality_suffixes or {})
        self.allow_missing = tuple(allow_missing)
        bad = [k for k in self.allow_missing
               if k in ('img_path', 'seg_map_path') or k not in data_prefix]
        if bad:
            raise ValueError(
                f'{type(self).__name__}.allow_missing: {bad} are not '
                f'modality keys of data_prefix (other than img_path and '
                f'seg_map_path): {sorted(data_prefix)}')
        self.manifest = self._read_manifest(kwargs.get('data_root'), manifest)
        file_bands = (self.manifest.get('notes') or {}).get('bands') \
            or self.FILE_BANDS
        self.optical_bands = self._resolve_bands(optical_bands, file_bands)
        data_prefix = dict(data_prefix)
        if elevation is not None:
            data_prefix[elevation_key] = self._switch_elevation(
                data_prefix, elevation, elevation_key)
        self.elevation = elevation
        self.modalities = None if modalities is None else \
            ModalitySpec.build(modalities, f'{type(self).__name__}.modalities')
        kwargs['pipeline'] = self._build_pipeline(
            kwargs.get('pipeline') or [])
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            data_prefix=data_prefix,
            **kwargs)

    def _build_pipeline(self, pipeline: Sequence) -> list:
        """Build the transforms, handing the dataset's modality spec to
        those that take ``modalities``, and naming the one whose arguments
        are refused (some raise a bare AssertionError, e.g. a negative
        RandomCrop size)."""
        built = []
        for i, cfg in enumerate(pipeline):
            if not isinstance(cfg, dict):
                built.append(cfg)
                continue
            if self.modalities is not None:
                cfg = self.modalities.bind(
                    cfg, SEG_TRANSFORMS, f'{type(self).__name__}.pipeline[{i}]')
            try:
                built.append(TRANSFORMS.build(cfg))
            except Exception as e:
                raise ValueError(
                    f'{type(self).__name__}: pipeline[{i}] {dict(cfg)} was '
                    f'refused: {type(e).__name__}: {str(e) or "(no message)"}'
                    '. Check its arguments (sizes and ratios must be '
                    'positive).') from e
        return built

    def prepare_data(self, idx: int):
        """Run the pipeline on sample ``idx`` (:func:`run_pipeline`: the
        packed data sample carries the sample's presence), checking the
        label as soon as it is loaded with its image
        (:meth:`check_label`)."""
        return run_pipeline(self.pipeline.transforms,
                            self.get_data_info(idx), self.check_label)

    def check_label(self, results: dict) -> None:
        """The label must be pixel-aligned with its image and hold only
        class indices and the ignore index.

        Raises:
            ValueError: naming the label file (and the image) and what was
                found, instead of a batch-stacking error or a
                ``Target 7 is out of bounds`` later.
        """
        label, img = results['gt_seg_map'], results['img']
        path = results.get('seg_map_path')
        if label.shape[:2] != img.shape[:2]:
            raise ValueError(
                f'{path}: the label is {label.shape[0]}x{label.shape[1]} '
                f'(HxW) but its image {results.get("img_path")} is '
                f'{img.shape[0]}x{img.shape[1]}; labels must be '
                'pixel-aligned with the images (they are never resized)')
        num_classes = len(self.metainfo['classes'])
        bad = (label >= num_classes) & (label != self.ignore_index)
        if bad.any():
            values = np.unique(label[bad]).tolist()
            raise ValueError(
                f'{path}: {int(bad.sum())} label pixels hold values '
                f'{values[:10]}, outside the {num_classes} classes '
                f'(0..{num_classes - 1}) of {type(self).__name__} and not '
                f'the ignore index {self.ignore_index}')

    @staticmethod
    def _read_manifest(data_root: Optional[str],
                       manifest: Optional[str]) -> dict:
        if not manifest:
            return {}
        path = manifest if data_root is None else osp.join(
            data_root, manifest)
        if not osp.isfile(path):
            return {}
        with open(path) as f:
            return json.load(f)

    @classmethod
    def _resolve_bands(cls, bands, file_bands) -> Optional[tuple]:
        if bands is None:
            return None
        if not isinstance(bands, str):
            return tuple(int(b) for b in bands)
        if bands not in cls.BAND_PRESETS:
            raise ValueError(
                f'{cls.__name__}.optical_bands: unknown preset {bands!r}; '
                f'expected one of {sorted(cls.BAND_PRESETS)} or a list of '
                f'band indices')
        if not file_bands:
            raise ValueError(
                f'{cls.__name__}.optical_bands={bands!r}: the band order of '
                f'the optical files is unknown (no manifest notes.bands, no '
                f'FILE_BANDS); give band indices instead')
        file_bands = list(file_bands)
        missing = [b for b in cls.BAND_PRESETS[bands] if b not in file_bands]
        if missing:
            raise ValueError(
                f'{cls.__name__}.optical_bands={bands!r} needs bands '
                f'{missing}, but the optical files hold {file_bands} '
                f'(convert with that optical choice, or pick another)')
        return tuple(file_bands.index(b) for b in cls.BAND_PRESETS[bands])

    def _tile_ranges(self, stem: str, folders: Dict[str, str]) -> dict:
        """``{key: (min, max)}`` of the whole tile a clip comes from."""
        tiles = self.manifest.get('tiles') or {}
        match = _CLIP_STEM.match(osp.basename(stem))
        tile = osp.basename(stem) if match is None else match.group(1)
        if tile not in tiles:
            return {}
        info = tiles[tile]
        layout = self.manifest.get('layout') or {}
        ranges = {}
        for key, folder in folders.items():
            parts = folder.replace('\\', '/').split('/')
            for role, entry in layout.items():
                stats = info.get(f'{role}_stats')
                if entry.get('dir') in parts and stats and \
                        stats.get('min') is not None:
                    ranges[key] = (float(stats['min']), float(stats['max']))
        return ranges

    @staticmethod
    def _switch_elevation(data_prefix: dict, elevation: str,
                          key: str) -> str:
        if elevation not in ELEVATION_DIRS:
            raise ValueError(f'elevation: expected one of '
                             f'{sorted(ELEVATION_DIRS)}, got {elevation!r}')
        path = data_prefix.get(key)
        parts = [] if not path else path.replace('\\', '/').split('/')
        hits = [i for i, p in enumerate(parts) if p in ELEVATION_DIRS.values()]
        if not hits:
            raise ValueError(
                f'elevation={elevation!r}: data_prefix[{key!r}] = {path!r} '
                f'contains no {" or ".join(ELEVATION_DIRS.values())} folder '
                f'to switch; set data_prefix[{key!r}] directly instead')
        parts[hits[-1]] = ELEVATION_DIRS[elevation]
        return '/'.join(parts)

    def _index(self, key: str, folder: str) -> Dict[str, str]:
        """Map stem -> file name (relative to ``folder``) for one key."""
        if not folder or not fileio.isdir(folder,
                                          backend_args=self.backend_args):
            raise FileNotFoundError(
                f'{type(self).__name__}: data_prefix[{key!r}] folder '
                f'{folder!r} does not exist{self._make_hint()}')
        suffix = dict(img_path=self.img_suffix,
                      seg_map_path=self.seg_map_suffix).get(
                          key, self.modality_suffixes.get(key))
        suffixes = (suffix, ) if suffix else RASTER_SUFFIXES
        index: Dict[str, str] = {}
        for name in fileio.list_dir_or_file(
                folder,
                list_dir=False,
                recursive=True,
                backend_args=self.backend_args):
            for suf in suffixes:
                if name.lower().endswith(suf.lower()):
                    stem = name[:-len(suf)]
                    if stem in index:
                        raise ValueError(
                            f'{type(self).__name__}: tile {stem!r} has '
                            f'several {key} files in {folder}: '
                            f'{index[stem]} and {name}; set '
                            f'modality_suffixes[{key!r}]')
                    index[stem] = name
                    break
        return index

    @classmethod
    def make_command(cls, data_root: Optional[str],
                     data_prefix: dict) -> Optional[str]:
        """The command writing the data of ``data_root`` read through
        ``data_prefix`` (:attr:`MAKE_COMMAND`), or None."""
        if cls.MAKE_COMMAND is None:
            return None
        return cls.MAKE_COMMAND.format(root=data_root or 'DATA_ROOT')

    def _make_hint(self) -> str:
        command = self.make_command(self.data_root, self.data_prefix)
        return '' if command is None else \
            f'; write the data with: {command} (or set data_root)'

    def _stems(self, indices: Dict[str, Dict[str, str]]) -> List[str]:
        """The tiles: the stems of ``ann_file`` if given, else every stem
        found in any ``data_prefix`` folder (so that a tile lacking one of
        its files is reported, not silently dropped)."""
        if self.ann_file and not osp.isdir(self.ann_file):
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(
                    f'{type(self).__name__}: ann_file {self.ann_file} does '
                    f'not exist')
            return [
                line.strip() for line in mmengine.list_from_file(
                    self.ann_file, backend_args=self.backend_args)
                if line.strip()
            ]
        return sorted(set().union(*indices.values()))

    def load_data_list(self) -> List[dict]:
        """Pair the files of every tile across the ``data_prefix`` folders.

        Returns:
            list[dict]: Per tile ``img_path``, ``seg_map_path`` (when a label
            folder is given), one ``'{name}_path'`` per other modality
            (None for a file missing under ``allow_missing``, counted in one
            warning), ``bands`` (when ``optical_bands`` is set),
            ``elevation_range`` (clips listed in the manifest) and mmseg's
            ``label_map`` / ``reduce_zero_label`` / ``seg_fields``.

        Raises:
            FileNotFoundError: A tile has some of its files but not one that
                is not in ``allow_missing`` (the expected path is named).
        """
        img_dir = self.data_prefix.get('img_path')
        folders = {k: v for k, v in self.data_prefix.items() if v is not None}
        folders['img_path'] = img_dir
        indices = {
            key: self._index(key, folder)
            for key, folder in folders.items()
        }
        stems = self._stems(indices)
        if not stems:
            raise FileNotFoundError(
                f'{type(self).__name__}: no tile found: no '
                f'*{self.img_suffix} file in {img_dir}')
        data_list, absent = [], {}
        for stem in stems:
            info = {}
            for key, folder in folders.items():
                name = indices[key].get(stem)
                if name is None and key in self.allow_missing:
                    info[key] = None  # the loader marks it absent
                    absent[key] = absent.get(key, 0) + 1
                    continue
                if name is None:
                    suffix = dict(img_path=self.img_suffix,
                                  seg_map_path=self.seg_map_suffix).get(
                                      key, self.modality_suffixes.get(key))
                    expected = osp.join(
                        folder, stem + (suffix or
                                        '{' + ','.join(RASTER_SUFFIXES) +
                                        '}'))
                    found = sorted(k for k in folders if stem in indices[k])
                    raise FileNotFoundError(
                        f'{type(self).__name__}: tile {stem!r} has no '
                        f'{key} file: expected {expected} (the tile has '
                        f'{found}). Restore the file, remove the tile\'s '
                        f'other files, or allow the modality to be absent '
                        f'with allow_missing=[{key!r}]'
                        if key not in ('img_path', 'seg_map_path') else
                        f'{type(self).__name__}: tile {stem!r} has no '
                        f'{key} file: expected {expected} (the tile has '
                        f'{found}). Restore the file or remove the '
                        f'tile\'s other files')
                info[key] = osp.join(folder, name)
            if self.optical_bands is not None:
                info['bands'] = dict(img_path=self.optical_bands)
            ranges = self._tile_ranges(
                stem, {k: v for k, v in folders.items() if k != 'img_path'})
            if ranges:
                info['elevation_range'] = ranges
            info['label_map'] = self.label_map
            info['reduce_zero_label'] = self.reduce_zero_label
            info['seg_fields'] = []
            data_list.append(info)
        if absent:
            print_log(
                f'{type(self).__name__}: {len(stems)} tiles; files missing '
                f'(allow_missing, those modalities are absent): ' +
                ', '.join(f'{key} {n}' for key, n in sorted(absent.items())),
                logger='current', level=logging.WARNING)
        return sorted(data_list, key=lambda x: x['img_path'])
