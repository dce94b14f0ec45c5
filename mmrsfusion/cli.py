"""The ``mmrsfusion`` command: one subcommand per tool of ``tools/``.

    mmrsfusion COMMAND [ARGS ...]      (also: python -m mmrsfusion ...)

Each subcommand runs its script from the package's ``.mim/tools`` (copies in
an install, the repository's ``tools/`` in a checkout) in this process, with
``ARGS`` as its command line, so ``mmrsfusion train ARGS`` is
``python tools/train.py ARGS``. A command that takes a config takes it
first, as a file or by name (``mobanet/demo_tinyvit_synthetic``, see
``mmrsfusion configs``).
"""
import argparse
import os
import os.path as osp
import runpy
import sys
from typing import List, Optional

from mmrsfusion.utils.installed_configs import (CONFIG_DIR, TOOLS_DIR,
                                                list_configs, resolve_config)
from mmrsfusion.version import __version__

#: ``command: (script under tools/, takes a config first, what it does)``
COMMANDS = {
    'train': ('train.py', True, 'train a model'),
    'test': ('test.py', True, 'test a checkpoint on the test split'),
    'predict-scene': ('predict_scene.py', True,
                      'map a whole georeferenced scene (needs the geo '
                      'extra)'),
    'subsets': ('analysis_tools/eval_modality_subsets.py', True,
                'test every subset of the modalities in one pass'),
    'benchmark': ('analysis_tools/benchmark.py', True,
                  'speed and memory of a config'),
    'count-params': ('analysis_tools/count_params.py', True,
                     'trainable / frozen parameter counts'),
    'make-synthetic': ('misc/make_synthetic_dataset.py', False,
                       'write the synthetic demo data or scenes'),
    'make-tiny-vit': ('misc/make_tiny_vit_checkpoint.py', False,
                      "write the demo's tiny DINOv2-style checkpoint"),
    'download': ('misc/download_weights.py', False,
                 'fetch, verify and convert official pretrained weights'),
}
#: ``command: (folder under tools/, its argument, what it does)``: the
#: command's first argument names the script.
GROUPS = {
    'convert': ('dataset_converters', 'DATASET',
                'convert a downloaded data set (scenes_to_tiles: a scene '
                'list into tiles)'),
    'convert-weights': ('model_converters', 'FAMILY',
                        'convert official backbone weights (dinov2, sam)'),
}
LIST = ('configs', 'list-configs')


def group_members(folder: str) -> List[str]:
    """The scripts of ``tools/<folder>``, by name without ``.py``."""
    path = osp.join(TOOLS_DIR, folder)
    return sorted(
        osp.splitext(f)[0] for f in os.listdir(path)
        if f.endswith('.py') and not f.startswith('_'))


def usage() -> str:
    lines = [f'usage: mmrsfusion COMMAND [ARGS ...]  (mmrsfusion '
             f'{__version__})', '', 'commands (COMMAND -h for its options):']
    for name, (_, takes_config, what) in COMMANDS.items():
        lines.append(f'  {name:<16}{what}' +
                     (' (CONFIG first)' if takes_config else ''))
    for name, (folder, arg, what) in GROUPS.items():
        lines.append(f'  {name:<16}{what}: {name} {arg} ..., {arg} one of '
                     f'{", ".join(group_members(folder))}')
    lines.append(f'  {"configs":<16}list the configs a CONFIG can name '
                 '(also list-configs)')
    lines += ['', 'A CONFIG is a file or a config name such as '
              'mobanet/demo_tinyvit_synthetic.', f'Configs: {CONFIG_DIR}',
              f'Tools: {TOOLS_DIR}']
    return '\n'.join(lines)


def run_tool(script: str, prog: str, argv: List[str]) -> None:
    """Run ``tools/<script>`` as ``__main__`` with ``argv`` as its
    arguments (``sys.argv[0]`` is the script, as ``runpy`` sets it: its
    usage line names the script); its exit (``SystemExit``) is the
    command's. ``prog`` (``mmrsfusion COMMAND``) names it in errors."""
    path = osp.join(TOOLS_DIR, script)
    if not osp.isfile(path):
        sys.exit(f'error: `{prog}` runs {path}, which this installation '
                 'of mmrsfusion does not have')
    sys.argv = [path] + argv
    runpy.run_path(path, run_name='__main__')


def print_configs(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(
        prog='mmrsfusion configs',
        description='List the configs a command can take by name.')
    parser.add_argument('pattern', nargs='?', default='',
                        help='only names containing this text')
    parser.add_argument('--paths', action='store_true',
                        help='print each config\'s file path')
    args = parser.parse_args(argv)
    for name in list_configs():
        if args.pattern in name:
            print(osp.join(CONFIG_DIR, name + '.py') if args.paths else name)


def main(argv: Optional[List[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(usage())
        return
    if argv[0] == '--version':
        print(__version__)
        return
    command, args = argv[0], argv[1:]
    if command in LIST:
        print_configs(args)
    elif command in COMMANDS:
        script, takes_config, _ = COMMANDS[command]
        if takes_config and args and not args[0].startswith('-'):
            try:
                args[0] = resolve_config(args[0])
            except FileNotFoundError as e:
                sys.exit(f'error: {e}')
        run_tool(script, f'mmrsfusion {command}', args)
    elif command in GROUPS:
        folder, arg, _ = GROUPS[command]
        members = group_members(folder)
        if not args or args[0] not in members:
            sys.exit(f'usage: mmrsfusion {command} {arg} [ARGS ...], with '
                     f'{arg} one of: {", ".join(members)}')
        run_tool(f'{folder}/{args[0]}.py', f'mmrsfusion {command} {args[0]}',
                 args[1:])
    else:
        sys.exit(f'error: unknown command {command!r}\n\n{usage()}')


if __name__ == '__main__':
    main()
