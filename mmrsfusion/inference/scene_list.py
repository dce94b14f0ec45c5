"""Mapping the scenes of a scene list with one or many processes
(``torchrun``, slurm): the scenes' blocks shared among the ranks, each
output written by one rank, resumable after any rank is killed, and a
summary of the run."""
import json
import os
import os.path as osp
import shutil
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
import rasterio
from mmengine.dist import all_gather_object, barrier, get_dist_info

from mmrsfusion.io import check_outputs
from mmrsfusion.io.gdal_env import gdal_env
from mmrsfusion.io.raster_scene import RasterScene
from mmrsfusion.utils import Progress
from .class_polygons import check_vector_options
from .scene_inference import (block_plans, file_id,
                              map_blocks, output_key, scene_ranges,
                              window_options)
from .scene_output import NODATA, SceneOutputs

#: Folder of ``out_dir`` holding the run's state: per scene its finished
#: record ``<name>.json`` and, while it is mapped, its computed blocks
#: ``<name>/block_<i>.npz``.
STATE_DIR = '.predict_scenes'


def predict_scenes(model,
                   scenes: Sequence[Mapping],
                   out_dir: str,
                   *,
                   classes: Optional[Sequence[str]] = None,
                   palette: Optional[Sequence[Sequence[int]]] = None,
                   block_size: int = 2048,
                   batch_windows: Optional[int] = None,
                   crop_size: Optional[Sequence[int]] = None,
                   stride: Optional[Sequence[int]] = None,
                   bands: Optional[Mapping[str, Sequence[int]]] = None,
                   elevation_ranges: Optional[Mapping[str, Sequence[float]]]
                   = None,
                   resume: bool = False,
                   overwrite: bool = False,
                   fingerprint: Optional[dict] = None,
                   summary: Optional[str] = None,
                   progress: bool = True,
                   amp: bool = False,
                   overlap: bool = True,
                   vector: bool = False,
                   simplify: float = 0.0,
                   on_block_done: Optional[Callable[[int, int], None]] = None
                   ) -> dict:
    """Map ``scenes`` into ``out_dir/<name>.tif`` (class maps as
    :func:`~.scene_inference.predict_scene` writes them, the same bytes)
    and, with ``vector``, their class polygons ``out_dir/<name>.gpkg``,
    with every process of the ``torch.distributed`` group (one process
    without one).

    Work is shared by blocks: the blocks of all scenes, in scene order, go
    round-robin to the ranks (so many small scenes spread by scene, and one
    very large scene by block). The steps, each ended by all ranks together:

    1. each scene's elevation ranges and grid, found by the rank that owns
       the scene (scene ``j`` is owned by rank ``j % world_size``) and
       gathered by all;
    2. every rank computes its blocks and stores each, atomically, under
       ``out_dir/.predict_scenes/<name>/`` (compressed class indices, and
       probabilities when a model output needs them);
    3. the owner of each scene writes its GeoTIFF from those blocks in
       block order (:class:`SceneOutputs`: written as ``.part`` and renamed
       when complete; with ``vector`` the polygons of the finished map
       too, renamed before the map), records the scene as finished with
       its statistics (``.predict_scenes/<name>.json``, atomic; the
       polygons' path as ``vector``), then drops its blocks;
    4. rank 0 writes the ``summary`` JSON (atomic): per scene and in total
       the mapped pixels (valid, not :data:`NODATA`) and each class's pixels
       and area in map units (pixels x pixel area of the scene's CRS), the
       seconds and the number of processes.

    Blocks and outputs depend only on the scene and the options, never on
    the number of processes or which rank computed them: any number of
    ranks writes the same bytes. With ``resume`` (after a run was stopped
    or any of its ranks killed) finished scenes, stored blocks and the
    blocks already written into a ``.part`` file are kept, if they were
    made with the same inputs and options (else a ValueError naming what
    differs). Without it, a previous run's state is dropped first.

    An error of one rank in steps 1 and 3 is raised on every rank (as a
    RuntimeError naming the rank, on the others), so that no rank waits
    for it.

    Args:
        model: A :class:`MultiModalEncoderDecoder` in eval mode (on each
            rank its own device).
        scenes (Sequence[dict]): ``name`` and ``paths`` (modality -> file)
            per scene, e.g. from
            :func:`~mmrsfusion.datasets.scene_dataset.scene_rows`; names
            must be unique.
        out_dir (str): Output folder (created).
        vector (bool): Also write each scene's class polygons
            (:func:`~.class_polygons.write_class_polygons`) into
            ``out_dir/<name>.gpkg``; ``simplify``: their tolerance in map
            units.
        summary (str, optional): Summary path; defaults to
            ``out_dir/summary.json``.
        on_block_done (callable, optional): Called ``(done, total)`` on
            each rank after each block it stored (its own blocks).
        Others: as :func:`~.scene_inference.predict_scene`.

    Returns:
        dict: The summary (on every rank).
    """
    start = time.time()
    rank, world = get_dist_info()
    names = [str(s['name']) for s in scenes]
    if len(set(names)) != len(names):
        raise ValueError(f'scene names must be unique, got {names}')
    check_vector_options(vector, simplify)
    classes = list(classes or [f'class_{i}' for i in range(
        model.decode_head.num_classes)])
    state = osp.join(out_dir, STATE_DIR)
    summary = summary or osp.join(out_dir, 'summary.json')
    outs = {n: osp.join(out_dir, n + '.tif') for n in names}
    vectors = {n: osp.join(out_dir, n + '.gpkg') if vector else None
               for n in names}
    grids = [window_options(model, s['paths'], block_size, batch_windows,
                            crop_size, stride, bands, elevation_ranges)
             for s in scenes]
    run_keys = [_run_key(s['paths'], g, elevation_ranges, fingerprint,
                         vector, simplify)
                for s, g in zip(scenes, grids)]
    finished = {n for n, k in zip(names, run_keys)
                if resume and _finished(state, n, outs[n], k, vectors[n])}
    inputs = {f'{n} {m}': p for s, n in zip(scenes, names)
              for m, p in s['paths'].items()}
    check_outputs(dict(
        [(f'scene {n}', outs[n]) for n in names if n not in finished] +
        [(f'scene {n} --vector', vectors[n]) for n in names
         if n not in finished]), inputs, overwrite)
    check_outputs({'--summary': summary}, inputs, overwrite or resume)
    if not resume and rank == 0 and osp.isdir(state):
        shutil.rmtree(state)
    for j, n in enumerate(names):  # killed between finishing and cleaning
        if n in finished and j % world == rank:
            shutil.rmtree(osp.join(state, n), ignore_errors=True)
    barrier()

    # 1. grids and elevation ranges, by each scene's owner
    todo = [j for j, n in enumerate(names) if n not in finished]
    mine = [j for j in todo if j % world == rank]

    def describe(j):
        with gdal_env(), RasterScene(
                scenes[j]['paths'], model.modalities, bands) as scene:
            ranges = scene_ranges(scene, elevation_ranges, block_size)
            return j, dict(
                height=scene.height, width=scene.width,
                crs=None if scene.crs is None else scene.crs.to_wkt(),
                transform=tuple(scene.transform),
                units=None if scene.crs is None else
                scene.crs.linear_units,
                blocks=scene.blocks(block_size),
                key=output_key(model.modalities, scene, grids[j], ranges,
                               fingerprint),
                ranges=ranges)

    info = dict(_together(lambda: [describe(j) for j in mine]))
    for j in todo:
        _check_stored_key(state, names[j], info[j]['key'], resume,
                          j % world == rank)

    # 2. blocks, round-robin over all scenes' blocks
    units = [(j, i) for j in todo for i in range(len(info[j]['blocks']))]
    ours: Dict[int, List[int]] = {}
    for k, (j, i) in enumerate(units):
        if k % world == rank and not osp.isfile(_block_file(state, names[j],
                                                            i)):
            ours.setdefault(j, []).append(i)
    plans = {j: block_plans(info[j]['height'], info[j]['width'],
                            info[j]['blocks'], blocks, grids[j])
             for j, blocks in ours.items()}
    total = sum(len(ys) * len(xs) for p in plans.values()
                for ys, xs in p.values())
    bar = Progress(total, 'windows') if progress and total and rank == 0 \
        else None
    count = [0, sum(len(b) for b in ours.values())]

    def stored(_):
        count[0] += 1
        if on_block_done is not None:
            on_block_done(*count)

    for j, blocks in ours.items():
        folder = osp.join(state, names[j])
        os.makedirs(folder, exist_ok=True)
        with gdal_env(), RasterScene(
                scenes[j]['paths'], model.modalities, bands) as scene:
            map_blocks(model, scene, info[j]['blocks'], plans[j], blocks,
                       info[j]['ranges'], grids[j],
                       lambda i, span, c, p, n=names[j]:
                       _store_block(state, n, i, c),
                       False, amp=amp, overlap=overlap,
                       progress=None if bar is None else bar.update,
                       on_written=stored)
    if bar is not None:
        bar.close()
    barrier()

    # 3. each scene's GeoTIFF, by its owner
    def assemble(j):
        return _assemble(state, names[j], outs[names[j]], info[j],
                         run_keys[j], classes, palette, grids[j]['tile'],
                         resume, vectors[names[j]], simplify)

    _together(lambda: [assemble(j) for j in mine])
    barrier()

    # 4. the summary
    result = None
    if rank == 0:
        result = _summary(state, names, classes, time.time() - start, world,
                          len(finished))
        _write_json(summary, result)
    return all_gather_object(result)[0] if world > 1 else result


def _together(fn: Callable) -> list:
    """``fn()`` on every rank, its results gathered from all ranks (a
    flat list); an exception on any rank raised on every rank."""
    try:
        out, error = fn(), None
    except Exception as e:  # handed to the other ranks, then raised
        out, error = [], e
    rank, world = get_dist_info()
    if world == 1:
        if error is not None:
            raise error
        return out
    gathered = all_gather_object(
        (out, None if error is None else f'{type(error).__name__}: {error}'))
    if error is not None:
        raise error
    for r, (_, message) in enumerate(gathered):
        if message is not None:
            raise RuntimeError(f'rank {r} failed: {message}')
    return [item for items, _ in gathered for item in items]


def _record(state: str, name: str) -> str:
    return osp.join(state, name + '.json')


def _block_file(state: str, name: str, index: int) -> str:
    return osp.join(state, name, f'block_{index}.npz')


def _write_json(path: str, obj) -> None:
    """Write ``obj`` to ``path`` atomically (temp file, fsync, rename)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _run_key(paths: Mapping[str, str], grid: dict,
             elevation_ranges: Optional[Mapping[str, Sequence[float]]],
             fingerprint: Optional[dict], vector: bool,
             simplify: float) -> dict:
    """What a finished scene's outputs depend on, known before opening it:
    the ``fingerprint`` items (model, config), its input files and the
    options (the elevation ranges found in the scene follow from those),
    the polygons' among them."""
    key = dict(fingerprint or {})
    options = {k: grid[k] for k in ('block_size', 'crop_size', 'stride',
                                    'bands')}
    if vector:
        options.update(vector=True, simplify=float(simplify))
    key.update(inputs={n: file_id(p) for n, p in paths.items()},
               options=options,
               elevation_ranges=dict(elevation_ranges or {}))
    return json.loads(json.dumps(key))


def _compare(path: str, old: dict, new: dict, name: str) -> None:
    new = json.loads(json.dumps(new))
    if old != new:
        diff = sorted(k for k in set(old) | set(new)
                      if old.get(k) != new.get(k))
        raise ValueError(
            f'--resume: {path} (scene {name!r}) was written by a run with '
            f'other {diff}; rerun those arguments, or start over without '
            f'--resume')


def _finished(state: str, name: str, out: str, run_key: dict,
              vector: Optional[str]) -> bool:
    """Whether scene ``name`` was finished (its map and polygons
    ``vector`` written) by a run with ``run_key`` (a ValueError if by
    another run)."""
    path = _record(state, name)
    if not (osp.isfile(path) and osp.isfile(out)
            and (vector is None or osp.isfile(vector))):
        return False
    with open(path) as f:
        _compare(path, json.load(f)['run_key'], run_key, name)
    return True


def _check_stored_key(state: str, name: str, key: dict, resume: bool,
                      owner: bool) -> None:
    """Refuse stored blocks of scene ``name`` made with another ``key``
    (on resume); the scene's ``owner`` records ``key`` for a later
    resume."""
    path = osp.join(state, name, 'key.json')
    if resume and osp.isfile(path):
        with open(path) as f:
            _compare(path, json.load(f), key, name)
    if owner:
        _write_json(path, key)


def _store_block(state: str, name: str, index: int,
                 classes: np.ndarray) -> None:
    """Store block ``index``'s class map (h, w) uint8 atomically."""
    path = _block_file(state, name, index)
    tmp = f'{path}.tmp{os.getpid()}.npz'
    np.savez_compressed(tmp, classes=classes)
    os.replace(tmp, path)


def _assemble(state: str, name: str, out: str, info: dict, run_key: dict,
              classes: Sequence[str], palette, tile: int, resume: bool,
              vector: Optional[str], simplify: float) -> None:
    """Write scene ``name``'s GeoTIFF (and its polygons ``vector``) from
    its stored blocks in block order, record it as finished with its class
    counts, drop the blocks."""
    from rasterio.crs import CRS
    profile = dict(height=info['height'], width=info['width'],
                   crs=None if info['crs'] is None else CRS.from_wkt(
                       info['crs']),
                   transform=rasterio.Affine(*info['transform'][:6]))
    outputs = SceneOutputs(out, profile, classes, palette, tile, info['key'],
                           resume=resume, vector=vector, simplify=simplify)
    counts = np.zeros(NODATA + 1, np.int64)
    for i, span in enumerate(info['blocks']):
        path = _block_file(state, name, i)
        try:
            with np.load(path) as data:
                block = data['classes']
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f'{path}: stored block of scene {name!r} '
                             f'cannot be read ({e}); start over without '
                             f'--resume') from e
        counts += np.bincount(block.ravel(), minlength=NODATA + 1)
        if i not in outputs.done:
            outputs.write(i, tuple(span), block)
    area = abs(profile['transform'].determinant)
    pixels = {c: int(counts[k]) for k, c in enumerate(classes)}
    _write_json(_record(state, name), dict(
        run_key=run_key, output=out, vector=vector, height=info['height'],
        width=info['width'], pixels=int(counts[:NODATA].sum()),
        pixel_area=area,
        area_unit='pixel' if info['crs'] is None else
        f"square {info['units'] or 'unit'}",
        class_pixels=pixels,
        class_areas={c: n * area for c, n in pixels.items()}))
    outputs.finish()
    shutil.rmtree(osp.join(state, name))


def _summary(state: str, names: Sequence[str], classes: Sequence[str],
             seconds: float, world: int, resumed: int) -> dict:
    """The run's summary from the scenes' finished records."""
    scenes = []
    for name in names:
        with open(_record(state, name)) as f:
            record = json.load(f)
        record.pop('run_key')
        scenes.append(dict(name=name, **record))
    units = sorted({s['area_unit'] for s in scenes})
    return dict(
        scenes=scenes,
        total=dict(
            scenes=len(scenes),
            pixels=sum(s['pixels'] for s in scenes),
            class_pixels={c: sum(s['class_pixels'][c] for s in scenes)
                          for c in classes},
            # areas add up only in one unit
            class_areas={c: sum(s['class_areas'][c] for s in scenes)
                         for c in classes} if len(units) == 1 else None,
            area_unit=units[0] if len(units) == 1 else None),
        scenes_resumed=resumed,
        processes=world,
        seconds=round(seconds, 3))
