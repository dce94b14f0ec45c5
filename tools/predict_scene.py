"""Map a whole scene (GeoTIFFs of any size) with a trained model.

    python tools/predict_scene.py CONFIG CHECKPOINT \
        --input rgb=ortho.tif --input dsm=dsm.tif -o pred.tif \
        [--probs probs.tif] [--confidence conf.tif] [--block-size 2048] \
        [--batch-windows K] [--window H W --stride H W] \
        [--elevation-range dsm=MIN,MAX] [--bands rgb=0,1,2] [--resume] \
        [--vector classes.gpkg [--simplify TOLERANCE]] \
        [--overwrite] [--amp] [--device cpu] [--cfg-options KEY=VALUE ...]

Modality names are those of the config's spec; modalities not given are
absent (as ``tools/test.py --cfg-options model.absent=...`` makes them: a
mask-aware model leaves them out, any other gets their channels zeroed). The output is a uint8 class
Cloud-Optimised GeoTIFF (palette, overviews, class names in its .aux.xml)
on the grid of the first given modality of the spec; see
:func:`mmrsfusion.inference.scene_inference.predict_scene`.
"""
import argparse
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
    parser.add_argument('--input', action='append', required=True,
                        metavar='NAME=FILE', help='one modality\'s raster '
                        '(repeat per modality)')
    parser.add_argument('-o', '--out', required=True,
                        help='class map GeoTIFF')
    parser.add_argument('--probs', help='per-class probabilities GeoTIFF '
                        '(uint8, p * 254)')
    parser.add_argument('--confidence', help='top-class probability '
                        'GeoTIFF (uint8, p * 254)')
    parser.add_argument('--vector', metavar='GPKG', help='class polygons '
                        'GeoPackage (one layer, made from the finished map)')
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
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    inputs = _pairs(args.input, '--input', str)
    ranges = _pairs(args.elevation_range, '--elevation-range',
                    _numbers(float))
    bands = _pairs(args.bands, '--bands', _numbers(int))

    import mmrsfusion  # noqa: F401  (registers modules)
    from mmrsfusion.inference.scene_inference import (class_meta,
                                                      config_fingerprint,
                                                      load_segmentor,
                                                      predict_scene)
    start = time.time()
    try:
        model, cfg = load_segmentor(args.config, args.checkpoint,
                                    args.device, args.cfg_options)
        classes, palette = class_meta(model)
        summary = predict_scene(
            model,
            inputs,
            args.out,
            probs=args.probs,
            conf=args.confidence,
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
            amp=args.amp,
            vector=args.vector,
            simplify=args.simplify)
    except (ValueError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'{args.out}: {summary["height"]}x{summary["width"]} pixels, '
          f'{summary["blocks"]} blocks ({summary["blocks_skipped"]} resumed)'
          f', {summary["windows"]} windows ({summary["scene_windows"]} in '
          f'the scene grid), elevation ranges {summary["elevation_ranges"]}'
          f', absent {summary["absent"]}; {time.time() - start:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
