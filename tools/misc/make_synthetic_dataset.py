"""Write the synthetic ISPRS-like multimodal demo dataset (RGB + DSM).

Usage::

    python tools/misc/make_synthetic_dataset.py data/synthetic_mm \
        [--num-train 32] [--num-test 8] [--tile-size 128] \
        [--test-tile-size 200 176] [--seed 0] [--nir] [--deliver] [--overwrite]

or one large georeferenced scene (RGB, DSM, labels as GeoTIFFs, needs
rasterio) for ``tools/predict_scene.py``::

    python tools/misc/make_synthetic_dataset.py data/synthetic_scene \
        --geotiff-scene 4000 4000 [--dsm-factor 4] [--seed 0]

or a set of N such scenes (RGB 0.25 m, DSM 1 m on another extent, labels as
GeoJSON polygons, an area of interest each) and their scene list
``scenes.csv``, for training from scenes (``SceneDataset``)::

    python tools/misc/make_synthetic_dataset.py data/synthetic_scenes \
        --scene-set 3 [--geotiff-scene 256 320] [--seed 0]

Writes real files in the converted layout (img_dir / dsm_dir / ann_dir /
ann_eroded_dir, train and test); see
:func:`mmrsfusion.datasets.synthetic.generate_synthetic_dataset`. Running it
again with the same arguments does nothing; a dataset it wrote with other
arguments (or an older generator version) is replaced; a folder it did not
write is only replaced with --overwrite.
"""
import argparse
import sys
import time

from mmrsfusion.datasets.synthetic import generate_synthetic_dataset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write the synthetic multimodal (RGB + DSM) dataset.')
    parser.add_argument('out_dir', help='output folder, e.g. '
                        'data/synthetic_mm')
    parser.add_argument('--num-train', type=int, default=32,
                        help='training tiles (default 32)')
    parser.add_argument('--num-test', type=int, default=8,
                        help='test tiles (default 8)')
    parser.add_argument('--tile-size', type=int, nargs='+', default=[128],
                        metavar='N', help='training tile side, or H W '
                        '(default 128)')
    parser.add_argument('--test-tile-size', type=int, nargs=2,
                        default=[200, 176], metavar=('H', 'W'),
                        help='test tile size (default 200 176)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--geotiff-scene', type=int, nargs=2,
                        metavar=('H', 'W'), help='instead of the dataset, '
                        'write one H x W scene: rgb.tif, dsm.tif, label.tif '
                        '(EPSG:32632, 0.25 m pixels)')
    parser.add_argument('--scene-set', type=int, metavar='N',
                        help='write N scenes (H x W of --geotiff-scene, '
                        'default 256 x 320) with polygon labels, areas of '
                        'interest and scenes.csv')
    parser.add_argument('--dsm-factor', type=int, default=1,
                        help='with --geotiff-scene: DSM pixels this many '
                        'times coarser than the RGB ones (default 1)')
    parser.add_argument('--deliver', action='store_true',
                        help='also write event_dir and lidar_dir: with RGB '
                        'and DSM, four modalities as in DELIVER')
    parser.add_argument('--nir', action='store_true',
                        help='also write a third modality, nir_dir (NIR '
                        'band with its own class evidence; SGMA demo)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace OUT_DIR even if this tool did not '
                        'write it')
    args = parser.parse_args(argv)
    if len(args.tile_size) not in (1, 2):
        parser.error('--tile-size takes N or H W')
    # An option the chosen output ignores is an error, not a silent no-op.
    scene_only = ('dsm_factor', )
    dataset_only = ('num_train', 'num_test', 'tile_size', 'test_tile_size',
                    'nir', 'deliver', 'overwrite')
    if args.scene_set is not None and args.scene_set < 1:
        parser.error('--scene-set: expected a positive number of scenes')
    scene_mode = args.geotiff_scene or args.scene_set
    if args.scene_set:
        scene_only = ()
        dataset_only += ('dsm_factor', )  # the set's DSMs are 1 m
    ignored = dataset_only if scene_mode else scene_only
    given = [
        '--' + name.replace('_', '-') for name in ignored
        if getattr(args, name) != parser.get_default(name)
    ]
    if given:
        parser.error(f'{", ".join(given)}: not used '
                     + ('with --scene-set (the set\'s DSMs are 1 m)'
                        if args.scene_set else
                        'with --geotiff-scene (they shape the dataset)'
                        if scene_mode else
                        'without --geotiff-scene'))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    if args.scene_set:
        from mmrsfusion.datasets.synthetic_scene import \
            write_synthetic_scene_set
        path = write_synthetic_scene_set(
            args.out_dir, args.scene_set, *(args.geotiff_scene or (256, 320)),
            seed=args.seed)
        print(f'synthetic scene set written: {path} '
              f'({time.time() - start:.1f} s)')
        return 0
    if args.geotiff_scene:
        from mmrsfusion.datasets.synthetic_scene import write_synthetic_scene
        paths = write_synthetic_scene(
            args.out_dir, *args.geotiff_scene, seed=args.seed,
            dsm_factor=args.dsm_factor)
        print(f'synthetic scene written: {paths} '
              f'({time.time() - start:.1f} s)')
        return 0
    size = args.tile_size[0] if len(args.tile_size) == 1 else \
        tuple(args.tile_size)
    try:
        out = generate_synthetic_dataset(
            args.out_dir,
            num_train=args.num_train,
            num_test=args.num_test,
            tile_size=size,
            seed=args.seed,
            test_tile_size=tuple(args.test_tile_size),
            overwrite=args.overwrite,
            nir=args.nir,
            deliver=args.deliver)
    except (FileExistsError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'synthetic dataset ready in {out} ({args.num_train} train, '
          f'{args.num_test} test tiles; {time.time() - start:.1f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
