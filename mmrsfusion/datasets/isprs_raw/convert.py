"""Orchestration: plan the tiles of a split, convert them in parallel into a
staging folder and commit it atomically, with a report."""
import json
import os
import os.path as osp
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from mmrsfusion.utils import Progress
from ..isprs import ISPRS_CLASSES as CLASSES
from ..staging import commit, owned_prefix, remove_stale
from .discovery import DatasetSpec, discover, match_files, tile_sort_key
from .layout import (COLOUR_TOLERANCE, ELEVATION_MISMATCH, IGNORE_INDEX,
                     LAYOUT, MANIFEST, PALETTE, ROLE_NAMES, ConversionError)
from .raw_file import RawFile
from .tiles import TileJob, convert_tile


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
                    f'{", ".join(sorted(matched, key=tile_sort_key))}.')
        raise ConversionError(
            f'No {spec.name} tile of the {spec.split_name!r} split found '
            f'under {", ".join(map(str, raw_paths))} ({len(files)} files '
            f'seen, e.g. {examples}).{hint}\nLooked for (in zip archives '
            f'or folders, at any depth):\n  {_looked_for(spec)}')
    problems = []
    for tile in sorted(present, key=tile_sort_key):
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
    ignored = sorted((t for t in matched if t not in split_of),
                     key=tile_sort_key)
    plan = [(split_of[t], t, present[t]) for split in spec.splits
            for t in sorted(present, key=tile_sort_key)
            if split_of[t] == split]
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


def _run_jobs(jobs: Sequence[TileJob], nproc: int,
              progress: bool) -> List[dict]:
    """Run :func:`convert_tile` on every job, in order, reporting tiles
    done with :class:`Progress`.

    With several processes the pool is terminated (workers stopped) as soon
    as one job fails, before the caller removes the staging folder.
    """
    bar = Progress(len(jobs), 'tiles') if progress else None
    results = []
    try:
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
    finally:
        if bar is not None:  # the last line, also before an error
            bar.close()
    return results


def _data_warnings(tiles: Dict[str, dict], spec: DatasetSpec) -> List[str]:
    """Warnings about converted data that is valid but needs attention."""
    messages = []
    wide = {t: (info['img_dtype'], info['img_max'])
            for t, info in tiles.items() if info['img_dtype'] != 'uint8'}
    if wide:
        dtypes = sorted({d for d, _ in wide.values()})
        messages.append(
            f'{len(wide)} optical images are {"/".join(dtypes)}, not uint8 '
            f'(largest value {max(m for _, m in wide.values())}; tiles '
            f'{", ".join(sorted(wide, key=tile_sort_key))}); they are '
            'written unchanged and loaded with their raw values, while the '
            'shipped configs\' optical mean/std are for 8-bit values '
            '(0-255). Set the mean/std of the optical modality in the same '
            'units (and OpticalOnly\'s value_range), or rescale the images.')
    for role in ('dsm', 'ndsm'):
        empty = sorted((t for t, info in tiles.items()
                        if (info.get(f'{role}_stats') or {}).get(
                            'min', 0) is None), key=tile_sort_key)
        if empty:
            messages.append(
                f'The {ROLE_NAMES[role]} of {len(empty)} tiles has no valid '
                f'value (all no-data): {", ".join(empty)}. Their elevation '
                'carries no information and the dataset loader refuses '
                'such whole tiles: replace the files, or leave these tiles '
                'out (a custom split table).')
    return messages


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
            system temporary folder). Scratch folders left there by a killed
            conversion are removed by the next one (as are staging folders
            next to ``out_dir``).
        overwrite: Replace a conversion that already exists in ``out_dir``:
            the layout folders and manifest this run writes, and layout
            folders of the earlier one that this run does not write (e.g.
            ``ndsm_dir`` after ``--elevation dsm``). Other files in
            ``out_dir`` are kept. Without it an existing conversion is
            refused.
        elevation_mismatch: ``'error'`` (default) stops when a DSM / nDSM and
            its image differ in size, naming both files and sizes;
            ``'resize'`` resamples the elevation to the image size by
            nearest neighbour and reports it.
        tolerance: Colour tolerance for labels (see
            :func:`colour_to_index`).
        optical_bands: Expected number of optical bands (checked).
        progress: Report tiles done, elapsed time and ETA
            (:class:`Progress`).

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
    entries = [folder for folder, _ in LAYOUT.values()] + [MANIFEST]
    conflicts = _existing_conflicts(out_dir, entries)
    if conflicts and not overwrite:
        raise ConversionError(
            'OUT_DIR already holds a conversion: ' + ', '.join(conflicts) +
            '. Pass --overwrite to replace them, or choose another OUT_DIR.')

    parent = osp.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    staging_kind = f'.{osp.basename(out_dir)}.converting-'
    remove_stale(tmp_dir or tempfile.gettempdir(), 'isprs-raw-')
    remove_stale(parent, staging_kind)
    scratch = tempfile.mkdtemp(prefix=owned_prefix('isprs-raw-'),
                               dir=tmp_dir)
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

        staging = tempfile.mkdtemp(prefix=owned_prefix(staging_kind),
                                   dir=parent)
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
        for m in _data_warnings(tiles, spec):
            messages.append(m)
            _emit(m)
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
        written = {LAYOUT[r][0] for r in spec.roles}
        commit(staging, out_dir, [
            c for c in (osp.basename(p) for p in conflicts)
            if c not in written and c != MANIFEST
        ])
        staging = None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    n_clips = sum(info['clips'] for info in tiles.values())
    print(f'Done: {len(tiles)} tiles, {n_clips} files per modality, in '
          f'{out_dir}')
    return ConversionReport(out_dir, tiles, missing, ignored, messages)
