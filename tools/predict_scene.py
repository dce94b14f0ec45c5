"""Map a whole scene (GeoTIFFs of any size) with a trained model.

    python tools/predict_scene.py CONFIG CHECKPOINT \
        --input rgb=ortho.tif --input dsm=dsm.tif -o pred.tif \
        [--probs probs.tif] [--confidence conf.tif] [--block-size 2048] \
        [--batch-windows K] [--window H W --stride H W] \
        [--elevation-range dsm=MIN,MAX] [--bands rgb=0,1,2] [--resume] \
        [--vector classes.gpkg [--simplify TOLERANCE]] \
        [--overwrite] [--amp] [--device cpu] [--cfg-options KEY=VALUE ...]

    # the scenes of a scene list (SceneDataset's CSV / JSON / YAML), into
    # OUT_DIR/<name>.tif and OUT_DIR/summary.json, with N processes:
    torchrun --nproc_per_node N tools/predict_scene.py CONFIG CHECKPOINT \
        --scenes scenes.csv [--split test] -o OUT_DIR --launcher pytorch \
        [--vector [--simplify TOLERANCE]] [--resume]
    (or tools/dist_predict_scene.sh / tools/slurm_predict_scene.sh); with
    --vector also each scene's class polygons, OUT_DIR/<name>.gpkg

Modality names are those of the config's spec; modalities not given are
absent (as ``tools/test.py --cfg-options model.absent=...`` makes them: a
mask-aware model leaves them out, any other gets their channels zeroed). The output is a uint8 class
Cloud-Optimised GeoTIFF (palette, overviews, class names in its .aux.xml)
on the grid of the first given modality of the spec; see
:func:`mmrsfusion.inference.scene_inference.predict_scene`, and for scene
lists :func:`mmrsfusion.inference.scene_list.predict_scenes`.
"""
import argparse
import os
import sys
import time

from mmengine.config import DictAction


def _pairs(values, name, convert):
    out = {}
    for item in values or []:
        key, sep, value = item.partition('=')
        if not sep or not key or not value:
            raise SystemExit(f'error: {name} expects NAME=VALUE, got '
                             f'{item!r}')
        try:
            out[key] = convert(value)
        except ValueError:
            raise SystemExit(f'error: {name} {item!r}: bad value {value!r}')
    return out


def _numbers(cast):
    return lambda text: [cast(v) for v in text.split(',')]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Map a scene of rasters with a trained segmentor.')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    scene = parser.add_mutually_exclusive_group(required=True)
    scene.add_argument('--input', action='append', metavar='NAME=FILE',
                       help='one modality\'s raster (repeat per modality)')
    scene.add_argument('--scenes', metavar='LIST', help='a scene list (CSV '
                       '/ JSON / YAML, as SceneDataset reads it: a column '
                       'per modality, optional name and split); each scene '
                       'is mapped into OUT/<name>.tif')
    parser.add_argument('-o', '--out', required=True,
                        help='class map GeoTIFF; with --scenes the output '
                        'folder')
    parser.add_argument('--split', help='with --scenes: only the scenes of '
                        'this split')
    parser.add_argument('--allow-missing', action='append', default=[],
                        metavar='NAME', help='with --scenes: a modality a '
                        'scene may lack (its file cell empty or missing: '
                        'mapped with the modality absent)')
    parser.add_argument('--summary', help='with --scenes: the run\'s '
                        'summary JSON (default OUT/summary.json)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                        default='none', help='share the scenes among the '
                        'processes of torchrun (pytorch) or srun (slurm); '
                        'gloo on the CPU, nccl on GPUs')
    parser.add_argument('--dist-timeout', type=int, default=24 * 3600,
                        metavar='SECONDS', help='how long a process waits '
                        'for the others at the end of a step (default 1 '
                        'day)')
    parser.add_argument('--probs', help='per-class probabilities GeoTIFF '
                        '(uint8, p * 254)')
    parser.add_argument('--confidence', help='top-class probability '
                        'GeoTIFF (uint8, p * 254)')
    parser.add_argument('--vector', nargs='?', const='', metavar='GPKG',
                        help='class polygons GeoPackage (one layer, made '
                        'from the finished map); with --scenes given '
                        'without GPKG: each scene\'s OUT/<name>.gpkg')
    parser.add_argument('--simplify', type=float, default=0.0,
                        metavar='TOLERANCE', help='simplify the --vector '
                        'polygons, tolerance in map units (neighbours stay '
                        'edge to edge; default 0: pixel edges)')
    parser.add_argument('--block-size', type=int, default=2048,
                        help='output block side in pixels (multiple of 16; '
                        'memory grows with its square; default 2048)')
    parser.add_argument('--batch-windows', type=int,
                        help='sliding windows per forward (default: '
                        'test_cfg.batch_windows or 1)')
    parser.add_argument('--window', type=int, nargs=2, metavar=('H', 'W'),
                        help='window size (default: test_cfg.crop_size)')
    parser.add_argument('--stride', type=int, nargs=2, metavar=('H', 'W'),
                        help='window stride (default: test_cfg.stride)')
    parser.add_argument('--elevation-range', action='append',
                        metavar='NAME=MIN,MAX', help='elevation min/max for '
                        'the min-max normalisation (default: the valid '
                        'min/max of the scene, from a first pass)')
    parser.add_argument('--bands', action='append', metavar='NAME=I,J,...',
                        help='0-based bands of a modality\'s file to read')
    parser.add_argument('--resume', action='store_true',
                        help='continue an interrupted run (same arguments)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing output files')
    parser.add_argument('--amp', action='store_true',
                        help='mixed-precision inference (autocast: float16 '
                        'on a GPU, bfloat16 on the CPU)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    args = parser.parse_args(argv)
    if args.scenes is None:
        for option in ('split', 'summary'):
            if getattr(args, option) is not None:
                parser.error(f'--{option} needs --scenes')
        if args.allow_missing or args.launcher != 'none':
            parser.error('--allow-missing and --launcher need --scenes')
        if args.vector == '':
            parser.error('--vector needs the GeoPackage path (GPKG) with '
                         '--input')
    elif args.probs or args.confidence:
        parser.error('--probs / --confidence map one scene (--input); with '
                     '--scenes class maps (and --vector polygons) are '
                     'written')
    elif args.vector:
        parser.error(f'--vector {args.vector}: with --scenes give --vector '
                     f'without a path; each scene\'s polygons go to '
                     f'OUT/<name>.gpkg')
    return args


def init_dist(launcher: str, device: str, timeout: int) -> str:
    """Join the process group of ``launcher`` (nccl with one GPU per
    process when CUDA is available and ``device`` is not the CPU, else
    gloo on the CPU); returns this process's device."""
    from datetime import timedelta

    import torch
    import torch.distributed as dist
    from mmengine.dist import init_dist as mmengine_init_dist
    if torch.cuda.is_available() and device != 'cpu':
        mmengine_init_dist(launcher, backend='nccl', timeout=timeout)
        return f'cuda:{torch.cuda.current_device()}'
    if launcher != 'pytorch':
        raise SystemExit('error: --launcher slurm maps on GPUs; on the CPU '
                         'launch with torchrun (tools/dist_predict_scene.sh)')
    dist.init_process_group('gloo', timeout=timedelta(seconds=timeout))
    return 'cpu'


def main(argv=None) -> int:
    args = parse_args(argv)
    ranges = _pairs(args.elevation_range, '--elevation-range',
                    _numbers(float))
    bands = _pairs(args.bands, '--bands', _numbers(int))
    device = args.device
    if args.launcher != 'none':
        device = init_dist(args.launcher, device, args.dist_timeout)
        import torch.distributed as dist
        try:
            code = _main(args, device, ranges, bands)
            # every rank is done before any tears gloo down: a peer closing
            # its connections while a rank still runs can abort that rank
            dist.barrier()
        finally:
            dist.destroy_process_group()
        # all outputs are written and every rank has met: leave without the
        # interpreter's teardown, where a library thread still joinable
        # aborted a rank ("terminate called without an active exception")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return _main(args, device, ranges, bands)


def _main(args, device: str, ranges: dict, bands: dict) -> int:
    import mmrsfusion  # noqa: F401  (registers modules)
    from mmrsfusion.inference.scene_inference import (class_meta,
                                                      config_fingerprint,
                                                      load_segmentor,
                                                      predict_scene)
    start = time.time()
    try:
        model, cfg = load_segmentor(args.config, args.checkpoint, device,
                                    args.cfg_options)
        classes, palette = class_meta(model)
        options = dict(
            classes=classes,
            palette=palette,
            block_size=args.block_size,
            batch_windows=args.batch_windows,
            crop_size=args.window,
            stride=args.stride,
            bands=bands,
            elevation_ranges=ranges,
            resume=args.resume,
            overwrite=args.overwrite,
            fingerprint=config_fingerprint(cfg, args.checkpoint),
            progress=not args.no_progress,
            amp=args.amp)
        if args.scenes:
            return _map_list(args, model, options, start)
        summary = predict_scene(
            model,
            _pairs(args.input, '--input', str),
            args.out,
            probs=args.probs,
            conf=args.confidence,
            vector=args.vector,
            simplify=args.simplify,
            **options)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'{args.out}: {summary["height"]}x{summary["width"]} pixels, '
          f'{summary["blocks"]} blocks ({summary["blocks_skipped"]} resumed)'
          f', {summary["windows"]} windows ({summary["scene_windows"]} in '
          f'the scene grid), elevation ranges {summary["elevation_ranges"]}'
          f', absent {summary["absent"]}; {time.time() - start:.1f} s')
    return 0


def _map_list(args, model, options: dict, start: float) -> int:
    """Map the scenes of ``--scenes`` into the folder ``-o``."""
    from mmengine.dist import get_dist_info

    from mmrsfusion.datasets.scene_dataset import scene_rows
    from mmrsfusion.inference.scene_list import predict_scenes
    spec = model.modalities
    scenes = scene_rows(args.scenes, spec.names, args.split,
                        spec.check_names(args.allow_missing,
                                         '--allow-missing'))
    if not scenes:
        raise ValueError(f'{args.scenes}: no scene'
                         + (f' of split {args.split!r}' if args.split
                            else ''))
    summary = predict_scenes(model, scenes, args.out, summary=args.summary,
                             vector=args.vector is not None,
                             simplify=args.simplify, **options)
    if get_dist_info()[0] == 0:
        total = summary['total']
        print(f'{args.out}: {total["scenes"]} scenes '
              f'({summary["scenes_resumed"]} resumed), {total["pixels"]} '
              f'pixels mapped by {summary["processes"]} process(es); '
              f'summary {args.summary or args.out + "/summary.json"}; '
              f'{time.time() - start:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
