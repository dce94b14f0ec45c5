"""Version of mmrsfusion and the OpenMMLab versions it works with.

This module imports nothing from the OpenMMLab stack, so the guard below can
run before any of it is imported.
"""
import importlib.metadata
from typing import Callable, Optional

__version__ = '0.1.0'

# (distribution, module, minimum (inclusive), maximum (exclusive)), in the
# order they are checked: mmseg and mmpretrain assert on mmcv / mmengine when
# imported, so those two come first. Keep requirements/*.txt equal (a test
# checks).
DEPENDENCIES = (
    ('mmcv', 'mmcv', '2.0.0rc4', '2.2.0'),
    ('mmengine', 'mmengine', '0.10.0', '1.0.0'),
    ('mmsegmentation', 'mmseg', '1.2.0', '1.3.0'),
    ('mmpretrain', 'mmpretrain', '1.2.0', '1.3.0'),
)

_FIX = (
    'Fix: from the mmrsfusion repository run `bash tools/setup_env.sh` '
    '(it sets up ./.venv with versions known to work), or install the '
    'ranges above into this environment, e.g. `pip install '
    '"mmsegmentation>=1.2.0,<1.3.0"`. mmcv must be built with ops against '
    'your torch: `MMCV_WITH_OPS=1 pip install --no-build-isolation '
    'mmcv==2.1.0`, or installed from OpenMMLab\'s wheel index for CUDA '
    'builds (see docs/get_started.md, "GPU install").')


def installed_version(dist: str) -> Optional[str]:
    """Version of an installed distribution, or None when it is missing."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_dependencies(
        get_version: Callable[[str], Optional[str]] = installed_version
) -> None:
    """Check that the OpenMMLab stack is in the ranges mmrsfusion supports.

    Reads installed versions from package metadata, without importing the
    packages, so a wrong version is reported here rather than by an
    assertion or a missing symbol deep inside them.

    Args:
        get_version: Maps a distribution name to its installed version
            (None when not installed). Tests inject a fake.

    Raises:
        ImportError: Listing every package out of range (found and needed
            versions) and how to fix it.
    """
    from packaging.version import Version

    problems = []
    for dist, module, low, high in DEPENDENCIES:
        found = get_version(dist)
        need = f'>={low},<{high}'
        if found is None:
            problems.append(f'  - {dist} (import {module}): not installed, '
                            f'need {need}')
        elif not Version(low) <= Version(found) < Version(high):
            problems.append(f'  - {dist} (import {module}): found {found}, '
                            f'need {need}')
    if get_version('mmcv') is None and get_version('mmcv-lite') is not None:
        problems.append('  - mmcv-lite is installed, but mmsegmentation '
                        'needs mmcv with compiled ops (mmcv.ops): '
                        '`pip uninstall mmcv-lite` first')
    if problems:
        raise ImportError(
            f'mmrsfusion {__version__} cannot be imported: incompatible '
            'OpenMMLab packages in this Python environment:\n' +
            '\n'.join(problems) + '\n' + _FIX)


def check_mmcv_ops() -> None:
    """Check that mmcv comes with its compiled ops, which mmseg imports.

    Raises:
        ImportError: When ``mmcv._ext`` is missing (an mmcv built with
            ``MMCV_WITH_OPS=0``), saying where mmcv is and how to fix it.
    """
    import importlib.util
    if importlib.util.find_spec('mmcv._ext') is None:
        import mmcv
        raise ImportError(
            f'mmrsfusion {__version__} cannot be imported: mmcv '
            f'{mmcv.__version__} at {mmcv.__path__[0]} has no compiled ops '
            '(mmcv._ext), which mmsegmentation imports. ' + _FIX)
