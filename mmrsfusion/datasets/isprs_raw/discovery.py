"""Raw ISPRS files: discovery in folders and zip archives, the file-name
rules of a dataset and the matching of files to tiles."""
import os
import os.path as osp
import re
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import (Callable, Dict, Iterable, List, Optional, Sequence, Tuple,
                    Union)

from .layout import LAYOUT, ROLE_NAMES, ConversionError
from .raw_file import RawFile
from .readers import looks_like_colour_label


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
            _add_file(raw, (), found, tmp_dir)
            continue
        # only the folders below RAW_PATH describe its files: a RAW_PATH
        # like ~/gt_project/isprs must not mark everything as ground truth
        for dirpath, dirnames, filenames in os.walk(raw, followlinks=True):
            dirnames.sort()
            rel = osp.relpath(dirpath, raw)
            ctx = () if rel == '.' else _context_parts(rel)
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
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise ConversionError(f'{path} is not a readable zip archive '
                              f'({type(e).__name__}: {e}). Re-download it or '
                              'pass the extracted folder.') from e


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

    def match(self, raw: RawFile, context: bool = True) -> Optional[str]:
        """The tile id of ``raw`` if its name (and, with ``context``, its
        ground-truth context) fits this rule, else None."""
        m = re.fullmatch(self.pattern, raw.name, flags=re.IGNORECASE)
        if m is None:
            return None
        if context and self.ground_truth is not None and \
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


def tile_sort_key(tile: str):
    """Natural order of tile ids: ``area2`` before ``area10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', tile)]


#: Roles filled from ground truth (colour-coded labels).
LABEL_ROLES = ('ann', 'ann_eroded')


def _preference(raw: RawFile, role: str) -> Tuple[int, int]:
    # the COMPLETE ground truth over gts_for_participants; never for images
    complete = role in LABEL_ROLES and any('complete' in p.lower()
                                           for p in raw.context)
    return (0 if complete else 1, len(str(raw)))


def _distinct(raws: Sequence[RawFile]) -> List[RawFile]:
    """One file per different content (size, CRC-32), first kept."""
    seen, out = set(), []
    for raw in raws:
        fingerprint = raw.fingerprint()
        if fingerprint not in seen:
            seen.add(fingerprint)
            out.append(raw)
    return out


def _relabel_colour_labels(tile: str, roles: Dict[str, List[RawFile]],
                           spec: DatasetSpec) -> None:
    """Tell optical candidates of a tile apart by content: files that are
    colour-coded labels (see :func:`~.labels.is_colour_label`) leave the
    optical role and join the label role whose file-name rule they fit."""
    raws = roles.get('img', [])
    if len(_distinct(raws)) < 2:
        return
    labels = [raw for raw in raws if looks_like_colour_label(raw)]
    roles['img'] = [raw for raw in raws if raw not in labels]
    for raw in labels:
        for rule in spec.rules:
            if rule.role in LABEL_ROLES and \
                    rule.match(raw, context=False) == tile:
                roles.setdefault(rule.role, []).append(raw)
                break
    if not roles['img']:
        del roles['img']


def match_files(files: Sequence[RawFile], spec: DatasetSpec
                ) -> Dict[str, Dict[str, RawFile]]:
    """Assign found files to ``{tile: {role: RawFile}}``.

    Several files for the same tile and role are resolved only when that
    cannot be a guess:

    - copies with the same content (size and CRC-32, e.g. a zip and its
      extracted copy): the shortest path is taken;
    - optical candidates that differ: those whose content is a colour-coded
      label (the six ISPRS colours, e.g. Vaihingen ground truth, which has
      the image's file name, unzipped into an unmarked folder) are labels,
      never the image;
    - labels: a ``*COMPLETE*`` archive/folder is preferred (over
      ``gts_for_participants``).

    Any other choice between different files is refused, naming them all.
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
        _relabel_colour_labels(tile, roles, spec)
        matched[tile] = {}
        for role, raws in roles.items():
            raws = sorted(raws, key=lambda r: _preference(r, role))
            best = raws[0]
            same_rank = _distinct([
                r for r in raws
                if _preference(r, role)[0] == _preference(best, role)[0]
            ])
            if len(same_rank) > 1:
                listing = '\n  '.join(map(str, same_rank))
                raise ConversionError(
                    f'Tile {tile}: several different files (content) could '
                    f'be its {ROLE_NAMES[role]}:\n  {listing}'
                    '\nChoosing one would be a guess. Keep only one of them '
                    'under RAW_PATH, or put ground truth in an archive or '
                    'folder whose name marks it (e.g. *ground_truth*).')
            matched[tile][role] = best
    return matched
