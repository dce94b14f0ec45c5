"""The product as a user gets it: the wheel, installed into a fresh virtualenv
with no checkout on the path, run only through its console command.

The repository's files are copied to a scratch folder and built there with
``pip wheel`` (the checkout gets no build/ or egg-info). The virtualenv has
no pip and no packages of its own: the dependencies are the running
interpreter's site-packages, seen through a folder of symlinks that leaves
out every mmrsfusion entry there (the checkout's editable install: its
dist-info and its ``__editable__`` finder), named by a ``.pth`` file; so
``mmrsfusion`` can only come from the wheel, which the test checks. Every
command runs with ``PYTHONPATH`` unset, from a folder outside the checkout.

From that install: list the configs, write the synthetic data and the tiny
ViT checkpoint, train the MoBaNet demo by config name for 2 iterations, test
the checkpoint through a user config that inherits the installed one with
``_base_ = 'mmrsfusion::...'``, and map a small GeoTIFF scene.
"""
import os
import os.path as osp
import re
import site
import subprocess
import sys

import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'mobanet/demo_tinyvit_synthetic'
TINY = 'pretrain/dinov2_tiny_demo'
#: Top-level folders of a checkout that are not part of the source.
NOT_SOURCE = {'.git', '.venv', 'build', 'dist', 'data', 'work_dirs',
              'pretrain', '.pytest_cache', '.whl', '.gl', 'shared'}


def copy_source(dst: str) -> None:
    """Copy the checkout's source (symlinks kept as symlinks) to ``dst``."""
    import shutil

    def ignore(folder, names):
        skip = {n for n in names if n == '__pycache__' or
                n.endswith('.egg-info')}
        if osp.samefile(folder, ROOT):
            skip |= NOT_SOURCE & set(names)
        return skip

    shutil.copytree(ROOT, dst, symlinks=True, ignore=ignore)


def dependency_view(dst: str) -> str:
    """``dst`` holding a symlink to every entry of this interpreter's
    site-packages but mmrsfusion's own and the ``.pth`` files."""
    os.makedirs(dst)
    for folder in site.getsitepackages():
        if not osp.isdir(folder):
            continue
        for name in os.listdir(folder):
            if 'mmrsfusion' in name.lower() or name.endswith('.pth') or \
                    osp.lexists(osp.join(dst, name)):
                continue
            os.symlink(osp.join(folder, name), osp.join(dst, name))
    return dst


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """A virtualenv with the wheel installed; returns its bin folder."""
    tmp = tmp_path_factory.mktemp('wheel')
    src, wheels, venv = tmp / 'src', tmp / 'wheels', tmp / 'venv'
    copy_source(str(src))
    subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '--no-deps',
         '--no-build-isolation', '--no-index', '-q', '-w', str(wheels), '.'],
        cwd=src, check=True)
    (wheel, ) = wheels.glob('mmrsfusion-*.whl')
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)],
                   check=True)
    purelib = subprocess.run(
        [str(venv / 'bin' / 'python'), '-c',
         'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
        check=True, capture_output=True, text=True).stdout.strip()
    deps = dependency_view(str(tmp / 'deps'))
    with open(osp.join(purelib, '_mmrsfusion_test_deps.pth'), 'w') as f:
        f.write(deps + '\n')
    run(venv / 'bin', 'python', '-m', 'pip', 'install', '--no-deps',
        '--no-index', '-q', str(wheel), cwd=tmp)
    return venv / 'bin'


def env() -> dict:
    return {k: v for k, v in os.environ.items()
            if k not in ('PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP')}


def run(bin_dir, program, *args, cwd) -> str:
    """Run ``bin_dir/program args`` in ``cwd``; its output (stdout and
    stderr), which the failure message shows."""
    done = subprocess.run([str(bin_dir / program), *map(str, args)],
                          cwd=cwd, env=env(), capture_output=True, text=True)
    out = done.stdout + done.stderr
    assert done.returncode == 0, f'{program} {args} failed:\n{out[-6000:]}'
    return out


def test_wheel_install_lists_trains_tests_and_maps(installed, tmp_path):
    work = tmp_path

    # mmrsfusion, its configs and tools come from the wheel, not a checkout
    where = run(installed, 'python', '-c', (
        'import os.path as osp, mmrsfusion; d = osp.dirname('
        'mmrsfusion.__file__); print("PACKAGE", d, osp.islink(d + "/.mim/'
        'configs"), osp.isfile(d + "/.mim/tools/train.py"))'), cwd=work)
    package_dir, link, has_tools = re.search(
        r'^PACKAGE (\S+) (\S+) (\S+)$', where, re.M).groups()
    venv = osp.dirname(str(installed))
    assert osp.realpath(package_dir).startswith(osp.realpath(venv) + os.sep)
    assert (link, has_tools) == ('False', 'True')  # copies, not symlinks
    version = re.search(
        r"__version__ = '([^']+)'",
        open(osp.join(ROOT, 'mmrsfusion', 'version.py')).read())[1]
    assert version in run(installed, 'mmrsfusion', '--version',
                          cwd=work).split()

    listed = run(installed, 'mmrsfusion', 'configs', cwd=work).split()
    assert CONFIG in listed and 'mfnet/sam_vitb_mmlora_vaihingen' in listed
    assert not [n for n in listed if '_base_' in n]

    run(installed, 'mmrsfusion', 'make-synthetic', 'data/synthetic_mm',
        '--num-train', 4, '--num-test', 1, cwd=work)
    run(installed, 'mmrsfusion', 'make-tiny-vit', f'{TINY}_pretrain.pth',
        cwd=work)
    run(installed, 'mmrsfusion', 'convert-weights', 'dinov2',
        f'{TINY}_pretrain.pth', f'{TINY}_converted.pth', cwd=work)

    out = run(installed, 'mmrsfusion', 'train', CONFIG, '--work-dir',
              'work_dirs/demo', '--cfg-options', 'train_cfg.max_iters=2',
              'train_dataloader.batch_size=2', cwd=work)
    assert 'Iter(train) [2/2]' in out
    checkpoint = (work / 'work_dirs/demo/last_checkpoint').read_text().strip()
    assert osp.isfile(checkpoint)

    # a user's config that inherits the installed one by reference
    (work / 'my_demo.py').write_text(
        f"_base_ = 'mmrsfusion::{CONFIG}.py'\n"
        'default_hooks = dict(logger=dict(interval=1))\n')
    out = run(installed, 'mmrsfusion', 'test', 'my_demo.py', checkpoint,
              '--work-dir', 'work_dirs/demo_test', cwd=work)
    assert re.search(r'mIoU\D+\d', out), out[-3000:]

    run(installed, 'mmrsfusion', 'make-synthetic', 'data/scene',
        '--geotiff-scene', 160, 192, '--dsm-factor', 4, cwd=work)
    run(installed, 'mmrsfusion', 'predict-scene', CONFIG, checkpoint,
        '--input', 'rgb=data/scene/rgb.tif', '--input',
        'dsm=data/scene/dsm.tif', '-o', 'scene_pred.tif', '--no-progress',
        cwd=work)
    import rasterio
    with rasterio.open(work / 'scene_pred.tif') as pred, \
            rasterio.open(work / 'data/scene/rgb.tif') as rgb:
        assert (pred.height, pred.width) == (160, 192)
        assert pred.transform == rgb.transform and pred.crs == rgb.crs
        classes = pred.read(1)
    assert np.isin(classes, np.arange(6)).all()


def test_dependency_view_leaves_out_the_checkout(tmp_path):
    """The dependency folder has none of the checkout's install of
    mmrsfusion (dist-info, editable finder), yet the stack it needs."""
    deps = dependency_view(str(tmp_path / 'deps'))
    names = os.listdir(deps)
    assert not [n for n in names if 'mmrsfusion' in n.lower()]
    assert {'torch', 'mmseg', 'mmengine', 'pip'} <= set(names)
