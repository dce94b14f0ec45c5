"""Install mmrsfusion: ``pip install .`` / a wheel, or ``pip install -e .``
for development (see README for the full setup).

mmcv is deliberately not in ``install_requires``: it must be built with ops
against the installed torch (``tools/setup_env.sh``) or installed from
OpenMMLab's wheel index; it is listed in the ``mim`` extra
(``requirements/mminstall.txt``), which ``mim install -e .`` reads.

The configs, the tools and mim's model index travel inside the package as
``mmrsfusion/.mim/{configs,tools,model-index.yml}``, the OpenMMLab layout that
``mim`` and mmengine's ``mmrsfusion::`` config references read. In the
repository these are committed symlinks to ``configs/``, ``tools/`` and
``model-index.yml`` (so a checkout, an editable install and ``PYTHONPATH``
all see the live files); a wheel or a non-editable install gets copies,
written into the build folder by :class:`BuildPyWithMim` (the source tree is
left untouched).
"""
import os
import os.path as osp
import re
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
#: What ``mmrsfusion/.mim`` holds: repository paths, copied into wheels.
MIM_FILES = ('configs', 'tools', 'model-index.yml')


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


class BuildPyWithMim(build_py):
    """``build_py`` that puts copies of :data:`MIM_FILES` into the built
    package's ``.mim`` folder (an editable build keeps the symlinks)."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        mim = osp.join(self.build_lib, 'mmrsfusion', '.mim')
        for name in MIM_FILES:
            src, dst = osp.join(ROOT, name), osp.join(mim, name)
            if osp.islink(dst) or osp.isfile(dst):
                os.remove(dst)
            elif osp.isdir(dst):
                shutil.rmtree(dst)
            os.makedirs(mim, exist_ok=True)
            if osp.isdir(src):
                shutil.copytree(
                    src, dst,
                    ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                shutil.copyfile(src, dst)


def readme():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read()


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
        long_description=readme(),
        long_description_content_type='text/markdown',
        keywords='semantic segmentation, remote sensing, multimodal, '
        'openmmlab',
        packages=find_packages(exclude=('tests', 'tests.*', 'configs',
                                        'tools', 'docker')),
        include_package_data=True,
        python_requires='>=3.8',
        license='Apache-2.0',
        classifiers=[
            'Development Status :: 3 - Alpha',
            'Environment :: GPU :: NVIDIA CUDA',
            'Intended Audience :: Science/Research',
            'Operating System :: POSIX :: Linux',
            'Programming Language :: Python :: 3',
            'Programming Language :: Python :: 3.11',
            'Topic :: Scientific/Engineering :: GIS',
            'Topic :: Scientific/Engineering :: Image Recognition',
        ],
        entry_points={
            'console_scripts': ['mmrsfusion = mmrsfusion.cli:main'],
        },
        cmdclass={'build_py': BuildPyWithMim},
        install_requires=parse_requirements('runtime'),
        extras_require=extras,
        zip_safe=False)
