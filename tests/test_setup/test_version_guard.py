"""The version guard of ``mmrsfusion/__init__.py`` and the requirement files
it must agree with."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

from mmrsfusion import version

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GOOD = {'mmcv': '2.1.0', 'mmengine': '0.10.7', 'mmsegmentation': '1.2.2',
        'mmpretrain': '1.2.0'}


def test_installed_stack_passes():
    version.check_dependencies()
    version.check_mmcv_ops()


@pytest.mark.parametrize('dist, found', [
    ('mmcv', '2.2.0'),
    ('mmcv', '1.7.2'),
    ('mmengine', '0.9.1'),
    ('mmsegmentation', '1.3.0'),
    ('mmsegmentation', '0.30.0'),
    ('mmpretrain', '1.1.0'),
])
def test_out_of_range_is_reported(dist, found):
    fake = dict(GOOD, **{dist: found})
    with pytest.raises(ImportError) as info:
        version.check_dependencies(fake.get)
    message = str(info.value)
    low, high = next(
        (d[2], d[3]) for d in version.DEPENDENCIES if d[0] == dist)
    assert f'{dist} (import ' in message
    assert f'found {found}, need >={low},<{high}' in message  # what, needs
    assert 'bash tools/setup_env.sh' in message  # how to fix
    # only the offending package is listed
    assert sum(f'  - {d} ' in message for d in GOOD) == 1


def test_missing_and_lite_are_reported():
    fake = dict(GOOD, **{'mmcv-lite': '2.1.0'})
    del fake['mmcv'], fake['mmpretrain']
    with pytest.raises(ImportError) as info:
        version.check_dependencies(fake.get)
    message = str(info.value)
    assert 'mmcv (import mmcv): not installed, need >=2.0.0rc4,<2.2.0' \
        in message
    assert 'mmpretrain (import mmpretrain): not installed' in message
    assert 'mmcv-lite is installed' in message
    assert 'MMCV_WITH_OPS=1' in message


def test_prerelease_in_range():
    version.check_dependencies(dict(GOOD, mmcv='2.0.0rc4').get)
    with pytest.raises(ImportError):
        version.check_dependencies(dict(GOOD, mmcv='2.0.0rc3').get)


def test_guard_runs_before_submodules(tmp_path):
    """With a wrong mmseg version, ``import mmrsfusion`` fails with the
    guard's message, not with an error from inside the stack."""
    (tmp_path / 'sitecustomize.py').write_text(
        'import importlib.metadata as m\n'
        '_version = m.version\n'
        'm.version = lambda d: "1.3.1" if d == "mmsegmentation" '
        'else _version(d)\n')
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run(
        [sys.executable, '-c', 'import mmrsfusion'],
        cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert 'ImportError: mmrsfusion' in result.stderr
    assert 'mmsegmentation (import mmseg): found 1.3.1, need ' \
        '>=1.2.0,<1.3.0' in result.stderr
    # raised by the guard itself, not from inside the stack
    frames = [line for line in result.stderr.splitlines()
              if line.strip().startswith('File ')]
    assert osp.join('mmrsfusion', 'version.py') in frames[-1]


def _requirements(name):
    with open(osp.join(ROOT, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return {
            Requirement(line).name: Requirement(line)
            for line in lines if line and not line.startswith('-')
        }


def test_requirement_files_match_guard():
    runtime, mim = _requirements('runtime'), _requirements('mminstall')
    for dist, _, low, high in version.DEPENDENCIES:
        assert str(mim[dist].specifier) == \
            str(Requirement(f'{dist}>={low},<{high}').specifier)
        if dist != 'mmcv':  # built against torch, not installed by pip -e
            assert str(runtime[dist].specifier) == str(mim[dist].specifier)
    assert 'mmcv' not in runtime


def test_setup_env_pins_are_in_range():
    with open(osp.join(ROOT, 'tools', 'setup_env.sh')) as f:
        script = f.read()
    mmcv = Requirement(re.search(r'MMCV_SPEC="([^"]+)"', script).group(1))
    low, high = version.DEPENDENCIES[0][2:]
    assert mmcv.name == 'mmcv'
    assert next(iter(mmcv.specifier)).version in \
        Requirement(f'mmcv>={low},<{high}').specifier
    assert '"torch===2.13.0" "torchvision===0.28.0"' in script
