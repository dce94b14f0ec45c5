"""Mapping a whole scene: sliding-window inference over rasters of any
size, block by block, into GeoTIFFs."""
import hashlib
import os
import os.path as osp
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, nullcontext
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.runner.amp import autocast

from mmrsfusion.apis import init_model
from mmrsfusion.io import check_outputs, normalize_elevation
from mmrsfusion.io.gdal_env import gdal_env
from mmrsfusion.io.raster_scene import RasterScene, Span
from mmrsfusion.models.utils import accumulate_windows, window_spans
from mmrsfusion.utils import Progress
from .scene_output import (NODATA, PROB_SCALE, SceneOutputs,
                           class_names_sidecar)
from .stage_timer import StageTimer

def load_segmentor(config: str,
                   checkpoint: str,
                   device: str = 'cpu',
                   cfg_options: Optional[dict] = None):
    """:func:`~mmrsfusion.apis.init_model` (the model loaded as
    ``tools/test.py`` loads it) and its config.

    Returns:
        tuple: ``(model, cfg)``, the model in eval mode on ``device``.
    """
    model = init_model(config, checkpoint, device, cfg_options)
    return model, model.cfg


def class_meta(model) -> Tuple[List[str], Optional[list]]:
    """Class names and palette of a model from
    :func:`~mmrsfusion.apis.init_model` (its ``dataset_meta``), checked
    against its number of classes (``class_i`` names / no palette when
    they do not match)."""
    meta = getattr(model, 'dataset_meta', None) or {}
    classes = list(meta.get('classes') or [])
    num = model.decode_head.num_classes
    if len(classes) != num:
        classes = [f'class_{i}' for i in range(num)]
    palette = meta.get('palette')
    if palette is not None and len(palette) < num:
        palette = None
    return classes, palette


def file_id(path: str) -> list:
    """What identifies a file's content for a resume: its absolute path,
    size and modification time."""
    st = os.stat(path)
    return [osp.abspath(path), st.st_size, int(st.st_mtime)]


def _tile_side(block_size: int) -> int:
    for side in (256, 128, 64, 32, 16):
        if block_size % side == 0:
            return side
    raise ValueError(f'--block-size: expected a multiple of 16 (GeoTIFF '
                     f'tiles), got {block_size}')


def predict_scene(model,
                  inputs: Mapping[str, str],
                  out: str,
                  *,
                  probs: Optional[str] = None,
                  conf: Optional[str] = None,
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
                  progress: bool = True,
                  on_block_done: Optional[Callable[[int, int], None]] = None,
                  amp: bool = False,
                  overlap: bool = True,
                  timer: Optional[StageTimer] = None,
                  vector: Optional[str] = None,
                  simplify: float = 0.0) -> dict:
    """Map a scene with ``model`` (a segmentor in eval mode).

    Steps: open the inputs on the reference grid (:class:`RasterScene`);
    find each elevation modality's valid min/max over the whole scene (one
    pass, unless given in ``elevation_ranges``); then for each block of
    ``block_size`` x ``block_size`` output pixels, read the region covered
    by the sliding windows that touch it, normalise it as the loader does
    (elevation min-max with the scene's range, via
    :func:`normalize_elevation`) and as the data preprocessor does, run
    those windows ``batch_windows`` at a time (:func:`accumulate_windows`),
    and write the block's averaged logits' argmax / softmax. With
    ``overlap`` a reader thread reads the next block's region and a writer
    thread writes the previous block while the model runs (rasterio
    releases the GIL while reading and writing); the results are the same
    bytes as without, and memory is at most three blocks' regions.

    The windows are the global grid of the whole scene (mmseg's
    ``slide_inference`` on the scene as one tile), and each pixel's logits
    are summed over the same windows in the same order, so the result equals
    whole-tile slide inference; windows touching two blocks are computed
    for each (cost at most ``((block + crop) / block)^2``). Memory is one
    block's region, independent of the scene size.

    Modalities of the model's spec without an input are absent: the
    scene's (1, M) presence marks them so, repeated with the batched
    windows; the segmentor's :meth:`apply_presence` zeroes their channels
    and a mask-aware model (SGMA) leaves them out, exactly as
    ``tools/test.py`` with those modalities absent. Elevation inputs are
    normalised by their spec entry's ``norm`` and ``nodata`` (the loader's
    rule).

    Args:
        model: A :class:`MultiModalEncoderDecoder` (``modalities``,
            ``data_preprocessor``, ``apply_presence``, ``encode_decode``,
            ``test_cfg`` with ``crop_size`` / ``stride`` unless given).
        inputs (dict): Modality name -> raster file.
        out (str): Class GeoTIFF; ``probs`` / ``conf``: optional outputs
            (see :class:`SceneOutputs`).
        classes, palette: Class names and colours for the output.
        block_size (int): Output pixels per block side (multiple of 16).
        batch_windows (int, optional): Windows per forward; defaults to
            ``test_cfg.batch_windows`` or 1.
        crop_size, stride (tuple, optional): Override ``test_cfg``'s.
        bands (dict, optional): Modality -> 0-based bands to read, instead
            of the spec's.
        elevation_ranges (dict, optional): Modality -> (min, max) to use
            instead of the first pass.
        resume (bool): Skip the blocks an interrupted identical run wrote
            (after reading its partial files back).
        overwrite (bool): Replace existing output files. An output that is
            an input or another output is always refused
            (:func:`check_outputs`).
        fingerprint (dict, optional): Extra items (model, config) that a
            resumed run must match.
        progress (bool): Report windows done, elapsed time and ETA
            (:class:`Progress`).
        on_block_done (callable, optional): Called ``(done, total)`` after
            each block is written.
        amp (bool): Run the model under mixed precision (autocast: float16
            on a GPU, bfloat16 on the CPU); logits are summed in float32.
        overlap (bool): Read and write in background threads, overlapped
            with the model. Defaults to True.
        timer (StageTimer, optional): Receives the seconds of the stages
            ``read`` (reads, resampling, elevation normalisation),
            ``preprocess`` (data preprocessor, presence), ``forward``
            (the model on the batched windows), ``accumulate`` (summing
            and averaging the windows' logits), ``outputs`` (argmax /
            softmax to uint8), ``write`` and ``wait`` (the model's thread
            waiting for the reader or the writer).
        vector (str, optional): GeoPackage of the class polygons, made from
            the finished map; ``simplify``: their tolerance in map units
            (see :class:`SceneOutputs`).

    Returns:
        dict: ``height``, ``width``, ``blocks``, ``blocks_skipped``,
        ``windows`` (computed), ``scene_windows`` (of the whole-tile grid),
        ``elevation_ranges``, ``absent``.
    """
    spec = model.modalities
    check_outputs({'-o': out, '--probs': probs, '--confidence': conf,
                   '--vector': vector,
                   '-o (its class names)': class_names_sidecar(out)},
                  {f'--input {n}': p for n, p in inputs.items()}, overwrite)
    grid = window_options(model, inputs, block_size, batch_windows,
                          crop_size, stride, bands, elevation_ranges)
    absent = [name for name in spec.names if name not in inputs]
    classes = list(classes or [f'class_{i}' for i in range(
        model.decode_head.num_classes)])

    with gdal_env(), RasterScene(inputs, spec, bands) as scene:
        ranges = scene_ranges(scene, elevation_ranges, block_size)
        blocks = scene.blocks(block_size)
        key = output_key(spec, scene, grid, ranges, fingerprint, probs, conf)
        outputs = SceneOutputs(
            out,
            dict(crs=scene.crs, transform=scene.transform,
                 height=scene.height, width=scene.width),
            classes,
            palette,
            grid['tile'],
            key,
            probs=probs,
            conf=conf,
            resume=resume,
            vector=vector,
            simplify=simplify)
        todo = [i for i in range(len(blocks)) if i not in outputs.done]
        plans = block_plans(scene.height, scene.width, blocks, todo, grid)
        total = sum(len(ys) * len(xs) for ys, xs in plans.values())
        bar = Progress(total, 'windows') if progress and total else None

        def written(n):
            if on_block_done is not None:
                on_block_done(len(blocks) - len(todo) + n + 1, len(blocks))

        try:
            map_blocks(model, scene, blocks, plans, todo, ranges, grid,
                       outputs.write, len(outputs.parts) > 1, amp=amp,
                       overlap=overlap, timer=timer,
                       progress=None if bar is None else bar.update,
                       on_written=written)
        except Exception as e:
            # nothing to resume, or an input error that the same arguments
            # (the resume fingerprint) would meet again
            if not outputs.done or isinstance(e, ValueError):
                outputs.discard()
            raise
        if bar is not None:
            bar.close()
        outputs.finish()
    spans_y, spans_x = grid_spans_of(scene.height, scene.width, grid)
    return dict(
        height=scene.height,
        width=scene.width,
        blocks=len(blocks),
        blocks_skipped=len(blocks) - len(todo),
        windows=total,
        scene_windows=len(spans_y) * len(spans_x),
        elevation_ranges=ranges,
        absent=absent)


def window_options(model, inputs: Mapping[str, str], block_size: int,
                   batch_windows: Optional[int],
                   crop_size: Optional[Sequence[int]],
                   stride: Optional[Sequence[int]],
                   bands: Optional[Mapping[str, Sequence[int]]],
                   elevation_ranges: Optional[Mapping[str, Sequence[float]]]
                   ) -> dict:
    """The checked window options of a run (see :func:`predict_scene`):
    ``crop_size``, ``stride`` (the model's ``test_cfg`` unless given),
    ``batch_windows``, ``block_size``, ``tile`` (GeoTIFF tile side) and
    ``bands``; a ValueError naming the option otherwise."""
    spec = model.modalities
    spec.check_names(list(bands or {}), '--bands')
    _check_elevation_ranges(spec, elevation_ranges or {})
    zscore = [m.name for m in spec if m.norm == 'zscore' and m.name in inputs]
    if zscore:
        raise ValueError(
            f"modalities {zscore}: norm='zscore' (the modality spec) needs "
            f"per-tile statistics; scene inference supports 'minmax' (with "
            f"the scene's range) and None")
    test_cfg = model.test_cfg
    crop_size = tuple(crop_size or test_cfg.get('crop_size') or ())
    stride = tuple(stride or test_cfg.get('stride') or ())
    if len(crop_size) != 2 or len(stride) != 2:
        raise ValueError('sliding windows needed: the config\'s test_cfg has '
                         'no crop_size / stride; give --window H W and '
                         '--stride H W')
    batch_windows = int(batch_windows or test_cfg.get('batch_windows', 1))
    for option, values in (('--window', crop_size), ('--stride', stride),
                           ('--block-size', (block_size, )),
                           ('--batch-windows', (batch_windows, ))):
        if not all(int(v) == v > 0 for v in values):
            raise ValueError(f'{option}: expected positive integers, got '
                             f'{" ".join(str(v) for v in values)}')
    return dict(crop_size=crop_size, stride=stride,
                batch_windows=batch_windows, block_size=block_size,
                tile=_tile_side(block_size), bands=dict(bands or {}))


def scene_ranges(scene: RasterScene,
                 given: Optional[Mapping[str, Sequence[float]]],
                 block_size: int) -> Dict[str, tuple]:
    """Each min-max elevation modality's (min, max): ``given``, else the
    scene's valid range (one windowed pass)."""
    ranges = {}
    for mod in scene.modalities:
        if mod.norm != 'minmax':
            continue
        values = (given or {}).get(mod.name)
        ranges[mod.name] = tuple(float(v) for v in values) if values \
            else scene.elevation_range(mod.name, block_size)
    return ranges


def output_key(spec, scene: RasterScene, grid: dict,
               ranges: Mapping[str, tuple], fingerprint: Optional[dict],
               probs: Optional[str] = None,
               conf: Optional[str] = None) -> dict:
    """What a scene's outputs depend on (the resume fingerprint): the
    ``fingerprint`` items (model, config), the input files, bands, window
    options, ``spec``, elevation ranges and which outputs are written."""
    key = dict(fingerprint or {})
    key.update(
        inputs={n: file_id(p) for n, p in scene.paths.items()},
        bands=scene.bands,
        block_size=grid['block_size'],
        crop_size=list(grid['crop_size']),
        stride=list(grid['stride']),
        modalities=spec.to_dict(),
        elevation_ranges={k: list(v) for k, v in ranges.items()},
        outputs=sorted(k for k, v in dict(probs=probs,
                                          conf=conf).items() if v))
    return key


def grid_spans_of(height: int, width: int, grid: dict):
    """The sliding windows of the whole scene, per axis."""
    return (window_spans(height, grid['crop_size'][0], grid['stride'][0]),
            window_spans(width, grid['crop_size'][1], grid['stride'][1]))


def block_plans(height: int, width: int, blocks: Sequence[Span],
                todo: Sequence[int], grid: dict) -> dict:
    """Block index -> the scene windows touching it, per axis, for
    ``todo``."""
    spans_y, spans_x = grid_spans_of(height, width, grid)
    return {i: _block_windows(blocks[i], spans_y, spans_x) for i in todo}


def map_blocks(model, scene: RasterScene, blocks: Sequence[Span],
               plans: dict, todo: Sequence[int], ranges: Dict[str, tuple],
               grid: dict, write: Callable, with_probs: bool, *,
               amp: bool = False, overlap: bool = True,
               timer: Optional[StageTimer] = None,
               progress: Optional[Callable] = None,
               on_written: Optional[Callable[[int], None]] = None) -> None:
    """Compute blocks ``todo`` of ``scene`` in order and hand each to
    ``write(index, span, classes, probs)`` (see :meth:`SceneOutputs.write`;
    ``probs`` None unless ``with_probs``); ``on_written(n)`` after the
    ``n``-th (0-based) is written. With ``overlap`` a reader thread reads
    the next block's region and a writer thread writes the previous block
    while the model runs."""
    spec = model.modalities
    presence = spec.presence([n for n in spec.names if n not in scene.paths])
    stage = timer if timer is not None else (lambda name: nullcontext())
    device = next(model.parameters()).device

    def read(i):
        with stage('read'):
            return _read_region(spec, scene, *plans[i], blocks[i], ranges)

    def write_block(i, classes, probs):
        with stage('write'):
            write(i, blocks[i], classes, probs)

    with ExitStack() as threads:
        reader, writer = (threads.enter_context(
            ThreadPoolExecutor(1)) if overlap else _Now()
            for _ in range(2))
        # the first block has nothing to overlap with: read it here
        ahead = _Now().submit(read, todo[0]) if todo else None
        written = None
        for n, i in enumerate(todo):
            with stage('wait'):
                raw, valid = ahead.result()
            if n + 1 < len(todo):
                ahead = reader.submit(read, todo[n + 1])
            logits = _region_logits(
                model, raw, presence, *plans[i], blocks[i],
                grid['batch_windows'], device, amp, stage, progress)
            del raw
            with stage('outputs'):
                classes_, probs_ = _block_outputs(logits, valid, with_probs)
            if written is not None:
                with stage('wait'):
                    written.result()
                if on_written is not None:
                    on_written(n - 1)
            written = writer.submit(write_block, i, classes_, probs_)
        if written is not None:
            with stage('wait'):
                written.result()
            if on_written is not None:
                on_written(len(todo) - 1)


def _check_elevation_ranges(spec, ranges: Mapping[str, Sequence[float]]
                            ) -> None:
    """Each of ``ranges`` (modality -> (min, max)) names an elevation
    modality of ``spec`` and has finite ``min < max``; else a ValueError."""
    spec.check_names(list(ranges), '--elevation-range')
    for name, values in ranges.items():
        if spec[name].kind != 'elevation':
            raise ValueError(f"--elevation-range {name}: modality '{name}' "
                             f"is {spec[name].kind}, not elevation")
        values = [float(v) for v in values]
        if len(values) != 2 or not np.isfinite(values).all() or \
                values[0] >= values[1]:
            raise ValueError(f'--elevation-range {name}: expected finite '
                             f'MIN,MAX with MIN < MAX, got {values}')


def _block_windows(block: Span, spans_y, spans_x):
    """The windows of the scene grid that touch ``block``, per axis."""
    y0, y1, x0, x1 = block
    return ([s for s in spans_y if s[0] < y1 and s[1] > y0],
            [s for s in spans_x if s[0] < x1 and s[1] > x0])


class _Now:
    """The executor of ``overlap=False``: runs each call at once."""

    def submit(self, fn, *args) -> Future:
        future = Future()
        future.set_result(fn(*args))
        return future


def _read_region(modalities, scene: RasterScene, ys, xs, block: Span,
                 ranges: Dict[str, tuple]) -> Tuple[np.ndarray, np.ndarray]:
    """The raw inputs (h, w, C) float32 of the region covered by the
    windows ``ys`` x ``xs`` (elevation normalised with the scene's range,
    absent modalities zero) and the validity (h, w) of ``block``."""
    ry0, ry1 = ys[0][0], ys[-1][1]
    rx0, rx1 = xs[0][0], xs[-1][1]
    region = (ry0, ry1, rx0, rx1)
    y0, y1, x0, x1 = block
    core = (slice(y0 - ry0, y1 - ry0), slice(x0 - rx0, x1 - rx0))
    raw = np.zeros((ry1 - ry0, rx1 - rx0, modalities.num_channels),
                   np.float32)
    valid = np.zeros((y1 - y0, x1 - x0), bool)
    for mod in modalities:
        if mod.name not in scene.paths:
            continue
        arr, ok = scene.read(mod.name, region)
        valid |= ok[core]
        if mod.kind == 'elevation':
            arr = normalize_elevation(
                arr, mod.norm, (), scene.paths[mod.name],
                ranges.get(mod.name)) if ok.any() else np.zeros_like(arr)
        raw[..., mod.slice] = arr
    return raw, valid


def _region_logits(model, raw: np.ndarray, presence: torch.Tensor, ys, xs,
                   block: Span, batch_windows: int, device: torch.device,
                   amp: bool, stage, progress) -> torch.Tensor:
    """Averaged logits (K, h, w) float32 over ``block`` from the region's
    raw inputs (h', w', C) (:func:`_read_region`)."""
    ry0, ry1 = ys[0][0], ys[-1][1]
    rx0, rx1 = xs[0][0], xs[-1][1]
    y0, y1, x0, x1 = block
    with torch.no_grad():
        with stage('preprocess'):
            inputs = torch.from_numpy(raw).permute(2, 0, 1)
            inputs = model.data_preprocessor(dict(inputs=[inputs]),
                                             False)['inputs']
            inputs, presence = model.apply_presence(
                inputs[:, :, :ry1 - ry0, :rx1 - rx0],
                presence.to(inputs.device))
        windows = [(a - ry0, b - ry0, c - rx0, d - rx0) for a, b in ys
                   for c, d in xs]
        wy1, wy2, wx1, wx2 = windows[0]
        metas = [dict(img_shape=(wy2 - wy1, wx2 - wx1))]
        def encode(crops, mask):
            with stage('forward'), autocast(device_type=device.type,
                                            enabled=amp):
                return model.encode_decode(crops, metas, mask).float()

        with stage('accumulate'):
            logit_sum = inputs.new_zeros(
                (1, model.decode_head.num_classes) + tuple(inputs.shape[2:]))
            count = inputs.new_zeros((1, 1) + tuple(inputs.shape[2:]))
            accumulate_windows(encode, inputs, windows, logit_sum, count,
                               batch_windows, progress, presence)
            logits = (logit_sum / count)[0][:, y0 - ry0:y1 - ry0,
                                            x0 - rx0:x1 - rx0]
    return logits


def _block_outputs(logits: torch.Tensor, valid: np.ndarray, with_probs: bool
                   ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Class map (h, w) uint8 and, if ``with_probs``, probabilities
    (K, h, w) uint8 on the :data:`PROB_SCALE` scale, :data:`NODATA` where
    not ``valid``."""
    # max(0).indices = argmax(0) (first maximum), ~6x faster on CPU
    classes = logits.max(0).indices.to(torch.uint8).cpu().numpy()
    classes[~valid] = NODATA
    probs = None
    if with_probs:
        probs = torch.round(logits.softmax(0) * PROB_SCALE).to(
            torch.uint8).cpu().numpy()
        probs[:, ~valid] = NODATA
    return classes, probs


def config_fingerprint(cfg, checkpoint: str) -> dict:
    """What a resumed run must share besides the inputs: the config text
    and the checkpoint file."""
    return dict(
        config=hashlib.sha256(cfg.pretty_text.encode()).hexdigest(),
        checkpoint=file_id(checkpoint))
