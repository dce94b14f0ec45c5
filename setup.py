"""Install mmrsfusion: ``pip install -e .`` (see README for the full setup).

mmcv is deliberately not in ``install_requires``: it must be built with ops
against the installed torch (``tools/setup_env.sh``) or installed from
OpenMMLab's wheel index; it is listed in the ``mim`` extra
(``requirements/mminstall.txt``), which ``mim install -e .`` reads.
"""
import os.path as osp
import re

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))


def get_version():
    with open(osp.join(ROOT, 'mmrsfusion', 'version.py')) as f:
        return re.search(r"^__version__ = '([^']+)'", f.read(), re.M).group(1)


def parse_requirements(name):
    """Requirement specifiers of ``requirements/<name>.txt``.

    Blank lines, comments and pip options (lines starting with ``-``) are
    skipped; an inline ``# comment`` is stripped.
    """
    with open(osp.join(ROOT, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


if __name__ == '__main__':
    extras = {
        name: parse_requirements(name)
        for name in ('tests', 'tb', 'geo', 'mminstall')
    }
    extras['mim'] = extras.pop('mminstall')
    extras['all'] = sorted({r for reqs in extras.values() for r in reqs})
    setup(
        name='mmrsfusion',
        version=get_version(),
        description='Multimodal remote-sensing semantic segmentation with '
        'frozen vision foundation models, as an MMSegmentation 1.x extension',
        keywords='semantic segmentation, remote sensing, multimodal, '
        'openmmlab',
        packages=find_packages(exclude=('tests', 'tests.*', 'configs',
                                        'tools', 'docker')),
        include_package_data=True,
        python_requires='>=3.8',
        license='Apache License 2.0',
        classifiers=[
            'Programming Language :: Python :: 3',
            'Topic :: Scientific/Engineering :: Image Recognition',
        ],
        install_requires=parse_requirements('runtime'),
        extras_require=extras,
        zip_safe=False)
