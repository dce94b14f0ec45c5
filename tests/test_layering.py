"""The package's layering, read from its imports.

Every module of ``mmrsfusion`` is parsed with :mod:`ast` (nothing is
imported); each ``import`` / ``from ... import`` anywhere in it (function
bodies included; relative ones and ``from . import x`` resolved) that names
a module of the package is an arrow ``importer -> imported``. The test fails
on any import cycle between modules and on any arrow of :data:`FORBIDDEN`,
listing the offending arrows.
"""
import ast
import os.path as osp
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Set, Tuple

PACKAGE = 'mmrsfusion'
ROOT = Path(osp.dirname(osp.dirname(osp.abspath(__file__)))) / PACKAGE
#: Top-level names outside the package whose import is still an arrow (so
#: that a rule can forbid it): the repository's scripts.
WATCHED = ('tools', )
#: The bottom layer: it imports nothing of the package above it.
BOTTOM = ('mmrsfusion.utils', 'mmrsfusion.io')

#: ``(importer, imported, unless, why)``: no module under ``importer`` may
#: import a module under ``imported`` unless it is under one of ``unless``.
#: A name covers that module and every module below it; ``'mmrsfusion'``
#: covers the whole package (its ``__init__`` included).
FORBIDDEN: List[Tuple[str, str, Tuple[str, ...], str]] = [
    ('mmrsfusion.utils', 'mmrsfusion', BOTTOM,
     'utils is the bottom layer: it imports only utils and io'),
    ('mmrsfusion.io', 'mmrsfusion', BOTTOM,
     'io is the bottom layer: it imports only io and utils'),
    ('mmrsfusion.datasets', 'mmrsfusion.models', (),
     'datasets and models never import each other'),
    ('mmrsfusion.datasets', 'mmrsfusion.inference', (),
     'datasets sit below inference'),
    ('mmrsfusion.datasets', 'mmrsfusion.engine', (),
     'datasets sit below the engine'),
    ('mmrsfusion.models', 'mmrsfusion.datasets', (),
     'datasets and models never import each other'),
    ('mmrsfusion.models', 'mmrsfusion.inference', (),
     'models sit below inference (shared helpers live in models.utils)'),
    ('mmrsfusion.models', 'mmrsfusion.engine', (),
     'models sit below the engine'),
    ('mmrsfusion.inference', 'mmrsfusion.engine', (),
     'inference uses the checkpoint package, not the engine and its hooks'),
    ('mmrsfusion.inference', 'mmrsfusion.datasets.transforms', (),
     'inference reads rasters through io, not the dataset transforms'),
    ('mmrsfusion.checkpoint', 'mmrsfusion.engine', (),
     'the checkpoint library sits below the engine hooks that use it'),
    ('mmrsfusion.checkpoint', 'mmrsfusion.inference', (),
     'the checkpoint library sits below inference'),
    ('mmrsfusion.checkpoint', 'mmrsfusion.datasets', (),
     'the checkpoint library knows no data'),
    ('mmrsfusion.checkpoint', 'mmrsfusion.models', (),
     'the checkpoint library serves models, it does not import them'),
    ('mmrsfusion', 'tools', (),
     'the package never imports the scripts in tools/'),
]

Graph = Dict[str, Set[str]]


def module_files(root: Path, package: str) -> Dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root`` (a
    package's ``__init__.py`` is the package's own name)."""
    modules = {}
    for path in sorted(root.rglob('*.py')):
        parts = path.relative_to(root).with_suffix('').parts
        if parts[-1] == '__init__':
            parts = parts[:-1]
        modules['.'.join((package, ) + parts)] = path
    return modules


def _resolve(name: str, modules: Dict[str, Path]) -> str:
    """The longest prefix of the dotted ``name`` that is a module (a name
    imported from a module is an arrow to that module)."""
    parts = name.split('.')
    while parts and '.'.join(parts) not in modules:
        parts.pop()
    return '.'.join(parts)


def imported_names(module: str, path: Path) -> Iterable[str]:
    """The absolute dotted names ``module`` (in ``path``) imports, from
    every ``import`` statement of the file, at any depth."""
    package = module if path.name == '__init__.py' else \
        module.rpartition('.')[0]
    tree = ast.parse(path.read_text(encoding='utf-8'), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split('.')
                parts = parts[:len(parts) - (node.level - 1)]
                base = '.'.join(parts + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                # ``from pkg import sub`` may name a submodule: try it first
                yield base if alias.name == '*' else f'{base}.{alias.name}'


def import_graph(root: Path = ROOT,
                 package: str = PACKAGE,
                 watched: Sequence[str] = WATCHED) -> Graph:
    """``{module: modules it imports}`` over the package's modules; imports
    of ``watched`` top-level names are kept as their dotted names."""
    modules = module_files(root, package)
    graph: Graph = {}
    for module, path in modules.items():
        targets = set()
        for name in imported_names(module, path):
            top = name.split('.')[0]
            if top == package:
                target = _resolve(name, modules)
            elif top in watched:
                target = name
            else:
                continue
            if target and target != module:
                targets.add(target)
        graph[module] = targets
    return graph


def _under(module: str, name: str) -> bool:
    return module == name or module.startswith(name + '.')


def forbidden_arrows(graph: Graph,
                     rules: Sequence[Tuple[str, str, Tuple[str, ...],
                                           str]] = FORBIDDEN) -> List[str]:
    """``'importer -> imported (why)'`` for every arrow a rule forbids."""
    found = []
    for src in sorted(graph):
        for dst in sorted(graph[src]):
            for importer, imported, unless, why in rules:
                if _under(src, importer) and _under(dst, imported) and \
                        not any(_under(dst, ok) for ok in unless):
                    found.append(f'{src} -> {dst} ({why})')
    return found


def import_cycles(graph: Graph) -> List[List[str]]:
    """The arrows of every import cycle: one list of ``'a -> b'`` per
    strongly connected component of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    components: List[Set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [
        sorted(f'{src} -> {dst}' for src in component
               for dst in graph[src] if dst in component)
        for component in components
    ]


def test_no_import_cycles():
    cycles = import_cycles(import_graph())
    assert not cycles, 'import cycles between modules:\n' + '\n\n'.join(
        '\n'.join(arrows) for arrows in cycles)


def test_no_forbidden_arrows():
    arrows = forbidden_arrows(import_graph())
    assert not arrows, 'forbidden imports:\n' + '\n'.join(arrows)


def test_graph_reads_the_package():
    """The graph is the package's: a few arrows known to exist are there
    (absolute, relative, ``from . import x``), so the checks above are not
    passing on an empty graph."""
    graph = import_graph()
    assert len(graph) > 50
    assert 'mmrsfusion.models.utils' in \
        graph['mmrsfusion.models.segmentors.multimodal_encoder_decoder']
    assert 'mmrsfusion.datasets.isprs_raw.readers' in \
        graph['mmrsfusion.datasets.isprs_raw.discovery']
    assert {'mmrsfusion.datasets', 'mmrsfusion.models'} <= \
        graph['mmrsfusion']


def _write(root: Path, files: Dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_finds_cycles_and_forbidden_arrows(tmp_path):
    """The checker on a synthetic package: a cycle closed by a relative
    import inside a function, ``from . import x`` resolved to the
    submodule, and forbidden arrows, ``tools`` included."""
    root = tmp_path / PACKAGE
    _write(
        root, {
            '__init__.py': 'from . import datasets, utils\n',
            'utils/__init__.py': 'from .misc import helper\n',
            'utils/misc.py': ('def helper():\n'
                              '    from ..models.net import Net\n'
                              '    return Net\n'),
            'datasets/__init__.py': '',
            'datasets/a.py': ('from . import b\n'
                              'import tools.train\n'),
            'datasets/b.py': ('def f():\n'
                              '    from .a import g\n'),
            'models/__init__.py': '',
            'models/net.py': ('from mmrsfusion.utils.misc import helper\n'
                              'from mmrsfusion.datasets import a\n'),
        })
    graph = import_graph(root)
    assert graph['mmrsfusion'] == {'mmrsfusion.datasets', 'mmrsfusion.utils'}
    assert graph['mmrsfusion.datasets.a'] == {'mmrsfusion.datasets.b',
                                              'tools.train'}
    assert graph['mmrsfusion.utils.misc'] == {'mmrsfusion.models.net'}

    cycles = import_cycles(graph)
    assert sorted(cycles) == [
        ['mmrsfusion.datasets.a -> mmrsfusion.datasets.b',
         'mmrsfusion.datasets.b -> mmrsfusion.datasets.a'],
        ['mmrsfusion.models.net -> mmrsfusion.utils.misc',
         'mmrsfusion.utils.misc -> mmrsfusion.models.net'],
    ]
    arrows = [arrow.split(' (')[0] for arrow in forbidden_arrows(graph)]
    assert arrows == [
        'mmrsfusion.datasets.a -> tools.train',
        'mmrsfusion.models.net -> mmrsfusion.datasets.a',
        'mmrsfusion.utils.misc -> mmrsfusion.models.net',
    ]
