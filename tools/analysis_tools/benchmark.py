"""Benchmark a config's model like MoBaNet's Table III, and its training.

Prints trainable parameters, inference latency (ms per batch), throughput
(images/s) and peak memory at a given input size, on CUDA when available,
else on the CPU, each beside the *floor*: the bare frozen encoder's forward
on the same streams (what a frozen-backbone model cannot go below). Weights
are random unless ``--checkpoint`` is given: speed and memory do not depend
on their values. Optional parts:

- ``--amp``: the same under mixed precision (float16 autocast on a GPU,
  bfloat16 on the CPU), with the ratio to float32;
- ``--train``: a training step (data preprocessor with batch augments,
  forward, losses, backward, optimizer step: ``model.train_step`` with the
  config's optimizer wrapper, as the runner runs it) and its peak memory;
  with ``--amp`` also through ``MixedPrecisionOptimWrapper``;
- ``--slide H W``: sliding-window inference on one H x W tile (the
  config's slide ``crop_size`` / ``stride``, else ``--shape`` windows at
  2/3 stride), one window per forward (mmseg's loop) vs
  ``--batch-windows K`` per forward;
- ``--data N``: training samples per second through the config's train
  dataset and pipeline (N samples, the data root of the config or
  ``--cfg-options train_dataloader.dataset.data_root=...``); when the
  pipeline reads windows (``LoadMultiModalRandomWindow``), also the same
  samples read whole and cropped; with ``--data-vs CONFIG`` also CONFIG's
  train dataset, timed interleaved, and the ratio; each with the rise of
  the resident memory while it is built and sampled;
- ``--scene NAME=FILE ...``: whole-scene mapping (``predict_scene``: reads,
  resampling, normalisation, windows, accumulation, writing) against the
  bare batched forward of the same scene's windows (``--batch-windows``
  per forward, the same precision), in windows/s of the scene's grid,
  their ratio, and each stage's share of the mapping's wall time; with
  and without the overlapped reader / writer, interleaved
  ``--scene-repeat`` times;
- ``--agreement``: the argmax agreement of mixed precision with float32 on
  the config's test set (``tools/test.py``'s forward, ``--amp``'s
  precision) and the speed ratio;
- ``--reference PATH.py:FACTORY``: side by side with a model built by code
  outside the repository (e.g. the authors'): inference latency at batch 1
  and ``--batch-size``, a training step at ``--batch-size`` (fp32; with
  ``--amp`` also mixed precision) and the peak memory of each, every
  number as a ratio ours / theirs, timed interleaved (one call of each in
  turn, ``--repeat`` rounds, medians). ``FACTORY(in_channels,
  num_classes)`` must return an ``nn.Module`` mapping a (B, in_channels,
  H, W) float tensor to (B, num_classes, H, W) logits in train and eval
  mode; its parameters with ``requires_grad`` are the trained ones. Its
  training step: forward, cross-entropy on random labels, backward and
  the config's optimizer wrapper (the same optimizer as ours). With
  ``--merge-lora`` also our inference with the (non-cross-modal) LoRA
  merged into the frozen weights (``merge_lora``);
- ``--window-read FILE [FILE ...]``: one training sample's windows
  (``--shape``, ``--repeat`` random positions) read from each FILE as the
  windowed loader reads them (``WindowReader``: rasterio's windowed reads,
  GDAL block cache, the files kept open as in a dataloader worker) and
  by reading the whole file and cropping, interleaved, with their ratio
  and a check that the values agree (pass an image, an elevation and a
  label raster for one whole sample);
- ``--breakdown S [S ...]``: the backbone alone vs the whole forward at
  S x S (``--batch-size``), interleaved: the share of the rest (neck,
  fusion, heads) in the forward.

Peak memory: on a GPU the peak allocated memory of each part; on the CPU
the peak resident memory of the process during each part (sampled), how
much it rose above the part's start, and (training step) how far it is
above the process before the model was built (Python and the libraries):
roughly what a GPU's peak allocated memory counts (weights, activations,
gradients, optimizer state), plus the CPU allocator's cached and fragmented
memory and libraries loaded lazily by the first operations. For the
training step on the CPU also exactly what a GPU's peak allocated memory
counts: the peak bytes of live tensors during one more step, from the
profiler's allocation events, plus the tensors alive before it (weights,
optimizer state).

Example::

    python tools/analysis_tools/benchmark.py \
        configs/mobanet/dinov2_vitb_potsdam.py --shape 256 256 \
        --batch-size 4 --train --amp
"""
import argparse
import copy
import ctypes
import importlib.util
import os
import resource
import threading
import time
from contextlib import contextmanager, nullcontext
from typing import Optional, Tuple

import numpy as np
import torch
# the profiler's raw allocation events (its public tables hold no timeline)
from torch._C._autograd import DeviceType
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile
from mmengine.config import ConfigDict, DictAction
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner.amp import autocast
from mmengine.structures import PixelData
from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample

from mmrsfusion.checkpoint import load_trainable_checkpoint
from mmrsfusion.models.peft import merge_lora
from mmrsfusion.models.utils import slide_windows
from mmrsfusion.utils import load_config


def parse_args():
    parser = argparse.ArgumentParser(description='Benchmark a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--checkpoint',
        help='optional checkpoint to load (a trainable-only checkpoint gets '
        'its frozen backbone re-attached from the pretrained file)')
    parser.add_argument(
        '--shape', type=int, nargs=2, default=[256, 256], help='H W')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--repeat', type=int, default=20)
    parser.add_argument(
        '--train', action='store_true',
        help='also time a training step (--warmup / --repeat steps)')
    parser.add_argument(
        '--amp', action='store_true',
        help='also measure mixed precision (fp16 on GPU, bf16 on CPU)')
    parser.add_argument(
        '--slide', type=int, nargs=2, metavar=('H', 'W'),
        help='also time sliding-window inference on one H x W tile')
    parser.add_argument(
        '--batch-windows', type=int, default=8,
        help='windows per forward of the batched slide inference')
    parser.add_argument(
        '--data', type=int, default=0, metavar='N',
        help='also time N training samples through the config\'s pipeline')
    parser.add_argument(
        '--data-vs', metavar='CONFIG',
        help='with --data: also time the train dataset of CONFIG on as '
        'many samples, interleaved, and print the ratio (e.g. a scene vs '
        'the same pixels converted to tiles)')
    parser.add_argument(
        '--scene', nargs='+', metavar='NAME=FILE',
        help='also time mapping this scene (one raster per modality)')
    parser.add_argument(
        '--block-size', type=int, default=2048,
        help='output block side of the scene mapping')
    parser.add_argument(
        '--scene-repeat', type=int, default=3,
        help='interleaved repeats of the scene timings')
    parser.add_argument(
        '--agreement', action='store_true',
        help='argmax agreement of mixed precision with fp32 on the test set')
    parser.add_argument(
        '--reference', metavar='PATH.py:FACTORY',
        help='also time a model built by FACTORY(in_channels, num_classes) '
        'from PATH.py, interleaved with ours, as ratios ours / theirs')
    parser.add_argument(
        '--merge-lora', action='store_true',
        help='with --reference: also our inference with LoRA merged')
    parser.add_argument(
        '--window-read', nargs='+', metavar='FILE',
        help='also time --shape windows read by the windowed loader vs '
        'whole-file reads of these rasters')
    parser.add_argument(
        '--breakdown', type=int, nargs='+', metavar='S',
        help='also time the backbone alone vs the whole forward at S x S')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, e.g. key=value')
    return parser.parse_args()


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated GPU memory, or the process's peak resident set size
    on the CPU (the whole process: Python, libraries, model, activations)."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def _rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


class PartMemory:
    """Peak memory during a part of the run: GPU peak allocated memory, or
    the process's resident memory sampled every 2 ms on the CPU."""

    def __init__(self, device: torch.device,
                 libraries: Optional[float] = None) -> None:
        self.device = device
        self.libraries = libraries
        self.start = self.peak = 0.

    @contextmanager
    def measure(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device) / 2**20
            yield
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        self.start = self.peak = _rss_mb()
        done = threading.Event()

        def sample():
            while not done.wait(0.002):
                self.peak = max(self.peak, _rss_mb())

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            self.peak = max(self.peak, _rss_mb())

    def __str__(self) -> str:
        if self.device.type == 'cuda':
            return (f'peak allocated {self.peak:.0f} MB '
                    f'(+{self.peak - self.start:.0f} MB over its start)')
        above = '' if self.libraries is None else \
            f', {self.peak - self.libraries:.0f} MB above the libraries'
        return (f'peak RSS {self.peak:.0f} MB '
                f'(+{self.peak - self.start:.0f} MB over its start{above})')


def _tensor_bytes(tensors) -> int:
    """Bytes of the distinct storages of ``tensors``."""
    storages = {}
    for t in tensors:
        if isinstance(t, torch.Tensor):
            storage = t.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def peak_tensor_memory_mb(fn, model,
                          optimizer=None) -> Tuple[float, float]:
    """The CPU counterpart of ``torch.cuda.max_memory_allocated`` over one
    call of ``fn()``: ``(alive, peak)`` in MB, ``alive`` the model's and
    the optimizer's tensors before the call (weights, buffers, gradients,
    optimizer state), ``peak`` the largest sum of live tensor bytes during
    the call (``alive`` included), from the profiler's allocation events."""
    state = {} if optimizer is None else optimizer.state
    alive = _tensor_bytes(
        [*model.parameters(), *model.buffers(),
         *(p.grad for p in model.parameters()),
         *(v for s in state.values() for v in s.values())])
    # kineto logs a failed GPU lookup as an error on CPU-only machines
    os.environ.setdefault('KINETO_LOG_LEVEL', '5')
    with profile(activities=[ProfilerActivity.CPU],
                 profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes())
                    for e in prof.profiler.kineto_results.events()
                    if e.name() == '[memory]'
                    and e.device_type() == DeviceType.CPU)
    live = top = 0
    for _, nbytes in events:
        live += nbytes
        top = max(top, live)
    return alive / 2**20, (alive + top) / 2**20


def timed(fn, warmup: int, repeat: int, device: torch.device,
          memory: PartMemory = None) -> float:
    """Mean seconds of ``fn()`` over ``repeat`` calls after ``warmup``."""

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    sync()
    with memory.measure() if memory is not None else nullcontext():
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        sync()
        elapsed = time.perf_counter() - start
    return elapsed / repeat


def interleaved(fns: dict, warmup: int, repeat: int,
                device: torch.device) -> dict:
    """Median seconds of each ``fns[name]()``, timed one call of each in
    turn for ``repeat`` rounds after ``warmup`` calls of each: a changing
    machine load hits all alike, so their ratios hold."""
    times = {name: [] for name in fns}
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    for _ in range(repeat):
        for name, fn in fns.items():
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn()
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def release_cached_memory() -> None:
    """Return the C allocator's free memory to the system (glibc), so that
    each part's resident memory rises from the same floor."""
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def part_memory(fn, model, device, optimizer=None) -> dict:
    """Peak memory of one call of ``fn()``: on a GPU the peak allocated
    MB; on the CPU the rise of the resident set over its start (after
    :func:`release_cached_memory`) and the profiled peak of live tensors
    (:func:`peak_tensor_memory_mb`)."""
    release_cached_memory()
    memory = PartMemory(device)
    with memory.measure():
        fn()
    if device.type == 'cuda':
        return dict(allocated=memory.peak)
    return dict(rss=memory.peak - memory.start,
                tensors=peak_tensor_memory_mb(fn, model, optimizer)[1])


def load_factory(spec: str):
    """``PATH.py:FACTORY`` -> the callable ``FACTORY`` of that file."""
    path, sep, name = spec.rpartition(':')
    if not sep or not path.endswith('.py') or not os.path.isfile(path):
        raise ValueError(f'--reference: expected an existing PATH.py:FACTORY,'
                         f' got {spec!r}')
    module_spec = importlib.util.spec_from_file_location(
        f'reference_{os.path.basename(path)[:-3]}', path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ValueError(f'--reference: {path} has no callable {name!r}')
    return factory


def bench_reference(cfg, model, spec: str, shape, batch: int, amp: bool,
                    merge: bool, run: dict) -> None:
    """Ours vs a reference model (:func:`load_factory`), interleaved."""
    device = run['device']
    channels = model.modalities.num_channels
    classes = model.decode_head.num_classes
    theirs = load_factory(spec)(channels, classes).to(device)
    ntrain = {
        name: sum(p.numel() for p in m.parameters() if p.requires_grad)
        for name, m in (('ours', model), ('theirs', theirs))
    }
    h, w = shape
    amp_name = 'float16' if device.type == 'cuda' else 'bfloat16'
    print(f'reference: {spec}; trainable params ours {ntrain["ours"]:,}, '
          f'theirs {ntrain["theirs"]:,}; {h}x{w}, {run["repeat"]} '
          f'interleaved rounds (median)')

    def line(part, ours, theirs_, unit, extra=''):
        print(f'reference {part}: ours {ours:.0f} {unit}, theirs '
              f'{theirs_:.0f} {unit}, ours/theirs {ours / theirs_:.2f}x'
              f'{extra}')

    model.eval()
    theirs.eval()
    merged = None
    if merge:
        merged = copy.deepcopy(model)
        if not merge_lora(merged):
            print('reference: --merge-lora: the model has no mergeable '
                  'LoRA')
            merged = None
    for b in sorted({1, batch}):
        x = torch.randn(b, channels, h, w, device=device)
        samples = [SegDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
            padding_size=[0, 0, 0, 0])) for _ in range(b)]
        fns = dict(ours=lambda: model.predict(x, samples),
                   theirs=lambda: theirs(x))
        if merged is not None:
            fns['merged'] = lambda: merged.predict(x, samples)
        with torch.no_grad():
            sec = interleaved(fns, **run)
            mem = {k: part_memory(fn, m, device) for (k, fn), m in zip(
                fns.items(), (model, theirs, merged))}
        extra = ''
        if merged is not None:
            with torch.no_grad():
                diff = (merged._forward(x) - model._forward(x)).abs().max()
            extra = (f'; LoRA merged {sec["merged"] * 1000:.0f} ms = '
                     f'{sec["merged"] / sec["ours"]:.2f}x unmerged, '
                     f'{sec["merged"] / sec["theirs"]:.2f}x theirs, max '
                     f'|logit difference| {float(diff):.1e}')
        line(f'inference batch {b} fp32', sec['ours'] * 1000,
             sec['theirs'] * 1000, 'ms', extra)
        _memory_lines(f'inference batch {b} fp32', mem)

    # training: one batch, random labels; each model its own wrapper
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, h, w, generator=gen).to(device)
    labels = torch.randint(0, classes, (batch, h, w), generator=gen)
    data = train_batch(cfg, model, batch, shape, device)
    model.train()
    theirs.train()
    precisions = ['fp32'] + (['amp'] if amp else [])
    wrappers, fns = {}, {}
    for precision in precisions:
        wcfg = copy.deepcopy(cfg.optim_wrapper)
        if precision == 'amp':
            wcfg = dict(wcfg, type='MixedPrecisionOptimWrapper')
        ours_w = build_optim_wrapper(model, copy.deepcopy(wcfg))
        theirs_w = build_optim_wrapper(theirs, copy.deepcopy(wcfg))
        wrappers[precision] = (ours_w, theirs_w)

        def their_step(wrapper=theirs_w):
            with wrapper.optim_context(theirs):
                loss = F.cross_entropy(theirs(x), labels.to(device))
            wrapper.update_params(loss)

        fns[f'ours {precision}'] = \
            lambda wrapper=ours_w: model.train_step(data, wrapper)
        fns[f'theirs {precision}'] = their_step
    sec = interleaved(fns, **run)
    base = sec['theirs fp32']
    for precision in precisions:
        name = 'fp32' if precision == 'fp32' else amp_name
        ours_s, theirs_s = sec[f'ours {precision}'], sec[f'theirs {precision}']
        extra = '' if precision == 'fp32' else \
            f'; ours {amp_name} / theirs fp32 {ours_s / base:.2f}x'
        line(f'train step batch {batch} {name}', ours_s * 1000,
             theirs_s * 1000, 'ms', extra)
        mem = {}
        for who, m, wrapper in (('ours', model, wrappers[precision][0]),
                                ('theirs', theirs, wrappers[precision][1])):
            mem[who] = part_memory(fns[f'{who} {precision}'], m, device,
                                   wrapper.optimizer)
        _memory_lines(f'train step batch {batch} {name}', mem)
    model.eval()


def _memory_lines(part: str, mem: dict) -> None:
    for kind, what in (('allocated', 'peak allocated'),
                       ('tensors', 'peak of live tensors'),
                       ('rss', 'peak RSS rise')):
        if kind not in mem['ours']:
            continue
        values = '; '.join(f'{who} {m[kind]:.0f} MB'
                           for who, m in mem.items())
        theirs = mem['theirs'][kind]
        ratio = f'{mem["ours"][kind] / theirs:.2f}x' if theirs > 0 else 'n/a'
        print(f'reference {part} memory ({what}): {values}; ours/theirs '
              f'{ratio}')


def bench_window_read(paths, shape, repeat: int) -> None:
    """Random ``shape`` windows of each file read as the windowed loader
    reads them (:class:`WindowReader`: rasterio, files kept open, GDAL's
    block cache) vs the whole file read and cropped (the loader's fallback
    and the whole-tile pipeline), interleaved; the values must agree."""
    from mmrsfusion.io import read_raster
    from mmrsfusion.io.raster_window import WindowReader
    h, w = shape
    rng = np.random.default_rng(0)
    reader = WindowReader()
    totals = dict(window=0., whole=0.)
    for path in paths:
        height, width = reader.shape(path)
        windows = [(y, y + h, x, x + w) for y, x in zip(
            rng.integers(0, height - h + 1, repeat + 1),
            rng.integers(0, width - w + 1, repeat + 1))]
        reads = dict(
            window=lambda win: reader.read(path, win)[0],
            whole=lambda win: read_raster(path)[win[0]:win[1],
                                                win[2]:win[3]])
        times = dict(window=[], whole=[])
        same = True
        for i, win in enumerate(windows):
            out = {}
            for name, read in reads.items():
                start = time.perf_counter()
                out[name] = read(win)
                if i:  # the first: headers, GDAL's cache warm-up
                    times[name].append(time.perf_counter() - start)
            same &= np.array_equal(out['window'], out['whole'],
                                   equal_nan=True)
        med = {k: float(np.median(v)) for k, v in times.items()}
        for k in totals:
            totals[k] += med[k]
        layout = 'tiled' if reader.tiled(path) else 'striped'
        print(f'window read {h}x{w} from {os.path.basename(path)} '
              f'({height}x{width}x{out["whole"].shape[2]} '
              f'{out["whole"].dtype}, {layout}, '
              f'{os.path.getsize(path) / 2**20:.0f} MB): windowed '
              f'{med["window"] * 1000:.1f} ms, whole file '
              f'{med["whole"] * 1000:.1f} ms = '
              f'{med["window"] / med["whole"]:.3f}x the whole read '
              f'({repeat} windows, median; values '
              f'{"identical" if same else "DIFFER"})')
    print(f'window read, one sample ({len(paths)} files): windowed '
          f'{totals["window"] * 1000:.1f} ms, whole files '
          f'{totals["whole"] * 1000:.1f} ms = '
          f'{totals["window"] / totals["whole"]:.3f}x the whole reads')


def bench_breakdown(model, sizes, batch: int, run: dict) -> None:
    """The backbone alone vs the whole forward (neck, fusion and heads on
    top), interleaved, at each S x S."""
    device = run['device']
    channels = model.modalities.num_channels
    for size in sizes:
        x = torch.randn(batch, channels, size, size, device=device)
        presence = model.modalities.presence(batch_size=batch, device=device)
        if hasattr(model, 'encode'):  # mask-aware (SGMA): its own encode
            backbone = lambda: model.encode(x, presence)  # noqa: E731
        else:
            backbone = lambda: model.backbone(x)  # noqa: E731
        with torch.no_grad():
            sec = interleaved(dict(backbone=backbone,
                                   forward=lambda: model._forward(x)), **run)
        rest = sec['forward'] - sec['backbone']
        print(f'breakdown {size}x{size} batch {batch}: backbone '
              f'{sec["backbone"] * 1000:.1f} ms, whole forward '
              f'{sec["forward"] * 1000:.1f} ms; the rest (neck, fusion, '
              f'heads) {rest * 1000:.1f} ms = {100 * rest / sec["forward"]:.0f}'
              f'% of the forward, {100 * rest / sec["backbone"]:.0f}% of the '
              f'backbone')


def floor_fn(model, batch: int, shape, device):
    """The bare frozen encoder's forward on all streams (M * B images of
    the padded size), or None for models without a frozen encoder shared
    by the streams (e.g. SGMA's trained per-stream encoders)."""
    backbone = model.backbone
    encoder = getattr(backbone, 'encoder', None)
    streams = getattr(backbone, 'num_modalities', None)
    if encoder is None or streams is None:
        return None
    p = getattr(backbone, 'patch_size', 1)
    h, w = (-(-s // p) * p for s in shape)
    x = torch.randn(streams * batch, 3, h, w, device=device)
    return lambda: encoder(x)


def train_batch(cfg, model, batch: int, shape, device) -> dict:
    """A batch as the dataloader gives it: raw (C, H, W) inputs in the
    data's units (0-255) and random labels."""
    h, w = shape
    channels = model.modalities.num_channels
    classes = model.decode_head.num_classes
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (channels, h, w),
                                    generator=gen).float().to(device))
        label = torch.randint(0, classes, (1, h, w), generator=gen)
        sample = SegDataSample(
            metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=label.to(device))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def bench_slide(model, tile_hw, crop, batch_windows, run, floor_ms):
    """Slide inference on one tile: per-window vs batched windows."""
    test_cfg = model.test_cfg
    if test_cfg.get('mode') != 'slide':
        test_cfg = dict(mode='slide', crop_size=tuple(crop),
                        stride=tuple(max(1, c * 2 // 3) for c in crop))
    h, w = tile_hw
    channels = model.modalities.num_channels
    tile = torch.randn(1, channels, h, w, device=run['device'])
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                padding_size=[0, 0, 0, 0])
    n_windows = len(slide_windows(h, w, test_cfg['crop_size'],
                                  test_cfg['stride']))
    results = {}
    for k in (1, batch_windows):
        model.test_cfg = ConfigDict(test_cfg, batch_windows=k)
        with torch.no_grad():
            seconds = timed(
                lambda: results.__setitem__(k, model.predict(
                    tile, [SegDataSample(metainfo=dict(meta))])), **run)
        floor = '' if floor_ms is None else \
            f', {seconds * 1000 / (floor_ms * n_windows):.2f}x floor'
        print(f'slide {h}x{w} ({n_windows} windows of '
              f'{test_cfg["crop_size"]}, stride {test_cfg["stride"]}), '
              f'{k} window(s) per forward: {seconds * 1000:.0f} ms{floor}')
    diff = (results[1][0].seg_logits.data -
            results[batch_windows][0].seg_logits.data).abs().max()
    print(f'slide: max |logit difference| batched vs per-window '
          f'{float(diff):.2e}')


def bench_data(cfg, samples: int, versus: Optional[str] = None,
               rounds: int = 5) -> None:
    """Training samples per second through the config's train dataset (and
    the ``versus`` config's), timed interleaved in ``rounds`` chunks, with
    the rise of the resident memory while each is built and sampled."""
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    variants = [('config pipeline', ds_cfg)]
    first = ds_cfg.pipeline[0]
    if first['type'] == 'LoadMultiModalRandomWindow':
        whole = copy.deepcopy(ds_cfg)
        crop = dict(
            type='RandomCrop',
            crop_size=first['crop_size'],
            cat_max_ratio=first.get('cat_max_ratio', 1.))
        load = {k: v for k, v in first.items()
                if k not in ('type', 'crop_size', 'cat_max_ratio',
                             'ignore_index', 'with_seg',
                             'reduce_zero_label')}
        whole.pipeline = [
            dict(type='LoadMultiModalImageFromFiles', **load),
            dict(type='LoadAnnotations'), crop
        ] + list(ds_cfg.pipeline[1:])
        variants.append(('whole tile read, then RandomCrop', whole))
    if versus:
        variants.append((f'--data-vs {versus}',
                         load_config(versus).train_dataloader.dataset))
    cpu_device = torch.device('cpu')
    runs = []
    for name, dataset_cfg in variants:
        # memory of the dataset itself: built, first read (file headers,
        # tile ranges, a scene's boxes), then sampled
        start = _rss_mb()
        memory = PartMemory(cpu_device)
        with memory.measure():
            dataset = DATASETS.build(dataset_cfg)
            rng = np.random.default_rng(0)
            order = rng.integers(0, len(dataset), samples + 1)
            dataset[int(order[0])]
        runs.append(dict(name=name, cfg=dataset_cfg, dataset=dataset,
                         order=order[1:], wall=0., cpu=0., start=start,
                         peak=memory.peak))
    chunks = np.array_split(np.arange(samples), rounds)
    for chunk in chunks:  # interleaved: the machine's load hits all alike
        for run in runs:
            memory = PartMemory(cpu_device)
            with memory.measure():
                wall, cpu = time.perf_counter(), time.process_time()
                for i in run['order'][chunk]:
                    run['dataset'][int(i)]
                run['wall'] += time.perf_counter() - wall
                run['cpu'] += time.process_time() - cpu
            run['peak'] = max(run['peak'], memory.peak)
    for run in runs:
        per_sample, cpu = run['wall'] / samples, run['cpu'] / samples
        # CPU time: what a sample costs a dataloader worker, whatever else
        # runs on the machine
        print(f'data ({run["name"]}): {per_sample * 1000:.1f} ms/sample, '
              f'{1 / per_sample:.1f} samples/s, CPU {cpu * 1000:.1f} '
              f'ms/sample ({samples} samples from {len(run["dataset"])} '
              f'item(s), {run["cfg"].data_root}); memory: peak RSS '
              f'+{run["peak"] - run["start"]:.0f} MB over the start of its '
              f'build')
    if versus:
        ours, theirs = runs[0], runs[-1]
        print(f'data: config pipeline / --data-vs: '
              f'{ours["wall"] / theirs["wall"]:.2f}x the wall time per '
              f'sample, {ours["cpu"] / theirs["cpu"]:.2f}x the CPU time '
              f'({rounds} interleaved rounds)')


def bench_scene(model, paths: dict, block_size: int, batch_windows: int,
                amp: bool, repeat: int) -> None:
    """The scene mapping vs the bare batched forward of its windows."""
    import tempfile
    from mmrsfusion.inference.scene_inference import predict_scene
    from mmrsfusion.inference.stage_timer import StageTimer
    from mmrsfusion.io.raster_scene import RasterScene

    crop = tuple(model.test_cfg['crop_size'])
    stride = tuple(model.test_cfg['stride'])
    with RasterScene(paths, model.modalities) as scene:
        h, w = scene.height, scene.width
    n = len(slide_windows(h, w, crop, stride))
    device = next(model.parameters()).device
    crops = torch.randn(batch_windows, model.modalities.num_channels,
                        min(crop[0], h), min(crop[1], w), device=device)
    presence = model.modalities.presence(
        [m for m in model.modalities.names if m not in paths]).to(device)
    metas = [dict(img_shape=tuple(crops.shape[2:]))]
    precision = (lambda: autocast(device_type=device.type)) if amp \
        else nullcontext

    def bare():
        with torch.no_grad(), precision():
            for start in range(0, n, batch_windows):
                k = min(batch_windows, n - start)
                model.encode_decode(crops[:k], metas,
                                    presence.repeat(k, 1)).float()

    times = dict(bare=[], overlapped=[], serial=[])
    stages = dict(overlapped=StageTimer(), serial=StageTimer())
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:

        def mapping(name, timer):
            out = os.path.join(tmp, f'{name}.tif')
            return lambda: summary.update(predict_scene(
                model, paths, out, block_size=block_size,
                batch_windows=batch_windows, overwrite=True, progress=False,
                amp=amp, overlap=name == 'overlapped', timer=timer,
                elevation_ranges=summary.get('elevation_ranges')))

        runs = dict(bare=bare, **{
            name: mapping(name, timer)
            for name, timer in stages.items()
        })
        runs['serial']()  # warm-up; fixes the elevation ranges
        for timer in stages.values():
            timer.seconds.clear()
        for _ in range(repeat):  # interleaved: the load hits all alike
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        # one more overlapped mapping, for its memory (not timed: its
        # stages go to a timer of their own)
        release_cached_memory()
        memory = PartMemory(device)
        with memory.measure():
            mapping('overlapped', StageTimer())()
    precision_name = 'mixed precision' if amp else 'fp32'
    print(f'scene {h}x{w}: {n} windows of {crop} stride {stride} '
          f'({summary["windows"]} computed in {summary["blocks"]} blocks of '
          f'{block_size}), {batch_windows} per forward, {precision_name}, '
          f'{repeat} interleaved repeats (median)')
    rate = {k: n / float(np.median(v)) for k, v in times.items()}
    print(f'scene: bare batched forward {rate["bare"]:.2f} windows/s')
    print('scene: seconds per repeat: ' + '; '.join(
        f'{k} ' + ' '.join(f'{t:.1f}' for t in v) for k, v in times.items()))
    for name in ('overlapped', 'serial'):
        wall = sum(times[name])
        shares = ', '.join(
            f'{stage} {100 * sec / wall:.0f}%'
            for stage, sec in sorted(stages[name].seconds.items(),
                                     key=lambda kv: -kv[1]))
        print(f'scene: predict_scene ({name} reads / writes) '
              f'{rate[name]:.2f} windows/s = {rate[name] / rate["bare"]:.2f}x'
              f' the bare forward; stages (% of its wall time, threads '
              f'overlap): {shares}')
    print(f'scene: predict_scene (overlapped) memory: {memory}')


def bench_agreement(cfg, model, device) -> None:
    """Argmax agreement of mixed precision with fp32 on the test set, and
    the speed ratio (the segmentor's ``test_step``, as tools/test.py)."""
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.test_dataloader)
    same = total = 0
    seconds = dict(fp32=0., amp=0.)
    with torch.no_grad():
        for i, data in enumerate(loader):
            if i == 0:  # warm-up of both precisions, not timed
                for amp in (False, True):
                    with autocast(device_type=device.type, enabled=amp):
                        model.test_step(copy.deepcopy(data))
            preds = {}
            for name in ('fp32', 'amp'):
                context = autocast(device_type=device.type) \
                    if name == 'amp' else nullcontext()
                start = time.perf_counter()
                with context:
                    preds[name] = [
                        s.pred_sem_seg.data for s in model.test_step(
                            copy.deepcopy(data))]
                seconds[name] += time.perf_counter() - start
            for a, b in zip(preds['fp32'], preds['amp']):
                same += int((a == b).sum())
                total += a.numel()
    amp_name = 'float16' if device.type == 'cuda' else 'bfloat16'
    print(f'agreement {amp_name} vs fp32 on the test set '
          f'({len(loader.dataset)} images, {total} pixels): '
          f'{100 * same / total:.2f}% of argmax pixels equal (goal >= '
          f'99.5%); {amp_name} {seconds["amp"] / seconds["fp32"]:.2f}x the '
          f'fp32 time')


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    MMLogger.get_instance('benchmark', log_level='ERROR')  # quiet builders
    init_default_scope(cfg.get('default_scope', 'mmseg'))

    device = torch.device(args.device)
    # Python and the libraries, before the model (CPU memory only)
    libraries = _rss_mb() if device.type == 'cpu' else None
    model = MODELS.build(cfg.model)
    if args.checkpoint:
        load_trainable_checkpoint(model, args.checkpoint)
    model.to(device).eval()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    h, w = args.shape
    channels = model.modalities.num_channels
    inputs = torch.randn(args.batch_size, channels, h, w, device=device)
    metas = [
        dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
             padding_size=[0, 0, 0, 0])
    ] * args.batch_size
    samples = [SegDataSample(metainfo=m) for m in metas]
    amp_name = 'float16' if device.type == 'cuda' else 'bfloat16'
    run = dict(warmup=args.warmup, repeat=args.repeat, device=device)

    print(f'config: {args.config}')
    print(f'device: {device} (threads={torch.get_num_threads()})')
    print(f'input: {args.batch_size}x{channels}x{h}x{w}')
    print(f'trainable params: {trainable} ({trainable / 1e6:.2f}M)')
    if device.type == 'cpu':
        print(f'process before the model was built: {libraries:.0f} MB RSS '
              '(Python and the libraries)')

    floor = floor_fn(model, args.batch_size, (h, w), device)
    floor_s = {}
    with torch.no_grad():
        if floor is not None:
            floor_s['fp32'] = timed(floor, **run)
            print(f'floor (bare frozen encoder on all streams): '
                  f'{floor_s["fp32"] * 1000:.2f} ms/batch')
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        latency = timed(lambda: model.predict(inputs, samples), **run)

    def vs_floor(seconds, precision='fp32'):
        if precision not in floor_s:
            return ''
        return f', {seconds / floor_s[precision]:.2f}x floor'

    print(f'latency: {latency * 1000:.2f} ms/batch')
    print(f'throughput: {args.batch_size / latency:.1f} img/s')
    kind = 'allocated' if device.type == 'cuda' else 'process peak RSS'
    print(f'peak memory: {peak_memory_mb(device):.0f} MB ({kind})')
    print(f'inference fp32: {latency * 1000:.2f} ms/batch'
          f'{vs_floor(latency)}')
    if args.amp:
        with torch.no_grad(), autocast(device_type=device.type):
            if floor is not None:
                floor_s['amp'] = timed(floor, **run)
                print(f'floor {amp_name}: {floor_s["amp"] * 1000:.2f} '
                      f'ms/batch')
            amp = timed(lambda: model.predict(inputs, samples), **run)
        print(f'inference {amp_name}: {amp * 1000:.2f} ms/batch '
              f'({amp / latency:.2f}x fp32{vs_floor(amp, "amp")})')

    if args.train:
        data = train_batch(cfg, model, args.batch_size, (h, w), device)
        model.train()
        precisions = [('fp32', cfg.optim_wrapper)]
        if args.amp:
            precisions.append(('amp', dict(
                cfg.optim_wrapper, type='MixedPrecisionOptimWrapper')))
        step_s = {}
        for precision, wrapper_cfg in precisions:
            wrapper = build_optim_wrapper(model, copy.deepcopy(wrapper_cfg))
            memory = PartMemory(device, libraries)
            step_s[precision] = timed(
                lambda: model.train_step(data, wrapper), memory=memory,
                **run)
            ratio = '' if precision == 'fp32' else \
                f', {step_s[precision] / step_s["fp32"]:.2f}x fp32'
            name = 'fp32' if precision == 'fp32' else amp_name
            print(f'train step {name}: {step_s[precision] * 1000:.0f} '
                  f'ms/step (batch {args.batch_size}{ratio}'
                  f'{vs_floor(step_s[precision], precision)}), {memory}')
            if device.type == 'cpu':
                alive, peak = peak_tensor_memory_mb(
                    lambda: model.train_step(data, wrapper), model,
                    wrapper.optimizer)
                print(f'train step {name}: peak allocated {peak:.0f} MB of '
                      f'tensors ({alive:.0f} MB alive before the step: '
                      'weights, optimizer state; one more step, profiled)')
        model.eval()

    if args.slide:
        per_window = None
        if 'fp32' in floor_s:  # the floor of one window
            per_window = floor_s['fp32'] * 1000 / args.batch_size
        bench_slide(model, args.slide, args.shape, args.batch_windows, run,
                    per_window)

    if args.data:
        bench_data(cfg, args.data, args.data_vs)

    if args.scene:
        paths = dict(item.split('=', 1) for item in args.scene)
        bench_scene(model, paths, args.block_size, args.batch_windows,
                    args.amp, args.scene_repeat)

    if args.agreement:
        bench_agreement(cfg, model, device)

    if args.reference:
        bench_reference(cfg, model, args.reference, (h, w), args.batch_size,
                        args.amp, args.merge_lora, run)

    if args.window_read:
        bench_window_read(args.window_read, (h, w), args.repeat)

    if args.breakdown:
        bench_breakdown(model, args.breakdown, args.batch_size, run)


if __name__ == '__main__':
    main()
