"""The Dockerfiles (not built here: no Docker) install through files that
exist and that the build context (.dockerignore) keeps."""
import fnmatch
import os.path as osp
import re

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOCKERFILES = ('docker/Dockerfile', 'docker/cpu/Dockerfile')
#: A repository path a Dockerfile names: requirement files and scripts.
PATH = re.compile(r'(?<![\w/.-])((?:requirements|tools|docker)/[\w/.-]*'
                  r'[\w])')


def instructions(dockerfile: str):
    """``(keyword, arguments)`` of each instruction, continuation lines
    joined and comments left out."""
    with open(osp.join(ROOT, dockerfile)) as f:
        lines = [line for line in f if not line.lstrip().startswith('#')]
    text = ''.join(lines).replace('\\\n', ' ')
    for line in text.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(' ')
            yield keyword.upper(), args


def ignored(path: str) -> bool:
    with open(osp.join(ROOT, '.dockerignore')) as f:
        patterns = [p.strip() for p in f
                    if p.strip() and not p.startswith('#')]
    parts = path.split('/')
    return any(
        fnmatch.fnmatch(path, p) or fnmatch.fnmatch(parts[0], p) or
        (p.startswith('**/') and p[3:] in parts) for p in patterns)


@pytest.mark.parametrize('dockerfile', DOCKERFILES)
def test_dockerfile_names_only_existing_files(dockerfile):
    named = set()
    for keyword, args in instructions(dockerfile):
        if keyword in ('RUN', 'COPY'):
            named |= set(PATH.findall(args))
        if keyword == 'COPY':
            *sources, _ = args.split()
            for source in sources:
                assert source == '.' or osp.exists(osp.join(ROOT, source)), \
                    f'{dockerfile}: COPY {source}: no such path'
    assert named, f'{dockerfile} names no requirement file or script'
    for path in sorted(named):
        assert osp.exists(osp.join(ROOT, path)), \
            f'{dockerfile} names {path}, which does not exist'
        assert not ignored(path), f'.dockerignore drops {path}'


def test_both_images_install_through_the_setup_files():
    """The GPU image installs the requirement files setup_env.sh installs
    (runtime, build, geo); the CPU image runs setup_env.sh itself."""
    cuda = ' '.join(a for _, a in instructions('docker/Dockerfile'))
    cpu = ' '.join(a for _, a in instructions('docker/cpu/Dockerfile'))
    for name in ('build', 'runtime', 'geo'):
        assert f'requirements/{name}.txt' in cuda
    assert 'bash tools/setup_env.sh' in cpu
    assert 'requirements/geo.txt' in cpu
    with open(osp.join(ROOT, 'tools', 'setup_env.sh')) as f:
        setup_env = f.read()
    for name in ('build', 'runtime'):
        assert f'requirements/{name}.txt' in setup_env


def test_ignored_matches_like_docker():
    assert ignored('.venv/bin/python') and ignored('data/x.png')
    assert ignored('mmrsfusion/__pycache__/x.pyc')
    assert not ignored('requirements/runtime.txt')
    assert not ignored('tools/setup_env.sh')
