"""Cut the scenes of a scene list into co-registered GeoTIFF tiles for the
tiled datasets.

Usage::

    python tools/dataset_converters/scenes_to_tiles.py CONFIG OUT_DIR \\
        [--scenes scenes.csv] [--tile-size 1024 [1024]] \\
        [--default-split train] [--overwrite] [--cfg-options KEY=VALUE ...]
    mmrsfusion convert scenes_to_tiles CONFIG OUT_DIR ...

``CONFIG`` (a file or a config name) gives the modality spec and the
scene options (``label_attribute``, ``label_class``, ``background``,
``allow_missing``, ``ignore_index``, the scene list as ``ann_file``) of
its SceneDataset (the first of the train, val, test dataloaders'), e.g.
``mobanet/demo_tinyvit_scenes``; ``--scenes`` names another scene list
(CSV / JSON / YAML, as SceneDataset reads it). Each scene is tiled by
SceneDataset's grid windows (``--tile-size``; windows without an AOI pixel
left out) into ``img_dir/<split>/``, ``<modality>_dir/<split>/`` and
``ann_dir/<split>/`` (split: the list's ``split`` column) as
``<scene>_<x0>_<y0>_<x1>_<y1>.tif``, with ``conversion.json``; see
:func:`mmrsfusion.datasets.scene_tiles.scenes_to_tiles`. Existing outputs
are refused without ``--overwrite``.
"""
import argparse
import os.path as osp
import sys
import time

from mmengine.config import DictAction

#: SceneDataset arguments taken from the config's dataset (the sampling
#: and pipeline ones are the conversion's own).
SCENE_OPTIONS = ('data_root', 'ann_file', 'allow_missing', 'label_attribute',
                 'label_class', 'background', 'ignore_index', 'metainfo',
                 'gdal_cache_mb')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Cut the scenes of a scene list into GeoTIFF tiles for '
        'the tiled datasets')
    parser.add_argument('config', help='config file or name: its modality '
                        'spec and SceneDataset options')
    parser.add_argument('out_dir', help='output root')
    parser.add_argument('--scenes', metavar='LIST', help='scene list (default'
                        ': the config SceneDataset\'s ann_file)')
    parser.add_argument('--tile-size', type=int, nargs='+', default=[1024],
                        metavar='PIXELS', help='tile height [width] on the '
                        'reference grid (default 1024; edge tiles are cut '
                        'short)')
    parser.add_argument('--default-split', metavar='SPLIT', help='split of '
                        'the rows whose split cell is empty (default: such '
                        'a row is an error)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing tiles and manifest')
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    args = parser.parse_args(argv)
    if len(args.tile_size) > 2 or min(args.tile_size) < 1:
        parser.error(f'--tile-size: expected one or two positive sizes, got '
                     f'{args.tile_size}')
    return args


def scene_dataset_options(cfg) -> dict:
    """:data:`SCENE_OPTIONS` of the config's first SceneDataset (train,
    val, test dataloaders), or none."""
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        if dataset.get('type') == 'SceneDataset':
            return {k: dataset[k] for k in SCENE_OPTIONS if k in dataset}
    return {}


def main(argv=None) -> int:
    args = parse_args(argv)
    import mmrsfusion  # noqa: F401  (registers modules)
    from mmrsfusion.datasets import SceneDataset
    from mmrsfusion.datasets.scene_tiles import scenes_to_tiles
    from mmrsfusion.utils import load_config
    from mmrsfusion.utils.installed_configs import resolve_config
    start = time.time()
    try:
        config = resolve_config(args.config)
        cfg = load_config(config, args.cfg_options)
        if 'modalities' not in cfg:
            raise ValueError(f'{config}: no top-level `modalities` (the '
                             f'modality spec of the scenes)')
        options = scene_dataset_options(cfg)
        if args.scenes is not None:
            options.update(data_root=None, ann_file=osp.abspath(args.scenes))
        if not options.get('ann_file'):
            raise ValueError(f'{config} has no SceneDataset with an ann_file'
                             f'; name the scene list with --scenes')
        size = tuple(args.tile_size * (3 - len(args.tile_size)))[:2]
        dataset = SceneDataset(modalities=cfg.modalities, crop_size=size,
                               grid=True, test_mode=True, pipeline=[],
                               **options)
        manifest = scenes_to_tiles(
            dataset, args.out_dir, args.default_split, args.overwrite,
            not args.no_progress,
            notes=dict(command='scenes_to_tiles', config=config))
    except (ValueError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    for name, info in manifest['tiles'].items():
        print(f'{name} ({info["row"]}): {len(info["tiles"])} tile(s) '
              f'-> {info["split"]}')
    total = sum(manifest['splits'].values())
    print(f'{args.out_dir}: {total} tiles of at most {size[0]}x{size[1]} '
          f'({", ".join(f"{s} {n}" for s, n in manifest["splits"].items())})'
          f'; manifest {osp.join(args.out_dir, "conversion.json")}; '
          f'{time.time() - start:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
