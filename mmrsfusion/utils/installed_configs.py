"""The configs and tools the package carries, in its ``.mim`` folder (the
OpenMMLab layout): listing configs, resolving a config given by name, and
mmengine's ``mmrsfusion::`` config references.

``mmrsfusion/.mim/{configs,tools}`` are copies in a wheel or a non-editable
install and symlinks to the repository's ``configs/`` and ``tools/`` in a
checkout (see ``setup.py``).
"""
import difflib
import os
import os.path as osp
from typing import List

#: ``mmrsfusion/.mim`` of the imported package.
MIM_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim')
CONFIG_DIR = osp.join(MIM_DIR, 'configs')
TOOLS_DIR = osp.join(MIM_DIR, 'tools')
#: The prefix of a config reference into this package (mmengine's syntax).
SCOPE = 'mmrsfusion::'


def list_configs() -> List[str]:
    """Names of the runnable configs (``<method>/<name>`` without ``.py``),
    sorted; the ``_base_`` fragments they inherit are left out."""
    names = []
    for path in _walk_py(CONFIG_DIR):
        rel = osp.relpath(path, CONFIG_DIR)
        if '_base_' not in rel.split(osp.sep):
            names.append(osp.splitext(rel)[0].replace(osp.sep, '/'))
    return sorted(names)


def _walk_py(root: str) -> List[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if d != '__pycache__']
        found += [osp.join(dirpath, f) for f in filenames if f.endswith('.py')]
    return found


def resolve_config(name: str) -> str:
    """The config file that ``name`` stands for.

    An existing file is returned as given; otherwise ``name`` is read as a
    config of the package: ``mobanet/demo_tinyvit_synthetic``, with or
    without ``.py``, a leading ``configs/`` or ``mmrsfusion::``.

    Raises:
        FileNotFoundError: When it is neither, naming the closest configs.
    """
    if osp.isfile(name):
        return name
    rel = name[len(SCOPE):] if name.startswith(SCOPE) else name
    if rel.startswith('configs/'):
        rel = rel[len('configs/'):]
    if not rel.endswith('.py'):
        rel += '.py'
    path = osp.join(CONFIG_DIR, rel)
    if osp.isfile(path):
        return path
    close = difflib.get_close_matches(
        osp.splitext(rel)[0], list_configs(), n=3, cutoff=0.5)
    hint = f' Did you mean: {", ".join(close)}?' if close else ''
    raise FileNotFoundError(
        f'config {name!r}: no such file, and no config {rel} among the '
        f'installed ones ({CONFIG_DIR}; `mmrsfusion configs` lists them).'
        f'{hint}')


def register_config_scope() -> None:
    """Let mmengine's ``Config`` read ``mmrsfusion::<method>/<cfg>.py``.

    mmengine reads ``PACKAGE::path`` only for packages in its
    ``MODULE2PACKAGE`` table (``mmengine.config.utils``), which a downstream
    package extends with its own entry (done here: ``mmengine.hub`` and
    ``mim`` use it). Two steps of its resolution do not fit this package:
    it finds the package through ``pkg_resources``, which for a PEP 660
    editable install (and a ``PYTHONPATH`` checkout beside one) names the
    site-packages folder, not the checkout; and it tags every dict of such
    a base config with ``_scope_='mmrsfusion'``, a registry scope that does
    not exist (this package registers into mmseg's registries, default scope
    ``mmseg``), so building falls back to mmengine's root registries and
    fails (``MultiModalSegLocalVisualizer is not in the
    mmengine::visualizer registry``). So a ``mmrsfusion::`` base is read
    like a relative one: from the imported package's ``.mim/configs``,
    with no scope tag (its ``default_scope`` applies).
    """
    from mmengine.config import Config
    from mmengine.config.utils import MODULE2PACKAGE

    MODULE2PACKAGE.setdefault('mmrsfusion', 'mmrsfusion')
    get_cfg_path = Config._get_cfg_path
    if getattr(get_cfg_path, 'mmrsfusion', False):
        return

    def _get_cfg_path(cfg_path: str, filename: str):
        if cfg_path.startswith(SCOPE):
            return resolve_config(cfg_path), None
        return get_cfg_path(cfg_path, filename)

    _get_cfg_path.mmrsfusion = True
    Config._get_cfg_path = staticmethod(_get_cfg_path)
