"""Reading the official ISPRS Vaihingen / Potsdam downloads and writing the
converted layout.

This module is the shared engine of ``tools/dataset_converters/vaihingen.py``
and ``tools/dataset_converters/potsdam.py``; each script only states what is
specific to its dataset (file-name rules, split table, CLI extras) in a
:class:`DatasetSpec` and calls :func:`convert`.

Raw input
    One or more ``RAW_PATH`` arguments, each a folder, a ``.zip`` archive
    or a single file. Folders are walked at any depth; every ``.zip`` met
    on the way is listed without extracting it (members are read into
    memory one at a time); a ``.zip`` inside a ``.zip`` is extracted to
    ``tmp_dir`` first.
    Files are recognised by their exact official base names (see the specs
    in the scripts); everything else is ignored. Where two different files
    share a name (Vaihingen images and complete ground truth are both
    ``top_mosaic_09cm_area{N}.tif``) a rule can require or forbid a
    ground-truth *context*: a containing archive or folder whose name marks
    ground truth (see :func:`is_ground_truth_context`).

Converted layout (``OUT_DIR``)::

    img_dir/{train,test}/{stem}.tif        optical, H x W x C, source dtype,
                                           band order of the source file
                                           (Vaihingen IR,R,G; Potsdam
                                           RGBIR -> R,G,B,IR)
    dsm_dir/{train,test}/{stem}.tif        DSM, H x W float32, raw heights,
                                           no-data values kept as they are
    ndsm_dir/{train,test}/{stem}.png       Potsdam nDSM, H x W uint8
    ann_dir/{train,test}/{stem}.png        class index 0..5, 255 = unknown
    ann_eroded_dir/{train,test}/{stem}.png eroded labels, 255 = ignore
    conversion.json                        manifest: arguments, sources,
                                           per-tile elevation statistics

``stem`` is the tile id (``area1``, ``2_10``) for whole tiles, or
``{tile}_{x0}_{y0}_{x1}_{y1}`` for clips (mmseg's naming; x is the column).
TIFFs are written with zlib (deflate) compression.

Labels
    RGB colour-coded labels become class indices 0..5 (:data:`PALETTE`).
    Real label TIFFs have slightly-off colours in a few pixels: a pixel
    within ``tolerance`` levels (every channel, default
    :data:`COLOUR_TOLERANCE`) of a class colour is snapped to that class,
    any other colour becomes 255; black boundary pixels of the eroded
    (``_noBoundary``) labels become 255. Counts of snapped / unknown pixels
    are reported and stored per tile in ``conversion.json``; a "label" with
    more than :data:`MAX_UNKNOWN_FRACTION` unknown pixels is refused.

Elevation statistics
    Clipping a tile loses its whole-tile range, and the protocol normalises
    the DSM per *tile*. ``conversion.json`` therefore records, per tile, the
    min / max of the valid elevation values (no-data = non-finite, -9999 or
    the TIFF's ``GDAL_NODATA`` value) so that a loader can normalise clips
    by their tile's range.

Atomicity
    Everything is written to a hidden staging folder next to ``OUT_DIR``
    (``.{name}.converting-*``, same file system) and moved into place only
    after every tile succeeded. Any failure (or Ctrl-C) removes the staging
    folder and leaves ``OUT_DIR`` as it was. A killed process (SIGKILL) may
    leave the hidden staging folder behind, never a half-written ``OUT_DIR``.
"""
import io
import json
import os
import os.path as osp
import re
import shutil
import sys
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import (Callable, Dict, Iterable, List, Optional, Sequence, Tuple,
                    Union)

import numpy as np

from .isprs import ISPRS_CLASSES as CLASSES
from .isprs import ISPRS_PALETTE

#: RGB colour of each class index (ISPRS colour coding).
PALETTE = tuple(tuple(c) for c in ISPRS_PALETTE)
#: Colour of boundary pixels in the eroded (``_noBoundary``) labels.
BOUNDARY_COLOUR = (0, 0, 0)
IGNORE_INDEX = 255
#: Default colour tolerance: a label pixel whose every channel is within this
#: many levels of a palette colour is snapped to it; farther pixels -> 255.
COLOUR_TOLERANCE = 10
#: A label file with more off-palette pixels than this fraction is refused:
#: it is most likely not a colour-coded label (e.g. an image in a folder
#: that looked like ground truth).
MAX_UNKNOWN_FRACTION = 0.05
#: Elevation values treated as no-data (besides NaN / inf and the TIFF's
#: GDAL_NODATA tag). Only used for statistics; values are written unchanged.
NODATA_VALUES = (-9999.0, )

#: role -> (folder in OUT_DIR, file extension)
LAYOUT = {
    'img': ('img_dir', '.tif'),
    'dsm': ('dsm_dir', '.tif'),
    'ndsm': ('ndsm_dir', '.png'),
    'ann': ('ann_dir', '.png'),
    'ann_eroded': ('ann_eroded_dir', '.png'),
}
ROLE_NAMES = {
    'img': 'optical image',
    'dsm': 'DSM',
    'ndsm': 'nDSM',
    'ann': 'label',
    'ann_eroded': 'eroded label',
}
MANIFEST = 'conversion.json'
ELEVATION_MISMATCH = ('error', 'resize')


class ConversionError(RuntimeError):
    """Raised for anything that stops a conversion; the message says what
    was looked for, which files are involved and what to do."""


# --------------------------------------------------------------------------
# Raw files: discovery in folders and zip archives
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class RawFile:
    """A raw file on disk or inside a zip archive.

    Attributes:
        path (str): The file on disk, or the archive holding it.
        member (str | None): Its name inside the archive, if any.
        context (tuple[str]): Names of the folders / archives (without
            ``.zip``) that contain it, from the ``RAW_PATH`` folder's own
            name down. Used to tell files with the same name apart.
    """
    path: str
    member: Optional[str] = None
    context: Tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return re.split(r'[\\/]', self.member or self.path)[-1]

    def fingerprint(self) -> Tuple[int, int]:
        """(byte size, CRC-32) of the content; free for zip members (read
        from the archive's directory), one streamed read for plain files."""
        if self.member is not None:
            with zipfile.ZipFile(self.path) as zf:
                info = zf.getinfo(self.member)
                return info.file_size, info.CRC
        crc = 0
        with open(self.path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 22), b''):
                crc = zlib.crc32(chunk, crc)
        return osp.getsize(self.path), crc

    def read_bytes(self) -> bytes:
        try:
            if self.member is None:
                with open(self.path, 'rb') as f:
                    return f.read()
            with zipfile.ZipFile(self.path) as zf:
                return zf.read(self.member)
        except (OSError, zipfile.BadZipFile, KeyError) as e:
            raise ConversionError(f'Cannot read {self}: {e}') from e

    def __str__(self) -> str:
        return f'{self.path}!{self.member}' if self.member else self.path


def _context_parts(path: str) -> Tuple[str, ...]:
    parts = [p for p in re.split(r'[\\/]+', path) if p]
    return tuple(p[:-4] if p.lower().endswith('.zip') else p for p in parts)


def discover(raw_paths: Union[str, Sequence[str]],
             tmp_dir: str) -> List[RawFile]:
    """List every file under ``raw_paths``, looking inside zip archives.

    Args:
        raw_paths: Folders, zip archives or single files.
        tmp_dir: Where archives nested inside archives are extracted.

    Returns:
        list[RawFile]: All files found, in a deterministic order.

    Raises:
        ConversionError: If a path does not exist or an archive is corrupt.
    """
    if isinstance(raw_paths, str):
        raw_paths = [raw_paths]
    found: List[RawFile] = []
    for raw in raw_paths:
        raw = osp.abspath(raw)
        if not osp.exists(raw):
            raise ConversionError(f'RAW_PATH {raw} does not exist.')
        if osp.isfile(raw):
            _add_file(raw, _context_parts(osp.basename(osp.dirname(raw))),
                      found, tmp_dir)
            continue
        root_ctx = _context_parts(osp.basename(raw))
        for dirpath, dirnames, filenames in os.walk(raw, followlinks=True):
            dirnames.sort()
            rel = osp.relpath(dirpath, raw)
            ctx = root_ctx + (() if rel == '.' else _context_parts(rel))
            for fname in sorted(filenames):
                _add_file(osp.join(dirpath, fname), ctx, found, tmp_dir)
    return found


def _add_file(path: str, ctx: Tuple[str, ...], found: List[RawFile],
              tmp_dir: str) -> None:
    if not path.lower().endswith('.zip'):
        found.append(RawFile(path, None, ctx))
        return
    _add_archive(path, ctx + _context_parts(osp.basename(path)), found,
                 tmp_dir)


def _add_archive(path: str, ctx: Tuple[str, ...], found: List[RawFile],
                 tmp_dir: str) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = sorted((i for i in zf.infolist() if not i.is_dir()),
                           key=lambda i: i.filename)
            for info in infos:
                member_ctx = ctx + _context_parts(osp.dirname(info.filename))
                if info.filename.lower().endswith('.zip'):
                    # An archive inside an archive: extract it to tmp_dir.
                    nested_dir = tempfile.mkdtemp(prefix='nested-',
                                                  dir=tmp_dir)
                    nested = zf.extract(info, nested_dir)
                    _add_archive(
                        nested,
                        member_ctx + _context_parts(osp.basename(nested)),
                        found, tmp_dir)
                else:
                    found.append(RawFile(path, info.filename, member_ctx))
    except zipfile.BadZipFile as e:
        raise ConversionError(f'{path} is not a readable zip archive ({e}). '
                              'Re-download it or pass the extracted folder.')


_GT_TOKENS = {'gt', 'gts', 'label', 'labels', 'groundtruth', 'annotation',
              'annotations'}


def is_ground_truth_context(context: Iterable[str]) -> bool:
    """Whether a folder/archive chain marks its files as ground truth.

    True if any component's name, split into lower-case words at
    non-alphanumeric characters, contains ``ground`` followed by ``truth``
    or one of the words ``gt``, ``gts``, ``label(s)``, ``groundtruth``,
    ``annotation(s)``. E.g. ``ISPRS_semantic_labeling_Vaihingen_ground_truth
    _COMPLETE`` and ``gts_for_participants`` do, ``ISPRS_semantic_labeling_
    Vaihingen`` and ``top`` do not (``labeling`` is not ``label``).
    """
    for part in context:
        words = [w for w in re.split(r'[^a-z0-9]+', part.lower()) if w]
        if _GT_TOKENS.intersection(words):
            return True
        if any(a == 'ground' and b == 'truth'
               for a, b in zip(words, words[1:])):
            return True
    return False


@dataclass(frozen=True)
class FileRule:
    """How one role's files are named.

    Attributes:
        role (str): A key of :data:`LAYOUT`.
        pattern (str): Regular expression that the *whole* base name must
            match (case-insensitive); its groups are passed to ``tile_id``.
        tile_id (callable): Groups -> tile id, e.g. ``('1',) -> 'area1'``.
        example (str): The official name pattern, shown in messages, e.g.
            ``'dsm_09cm_matching_area{N}.tif'``.
        name_for (callable, optional): Tile id -> the official file name
            of that tile (shown when a tile lacks this file).
        ground_truth (bool | None): True: only files in a ground-truth
            context (see :func:`is_ground_truth_context`); False: only files
            outside one; None: either.
    """
    role: str
    pattern: str
    tile_id: Callable[..., str]
    example: str
    ground_truth: Optional[bool] = None
    name_for: Optional[Callable[[str], str]] = None

    def match(self, raw: RawFile) -> Optional[str]:
        m = re.fullmatch(self.pattern, raw.name, flags=re.IGNORECASE)
        if m is None:
            return None
        if self.ground_truth is not None and \
                is_ground_truth_context(raw.context) != self.ground_truth:
            return None
        return self.tile_id(*m.groups())

    def describe(self, tile: Optional[str] = None) -> str:
        """The names looked for (for ``tile`` if given), in words."""
        if self.ground_truth is True:
            where = (' inside an archive or folder whose name marks ground '
                     'truth (e.g. *ground_truth*, gts_for_participants, '
                     'labels, gt)')
        elif self.ground_truth is False:
            where = (' outside any archive or folder whose name marks '
                     'ground truth')
        else:
            where = ''
        name = self.example
        if tile is not None and self.name_for is not None:
            name = self.name_for(tile)
        return f'{ROLE_NAMES[self.role]}: {name}{where}'


@dataclass
class DatasetSpec:
    """What a converter script knows about its dataset.

    Attributes:
        name (str): Dataset name, e.g. ``'vaihingen'``.
        rules (list[FileRule]): One or more rules per required role; the
            roles of the rules are the modalities written.
        splits (dict): ``{'train': [tile ids], 'test': [tile ids]}``.
        split_name (str): Name of the split, recorded in the manifest.
        notes (dict): Extra entries for the manifest (e.g. band order).
    """
    name: str
    rules: List[FileRule]
    splits: Dict[str, Sequence[str]]
    split_name: str = 'custom'
    notes: Dict[str, object] = field(default_factory=dict)

    @property
    def roles(self) -> List[str]:
        roles = []
        for rule in self.rules:
            if rule.role not in roles:
                roles.append(rule.role)
        # the optical image is the reference every other raster must match
        return sorted(roles, key=list(LAYOUT).index)


def _sort_key(tile: str):
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', tile)]


def _preference(raw: RawFile) -> Tuple[int, int]:
    complete = any('complete' in p.lower() for p in raw.context)
    return (0 if complete else 1, len(str(raw)))


def match_files(files: Sequence[RawFile], spec: DatasetSpec
                ) -> Dict[str, Dict[str, RawFile]]:
    """Assign found files to ``{tile: {role: RawFile}}``.

    Several files for the same tile and role (e.g. a zip and its extracted
    copy, or ``gts_for_participants`` and the COMPLETE ground truth) are
    resolved by preferring a ``*COMPLETE*`` archive/folder, then the
    shortest path, provided the equally preferred candidates have the same
    content (size and CRC-32); if they differ the choice would be a guess,
    so it is refused.
    """
    candidates: Dict[str, Dict[str, List[RawFile]]] = {}
    for raw in files:
        if raw.name.startswith('._'):  # macOS resource forks
            continue
        for rule in spec.rules:
            tile = rule.match(raw)
            if tile is not None:
                candidates.setdefault(tile, {}).setdefault(rule.role,
                                                           []).append(raw)
                break
    matched: Dict[str, Dict[str, RawFile]] = {}
    for tile, roles in candidates.items():
        matched[tile] = {}
        for role, raws in roles.items():
            raws = sorted(raws, key=_preference)
            best = raws[0]
            same_rank = [r for r in raws if _preference(r)[0] ==
                         _preference(best)[0]]
            if len({r.fingerprint() for r in same_rank}) > 1:
                listing = '\n  '.join(map(str, same_rank))
                raise ConversionError(
                    f'Tile {tile}: several different files could be its '
                    f'{ROLE_NAMES[role]}:\n  {listing}\nKeep only one of '
                    'them under RAW_PATH, or put ground truth in an archive '
                    'or folder whose name marks it (e.g. *ground_truth*).')
            matched[tile][role] = best
    return matched


# --------------------------------------------------------------------------
# Reading rasters
# --------------------------------------------------------------------------
def _read_tiff(raw: RawFile) -> Tuple[np.ndarray, Optional[float]]:
    """Read a TIFF as H x W or H x W x C; also return its GDAL no-data."""
    import tifffile
    src = raw.path if raw.member is None else io.BytesIO(raw.read_bytes())
    try:
        with tifffile.TiffFile(src) as tif:
            series = tif.series[0]
            arr = series.asarray()
            axes = series.axes
            tag = tif.pages[0].tags.get('GDAL_NODATA')
            nodata = None
            if tag is not None:
                try:
                    nodata = float(str(tag.value).strip('\x00 '))
                except ValueError:
                    nodata = None
    except ConversionError:
        raise
    except Exception as e:  # corrupt / truncated / not a TIFF
        raise ConversionError(f'Cannot read TIFF {raw}: {e}') from e
    if axes.startswith('S') and arr.ndim == 3:  # planar: S,Y,X -> Y,X,S
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return np.ascontiguousarray(arr), nodata


def _read_image(raw: RawFile) -> np.ndarray:
    """Read a JPEG/PNG with OpenCV, channels unchanged (BGR order)."""
    import cv2
    buf = np.frombuffer(raw.read_bytes(), dtype=np.uint8)
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ConversionError(f'Cannot decode image {raw}.')
    return arr


def read_optical(raw: RawFile, bands: Optional[int] = None) -> np.ndarray:
    """H x W x C optical image in the source's band order."""
    arr, _ = _read_tiff(raw)
    if arr.ndim != 3:
        raise ConversionError(
            f'{raw}: expected a multi-band optical image, got shape '
            f'{arr.shape}.')
    if bands is not None and arr.shape[-1] != bands:
        raise ConversionError(
            f'{raw}: expected {bands} bands, got {arr.shape[-1]} (shape '
            f'{arr.shape}).')
    return arr


def read_dsm(raw: RawFile) -> Tuple[np.ndarray, Optional[float]]:
    """H x W float32 elevation from a TIFF, values unchanged."""
    arr, nodata = _read_tiff(raw)
    if arr.ndim != 2:
        raise ConversionError(
            f'{raw}: expected a single-band DSM, got shape {arr.shape}.')
    if arr.dtype != np.float32:
        if arr.dtype == np.float64:
            warnings.warn(f'{raw}: float64 DSM written as float32.')
        arr = arr.astype(np.float32)
    return arr, nodata


def read_gray(raw: RawFile) -> np.ndarray:
    """H x W uint8 from an 8-bit image (the Potsdam nDSM JPEGs)."""
    import cv2
    arr = _read_image(raw)
    if arr.ndim == 3:
        if arr.shape[-1] == 4:
            arr = arr[..., :3]
        if (arr == arr[..., :1]).all():
            arr = arr[..., 0]
        else:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGR2GRAY)
    if arr.dtype != np.uint8:
        raise ConversionError(
            f'{raw}: expected an 8-bit image, got dtype {arr.dtype}.')
    return np.ascontiguousarray(arr)


def read_colour_label(raw: RawFile) -> np.ndarray:
    """H x W x 3 uint8 RGB colour-coded label."""
    arr, _ = _read_tiff(raw)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4) or arr.dtype != np.uint8:
        raise ConversionError(
            f'{raw}: expected an RGB colour-coded uint8 label, got shape '
            f'{arr.shape} and dtype {arr.dtype}.')
    return np.ascontiguousarray(arr[..., :3])


# --------------------------------------------------------------------------
# Colour -> class index
# --------------------------------------------------------------------------
_LUT_CACHE: Dict[tuple, Tuple[np.ndarray, np.ndarray]] = {}
# kinds of a colour in the lookup table
_EXACT, _SNAPPED, _UNKNOWN, _IGNORED = 0, 1, 2, 3


def _colour_luts(palette, ignore_colours, tolerance):
    key = (tuple(map(tuple, palette)), tuple(map(tuple, ignore_colours)),
           tolerance)
    if key not in _LUT_CACHE:
        index = np.full((256, 256, 256), IGNORE_INDEX, dtype=np.uint8)
        kind = np.full((256, 256, 256), _UNKNOWN, dtype=np.uint8)
        entries = [(c, i) for i, c in enumerate(palette)]
        entries += [(c, IGNORE_INDEX) for c in ignore_colours]
        for colour, idx in entries:
            lo = [max(0, v - tolerance) for v in colour]
            hi = [min(255, v + tolerance) + 1 for v in colour]
            cube = (slice(lo[0], hi[0]), slice(lo[1], hi[1]),
                    slice(lo[2], hi[2]))
            index[cube] = idx
            kind[cube] = _IGNORED if idx == IGNORE_INDEX else _SNAPPED
        for colour, idx in entries:
            kind[tuple(colour)] = _IGNORED if idx == IGNORE_INDEX else _EXACT
        _LUT_CACHE.clear()  # keep at most one pair (2 x 16 MiB)
        _LUT_CACHE[key] = (index, kind)
    return _LUT_CACHE[key]


def colour_to_index(rgb: np.ndarray,
                    palette: Sequence[Sequence[int]] = PALETTE,
                    ignore_colours: Sequence[Sequence[int]] = (),
                    tolerance: int = COLOUR_TOLERANCE
                    ) -> Tuple[np.ndarray, Dict[str, int]]:
    """Map an RGB colour-coded label to class indices.

    A pixel equal to ``palette[i]`` becomes ``i``. Real ISPRS label TIFFs
    carry a few pixels with slightly-off colours; a pixel whose every
    channel is within ``tolerance`` levels of a palette colour is snapped
    to that class (at most one palette colour can be that close, since
    palette colours differ by 255 in some channel and ``tolerance`` < 128).
    Pixels equal or that close to an ``ignore_colours`` entry (black in the
    eroded labels) and every other colour become :data:`IGNORE_INDEX`.

    Args:
        rgb (np.ndarray): H x W x 3 uint8, RGB order.
        palette: Class colours, index = class.
        ignore_colours: Colours meaning "ignore".
        tolerance (int): Max per-channel distance for snapping, 0..127.

    Returns:
        tuple: (H x W uint8 index map, counts ``{'exact', 'snapped',
        'unknown', 'ignored'}`` of pixels).
    """
    if not 0 <= tolerance < 128:
        raise ValueError(f'tolerance must be in [0, 127], got {tolerance}')
    index_lut, kind_lut = _colour_luts(palette, ignore_colours, tolerance)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    index = index_lut[r, g, b]
    counts = np.bincount(kind_lut[r, g, b].ravel(), minlength=4)
    stats = dict(exact=int(counts[_EXACT]), snapped=int(counts[_SNAPPED]),
                 unknown=int(counts[_UNKNOWN]),
                 ignored=int(counts[_IGNORED]))
    return index, stats


# --------------------------------------------------------------------------
# Clipping
# --------------------------------------------------------------------------
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
def _write(path: str, arr: np.ndarray) -> None:
    ext = osp.splitext(path)[1]
    if ext == '.png':
        import cv2
        if not cv2.imwrite(path, arr):
            raise ConversionError(f'Cannot write {path}.')
        return
    import tifffile
    kwargs = dict(compression='zlib')
    if arr.ndim == 3:
        kwargs['photometric'] = 'rgb'
        if arr.shape[-1] > 3:
            kwargs['extrasamples'] = ['unspecified'] * (arr.shape[-1] - 3)
    else:
        kwargs['photometric'] = 'minisblack'
    tifffile.imwrite(path, np.ascontiguousarray(arr), **kwargs)


def elevation_stats(arr: np.ndarray,
                    nodata: Optional[float] = None) -> Dict[str, object]:
    """Min / max over the valid values of an elevation raster (no-data:
    non-finite, :data:`NODATA_VALUES` and ``nodata``)."""
    valid = np.isfinite(arr)
    for v in NODATA_VALUES + ((nodata, ) if nodata is not None else ()):
        valid &= arr != v
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

    All of a tile's rasters are read and checked before any is written.
    """
    img_src = job.sources['img']
    arrays = {'img': read_optical(img_src, job.optical_bands)}
    height, width = arrays['img'].shape[:2]
    info: Dict[str, object] = dict(
        split=job.split, height=height, width=width,
        sources={role: str(raw) for role, raw in job.sources.items()})
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
            _write(osp.join(job.staging, folder, job.split, stem + ext),
                   arr[y0:y1, x0:x1])
    info['clips'] = len(boxes)
    info['messages'] = messages
    return info


# --------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------
@dataclass
class ConversionReport:
    """What :func:`convert` did.

    Attributes:
        out_dir (str): The output folder.
        tiles (dict): Per converted tile: split, size, clip count, sources,
            elevation statistics, label colour counts.
        missing (dict): Per split, tiles of the split with no file found.
        ignored_tiles (list): Tiles found but not in the split.
        messages (list): Warnings issued (snapped colours, resampling,
            missing tiles).
    """
    out_dir: str
    tiles: Dict[str, dict]
    missing: Dict[str, List[str]]
    ignored_tiles: List[str]
    messages: List[str]


def _looked_for(spec: DatasetSpec) -> str:
    return '\n  '.join(rule.describe() for rule in spec.rules)


def _plan(files: Sequence[RawFile], spec: DatasetSpec, raw_paths
          ) -> Tuple[List[Tuple[str, str, Dict[str, RawFile]]],
                     Dict[str, List[str]], List[str]]:
    matched = match_files(files, spec)
    split_of = {}
    for split, tiles in spec.splits.items():
        for tile in tiles:
            split_of[tile] = split
    present = {t: m for t, m in matched.items() if t in split_of}
    if not present:
        examples = ', '.join(sorted({f.name for f in files})[:10]) or 'none'
        hint = ''
        if matched:
            hint = (f'\nRecognised files belong only to tiles outside the '
                    f'{spec.split_name!r} split: '
                    f'{", ".join(sorted(matched, key=_sort_key))}.')
        raise ConversionError(
            f'No {spec.name} tile of the {spec.split_name!r} split found '
            f'under {", ".join(map(str, raw_paths))} ({len(files)} files '
            f'seen, e.g. {examples}).{hint}\nLooked for (in zip archives '
            f'or folders, at any depth):\n  {_looked_for(spec)}')
    problems = []
    for tile in sorted(present, key=_sort_key):
        lacking = [r for r in spec.roles if r not in present[tile]]
        if not lacking:
            continue
        wanted = '; '.join(rule.describe(tile) for rule in spec.rules
                           if rule.role in lacking)
        have = ', '.join(f'{ROLE_NAMES[r]} {present[tile][r]}'
                         for r in spec.roles if r in present[tile])
        problems.append(
            f'Tile {tile}: no {", ".join(ROLE_NAMES[r] for r in lacking)} '
            f'found; looked for {wanted} (in zip archives or folders, at '
            f'any depth). Found for this tile: {have}.')
    if problems:
        raise ConversionError(
            f'Missing modalities ({len(problems)} tiles), nothing was '
            'written:\n' + '\n'.join(problems))
    missing = {
        split: [t for t in tiles if t not in present]
        for split, tiles in spec.splits.items()
    }
    ignored = sorted((t for t in matched if t not in split_of), key=_sort_key)
    plan = [(split_of[t], t, present[t]) for split in spec.splits
            for t in sorted(present, key=_sort_key) if split_of[t] == split]
    return plan, missing, ignored


def _existing_conflicts(out_dir: str, entries: Iterable[str]) -> List[str]:
    conflicts = []
    for entry in entries:
        path = osp.join(out_dir, entry)
        if osp.isdir(path) and not os.listdir(path):
            continue  # an empty folder is simply replaced
        if osp.lexists(path):
            conflicts.append(path)
    return conflicts


def _commit(staging: str, out_dir: str) -> None:
    """Move the staged layout into ``out_dir``; rolls back on failure."""
    if not osp.lexists(out_dir):
        os.rename(staging, out_dir)
        return
    backup = tempfile.mkdtemp(prefix=osp.basename(staging) + '.old-',
                              dir=osp.dirname(staging))
    moved_old, moved_new = [], []
    try:
        for entry in sorted(os.listdir(staging)):
            dst = osp.join(out_dir, entry)
            if osp.lexists(dst):
                os.rename(dst, osp.join(backup, entry))
                moved_old.append(entry)
            os.rename(osp.join(staging, entry), dst)
            moved_new.append(entry)
    except BaseException:
        for entry in reversed(moved_new):
            os.rename(osp.join(out_dir, entry), osp.join(staging, entry))
        for entry in reversed(moved_old):
            os.rename(osp.join(backup, entry), osp.join(out_dir, entry))
        raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)  # now empty


def _run_jobs(jobs: Sequence[TileJob], nproc: int,
              progress: bool) -> List[dict]:
    """Run :func:`convert_tile` on every job, in order, with a progress bar.

    With several processes the pool is terminated (workers stopped) as soon
    as one job fails, before the caller removes the staging folder.
    """
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(jobs), file=sys.stdout)
    results = []
    if nproc > 1 and len(jobs) > 1:
        import multiprocessing
        with multiprocessing.Pool(min(nproc, len(jobs))) as pool:
            for result in pool.imap(convert_tile, jobs):
                results.append(result)
                if bar is not None:
                    bar.update()
    else:
        for job in jobs:
            results.append(convert_tile(job))
            if bar is not None:
                bar.update()
    if bar is not None:
        sys.stdout.write('\n')
    return results


def _emit(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


def convert(spec: DatasetSpec,
            raw_paths: Union[str, Sequence[str]],
            out_dir: str,
            clip_size: Optional[int] = None,
            stride_size: Optional[int] = None,
            test_whole: bool = False,
            nproc: int = 1,
            tmp_dir: Optional[str] = None,
            overwrite: bool = False,
            elevation_mismatch: str = 'error',
            tolerance: int = COLOUR_TOLERANCE,
            optical_bands: Optional[int] = None,
            progress: bool = True) -> ConversionReport:
    """Convert the tiles of ``spec.splits`` found under ``raw_paths``.

    Tiles of the split that are entirely absent from ``raw_paths`` are
    listed in a warning (and in the report) and skipped, so that a partial
    download converts what it has; a tile that is present but lacks one of
    the required modalities stops the conversion before anything is
    written, naming the tile and the file names looked for. No tile of the
    split at all is an error that lists the names looked for.

    Args:
        spec: Dataset rules, split table and modalities.
        raw_paths: Folders / zip archives of the official download.
        out_dir: Output root (see the module docstring for the layout).
        clip_size: Clip side in pixels; None writes whole tiles.
        stride_size: Step between clips (default ``clip_size``); must be
            <= ``clip_size``. The last clip of a row/column is flush with
            the tile border.
        test_whole: Keep test tiles whole even when clipping (for whole-tile
            sliding-window evaluation).
        nproc: Worker processes.
        tmp_dir: Scratch space for archives nested in archives (default: the
            system temporary folder).
        overwrite: Replace layout folders that already exist in ``out_dir``
            (only the folders this run writes). Otherwise they are refused.
        elevation_mismatch: ``'error'`` (default) stops when a DSM / nDSM and
            its image differ in size, naming both files and sizes;
            ``'resize'`` resamples the elevation to the image size by
            nearest neighbour and reports it.
        tolerance: Colour tolerance for labels (see
            :func:`colour_to_index`).
        optical_bands: Expected number of optical bands (checked).
        progress: Show a progress bar.

    Returns:
        ConversionReport

    Raises:
        ConversionError: See above; ``out_dir`` is left unchanged.
    """
    if stride_size is not None and clip_size is None:
        raise ConversionError('--stride-size needs --clip-size.')
    if clip_size is not None:
        if clip_size <= 0:
            raise ConversionError(f'--clip-size must be > 0, got {clip_size}')
        stride_size = clip_size if stride_size is None else stride_size
        if not 0 < stride_size <= clip_size:
            raise ConversionError(
                f'--stride-size must be in [1, clip size {clip_size}] so '
                f'that every pixel is covered, got {stride_size}')
    if elevation_mismatch not in ELEVATION_MISMATCH:
        raise ConversionError(f'elevation_mismatch must be one of '
                              f'{ELEVATION_MISMATCH}, got '
                              f'{elevation_mismatch!r}')
    if not 0 <= tolerance < 128:
        raise ConversionError(f'colour tolerance must be in [0, 127], got '
                              f'{tolerance}')
    raw_paths = [raw_paths] if isinstance(raw_paths, str) else list(raw_paths)
    out_dir = osp.abspath(out_dir)
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise ConversionError(f'OUT_DIR {out_dir} exists and is not a folder.')
    entries = [LAYOUT[r][0] for r in spec.roles] + [MANIFEST]
    conflicts = _existing_conflicts(out_dir, entries)
    if conflicts and not overwrite:
        raise ConversionError(
            'OUT_DIR already holds a conversion: ' + ', '.join(conflicts) +
            '. Pass --overwrite to replace them, or choose another OUT_DIR.')

    scratch = tempfile.mkdtemp(prefix='isprs-raw-', dir=tmp_dir)
    parent = osp.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    staging = None
    try:
        files = discover(raw_paths, scratch)
        plan, missing, ignored = _plan(files, spec, raw_paths)
        messages: List[str] = []
        for split, tiles in missing.items():
            if tiles:
                messages.append(
                    f'{len(tiles)} {split} tiles of the {spec.split_name!r} '
                    f'split not found under RAW_PATH, skipped: '
                    f'{", ".join(tiles)}')
        if ignored:
            print(f'Ignoring {len(ignored)} tiles that are not in the '
                  f'{spec.split_name!r} split: {", ".join(ignored)}')
        for m in messages:
            _emit(m)

        staging = tempfile.mkdtemp(
            prefix=f'.{osp.basename(out_dir)}.converting-', dir=parent)
        jobs = [
            TileJob(tile=tile, split=split, sources=sources, staging=staging,
                    clip_size=None if (test_whole and split == 'test') else
                    clip_size,
                    stride_size=stride_size, tolerance=tolerance,
                    elevation_mismatch=elevation_mismatch,
                    optical_bands=optical_bands)
            for split, tile, sources in plan
        ]
        print(f'Converting {len(jobs)} {spec.name} tiles into {out_dir}')
        results = _run_jobs(jobs, nproc, progress)
        tiles = {}
        for job, info in zip(jobs, results):
            for m in info.pop('messages'):
                messages.append(m)
                _emit(m)
            tiles[job.tile] = info
        off = {t: [info[f'{r}_colours'] for r in ('ann', 'ann_eroded')
                   if f'{r}_colours' in info] for t, info in tiles.items()}
        snapped = sum(c['snapped'] for cs in off.values() for c in cs)
        unknown = sum(c['unknown'] for cs in off.values() for c in cs)
        if snapped or unknown:
            n = sum(1 for cs in off.values()
                    if any(c['snapped'] or c['unknown'] for c in cs))
            m = (f'Labels of {n} tiles had off-palette pixels: {snapped} '
                 f'snapped to a class colour within {tolerance} levels, '
                 f'{unknown} farther ones set to {IGNORE_INDEX} (per tile: '
                 f'"ann_colours" / "ann_eroded_colours" in {MANIFEST}).')
            messages.append(m)
            _emit(m)
        manifest = dict(
            dataset=spec.name, split=spec.split_name,
            split_table={k: list(v) for k, v in spec.splits.items()},
            clip_size=clip_size, stride_size=stride_size,
            test_whole=test_whole, elevation_mismatch=elevation_mismatch,
            colour_tolerance=tolerance, classes=list(CLASSES),
            palette=[list(c) for c in PALETTE], ignore_index=IGNORE_INDEX,
            layout={r: dict(dir=LAYOUT[r][0], ext=LAYOUT[r][1])
                    for r in spec.roles},
            notes=spec.notes, tiles=tiles, missing=missing,
            ignored_tiles=ignored, messages=messages)
        with open(osp.join(staging, MANIFEST), 'w') as f:
            json.dump(manifest, f, indent=1)
        _commit(staging, out_dir)
        staging = None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    n_clips = sum(info['clips'] for info in tiles.values())
    print(f'Done: {len(tiles)} tiles, {n_clips} files per modality, in '
          f'{out_dir}')
    return ConversionReport(out_dir, tiles, missing, ignored, messages)


# --------------------------------------------------------------------------
# Command line (shared by the converter scripts)
# --------------------------------------------------------------------------
def add_common_args(parser, default_out: str, split_names: Sequence[str],
                    split_help: str = 'split table to use'):
    """Arguments in mmseg's converter shape, plus the ones both scripts
    share. Underscore spellings (``--out_dir``) are accepted too."""
    parser.add_argument('raw_paths', nargs='+', metavar='RAW_PATH',
                        help='folder(s) or zip archive(s) of the official '
                        'download; searched at any depth')
    parser.add_argument('-o', '--out-dir', '--out_dir', dest='out_dir',
                        default=default_out,
                        help=f'output root (default {default_out})')
    parser.add_argument('--split', choices=list(split_names),
                        default='official', help=split_help)
    parser.add_argument('--clip-size', '--clip_size', dest='clip_size',
                        type=int, default=None,
                        help='clip tiles into N x N windows (default: whole '
                        'tiles)')
    parser.add_argument('--stride-size', '--stride_size', dest='stride_size',
                        type=int, default=None,
                        help='step between clips (default: the clip size); '
                        'the last clip is flush with the border')
    parser.add_argument('--test-whole', action='store_true',
                        help='keep test tiles whole when clipping')
    parser.add_argument('--tmp-dir', '--tmp_dir', dest='tmp_dir',
                        default=None,
                        help='scratch folder for archives nested in archives')
    parser.add_argument('--nproc', type=int, default=1,
                        help='worker processes')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace layout folders already in OUT_DIR')
    parser.add_argument('--elevation-mismatch', choices=ELEVATION_MISMATCH,
                        default='error',
                        help='what to do when a DSM/nDSM differs in size '
                        'from its image: stop (default) or resample it to '
                        'the image size (nearest neighbour, reported)')
    parser.add_argument('--colour-tolerance', type=int,
                        default=COLOUR_TOLERANCE,
                        help='label pixels within this many levels (every '
                        'channel) of a class colour are snapped to it; '
                        f'others become {IGNORE_INDEX}')
    return parser


def run_cli(spec: DatasetSpec, args, optical_bands: Optional[int] = None
            ) -> int:
    """Run :func:`convert` from parsed :func:`add_common_args` arguments;
    prints a :class:`ConversionError` and returns 1 instead of a
    traceback; warnings are printed as plain ``warning: ...`` lines."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f'warning: {message}', file=sys.stderr)

    shown = warnings.showwarning
    warnings.showwarning = show
    try:
        convert(spec, args.raw_paths, args.out_dir,
                clip_size=args.clip_size, stride_size=args.stride_size,
                test_whole=args.test_whole, nproc=args.nproc,
                tmp_dir=args.tmp_dir, overwrite=args.overwrite,
                elevation_mismatch=args.elevation_mismatch,
                tolerance=args.colour_tolerance,
                optical_bands=optical_bands)
    except ConversionError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = shown
    return 0
