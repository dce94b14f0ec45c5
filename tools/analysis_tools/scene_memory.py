"""Peak memory of a SceneDataset against the size of its scene.

For each side S of ``--sizes`` writes one S x S scene into ``--work-dir``
(cheaply, whatever S: sparse tiled GeoTIFFs, only one block of each
written): RGB (1 m pixels), a DSM on another grid (4 m pixels, its origin
shifted), a few label polygons and an AOI (a pentagon over about half the
scene); then, in a fresh Python process per scene, builds a training
``SceneDataset`` on it (``--crop``, the DSM's ``norm`` None: no
whole-scene range pass) and reads ``--samples`` random windows. Prints per
scene: the seconds to build and to read, the bytes of numpy arrays the
dataset holds and the rise of the process's resident memory after the
build and after the reads (peak, from ``/proc/self/status`` VmHWM, reset
after the imports, minus the resident memory then; it includes GDAL's
block cache and modules imported on first use). The ``mmrsfusion``
measured is the one importable (``PYTHONPATH``): run it against two
checkouts to compare them.

Example::

    python tools/analysis_tools/scene_memory.py --work-dir /tmp/scenes \\
        --sizes 5000 20000 100000
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

#: Run in the fresh process: build, read, measure; prints one JSON line.
CHILD = r'''
import json, sys, time
import numpy as np
from mmengine.registry import init_default_scope
import mmrsfusion
from mmrsfusion.datasets import SceneDataset

def status(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024

def held(obj, seen):
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(held(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(held(v, seen) for v in obj)
    return 0

root, crop, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
init_default_scope('mmseg')
with open('/proc/self/clear_refs', 'w') as f:  # VmHWM := VmRSS
    f.write('5')
base = status('VmRSS')
t0 = time.perf_counter()
ds = SceneDataset(
    ann_file='scenes.csv', data_root=root, crop_size=(crop, crop),
    modalities=[dict(name='rgb', channels=3, kind='optical',
                     mean=[0.] * 3, std=[1.] * 3),
                dict(name='dsm', channels=1, kind='elevation', mean=[0.],
                     std=[1.], norm=None)],
    samples_per_epoch=samples, pipeline=[],
    metainfo=dict(classes=tuple('abcdef')))
t1 = time.perf_counter()
built = status('VmHWM') - base
np.random.seed(0)
for i in range(samples):
    ds[i]
t2 = time.perf_counter()
print(json.dumps(dict(mmrsfusion=mmrsfusion.__file__, build_s=t1 - t0,
                      read_s=t2 - t1, arrays=held(ds.__dict__, set()),
                      built=built, rise=status('VmHWM') - base)))
'''


def write_scene(folder: str, side: int) -> None:
    """The sparse S x S scene and its scene list in ``folder``."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window
    os.makedirs(folder, exist_ok=True)
    crs, west, north = 'EPSG:32632', 400000.0, 5000000.0
    rng = np.random.default_rng(0)
    for name, res, count, dtype, origin, nodata in (
            ('rgb', 1.0, 3, 'uint8', (west, north), None),
            ('dsm', 4.0, 1, 'float32', (west - 6, north + 10), -9999.0)):
        n = side if name == 'rgb' else -(-side // 4) + 4
        with rasterio.open(
                osp.join(folder, f'{name}.tif'), 'w', driver='GTiff',
                height=n, width=n, count=count, dtype=dtype, crs=crs,
                transform=from_origin(*origin, res, res), nodata=nodata,
                tiled=True, blockxsize=512, blockysize=512,
                compress='deflate', sparse_ok=True, bigtiff='yes') as f:
            b = min(512, n)  # one block of data, the rest sparse
            f.write((rng.random((count, b, b)) * 200).astype(dtype),
                    window=Window(0, 0, b, b))

    def polygon(ring, props):
        ring = [[west + x * side, north - y * side] for x, y in ring]
        return dict(type='Feature', properties=props, geometry=dict(
            type='Polygon', coordinates=[ring + ring[:1]]))

    crs_member = dict(type='name', properties=dict(name=crs))
    labels = [polygon([(x, y), (x + .3, y), (x + .3, y + .3), (x, y + .3)],
                      {'class': k}) for k, (x, y) in enumerate(
                          [(0, 0), (.5, .1), (.2, .6), (.65, .65)])]
    aoi = [polygon([(.1, .9), (.7, .95), (.85, .4), (.4, .1), (.05, .5)],
                   {})]
    for name, features in (('labels', labels), ('aoi', aoi)):
        with open(osp.join(folder, f'{name}.geojson'), 'w') as f:
            json.dump(dict(type='FeatureCollection', crs=crs_member,
                           features=features), f)
    with open(osp.join(folder, 'scenes.csv'), 'w') as f:
        f.write('name,rgb,dsm,labels,aoi\n'
                'scene,rgb.tif,dsm.tif,labels.geojson,aoi.geojson\n')


def main():
    parser = argparse.ArgumentParser(
        description='Peak memory of a SceneDataset against scene size')
    parser.add_argument('--work-dir', required=True,
                        help='folder for the scenes (one sub-folder a '
                        'size; existing ones are reused)')
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[5000, 20000, 100000],
                        help='scene sides in pixels')
    parser.add_argument('--crop', type=int, default=128,
                        help='window side in pixels')
    parser.add_argument('--samples', type=int, default=300,
                        help='random windows read per scene')
    args = parser.parse_args()
    for side in args.sizes:
        folder = osp.join(args.work_dir, f'scene_{side}')
        if not osp.isfile(osp.join(folder, 'scenes.csv')):
            write_scene(folder, side)
        out = subprocess.run(
            [sys.executable, '-c', CHILD, folder, str(args.crop),
             str(args.samples)], capture_output=True, text=True,
            cwd=folder)  # not the checkout: PYTHONPATH picks mmrsfusion
        if out.returncode:
            sys.exit(f'scene {side}: the measuring process failed:\n'
                     f'{out.stderr[-3000:]}')
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f'scene {side}x{side} crop {args.crop}: build '
              f'{r["build_s"]:.1f} s, {args.samples} windows '
              f'{r["read_s"]:.1f} s, numpy arrays held '
              f'{r["arrays"] / 2**20:.1f} MiB, peak RSS rise: built '
              f'{r["built"] / 2**20:.0f} MiB, read '
              f'{r["rise"] / 2**20:.0f} MiB ({r["mmrsfusion"]})',
              flush=True)


if __name__ == '__main__':
    main()
