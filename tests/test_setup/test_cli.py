"""The ``mmrsfusion`` command and the package's ``.mim`` folder, in the
checkout (the installed product: test_wheel_install.py)."""
import os
import os.path as osp
import sys

import pytest
from mmengine.config import Config

from mmrsfusion import cli
from mmrsfusion.utils import list_configs, load_config, resolve_config
from mmrsfusion.utils.installed_configs import CONFIG_DIR, MIM_DIR, TOOLS_DIR
from mmseg.registry import VISUALIZERS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = 'mobanet/demo_tinyvit_synthetic'
#: Commands whose tool another change adds (absent here: their test skips).
LATER = {'download': 'tools/misc/download_weights.py'}


def test_mim_folder_is_the_checkout_in_a_checkout():
    # committed symlinks: a checkout (and an editable install) reads the
    # live configs and tools; setup.py puts copies into wheels
    for name in ('configs', 'tools', 'model-index.yml'):
        path = osp.join(MIM_DIR, name)
        assert osp.islink(path), path
        assert osp.samefile(path, osp.join(ROOT, name))


def test_list_configs_names_runnable_configs_only():
    names = list_configs()
    assert DEMO in names and 'sgma/pvtv2b2_deliver_rdel' in names
    assert not [n for n in names if '_base_' in n]
    expected = sum(
        1 for dirpath, _, files in os.walk(osp.join(ROOT, 'configs'))
        if '_base_' not in dirpath.split(os.sep) for f in files
        if f.endswith('.py'))
    assert len(names) == expected


@pytest.mark.parametrize('name', [
    DEMO, DEMO + '.py', 'configs/' + DEMO, f'mmrsfusion::{DEMO}.py'])
def test_resolve_config_by_name(name):
    assert osp.samefile(resolve_config(name),
                        osp.join(ROOT, 'configs', DEMO + '.py'))


def test_resolve_config_keeps_a_file_and_names_close_configs(tmp_path):
    mine = tmp_path / 'mine.py'
    mine.write_text('x = 1\n')
    assert resolve_config(str(mine)) == str(mine)
    with pytest.raises(FileNotFoundError) as info:
        resolve_config('mobanet/demo_tinyvit_synthetc')
    assert 'mobanet/demo_tinyvit_synthetc.py' in str(info.value)
    assert f'Did you mean: {DEMO}' in str(info.value)


def test_mmrsfusion_base_reference_builds_in_the_mmseg_scope(tmp_path):
    """``_base_ = 'mmrsfusion::...'`` gives the installed config, with no
    ``_scope_`` tag (mmengine's would send the builds to its root
    registries, where the visualizer is not)."""
    mine = tmp_path / 'mine.py'
    mine.write_text(f"_base_ = 'mmrsfusion::{DEMO}.py'\n"
                    'train_dataloader = dict(batch_size=2)\n')
    cfg = load_config(str(mine))
    ref = load_config(osp.join(ROOT, 'configs', DEMO + '.py'))
    assert cfg.model.to_dict() == ref.model.to_dict()
    assert '_scope_' not in cfg.model and '_scope_' not in cfg.visualizer
    assert cfg.train_dataloader.batch_size == 2
    cfg.visualizer.save_dir = str(tmp_path)
    assert type(VISUALIZERS.build(cfg.visualizer)).__name__ == \
        'MultiModalSegLocalVisualizer'
    (tmp_path / 'bad.py').write_text(
        "_base_ = 'mmrsfusion::mobanet/nope.py'\n")
    with pytest.raises(FileNotFoundError, match='mobanet/nope.py'):
        Config.fromfile(str(tmp_path / 'bad.py'))


@pytest.mark.parametrize('command', sorted(cli.COMMANDS))
def test_every_command_has_its_tool(command):
    script = cli.COMMANDS[command][0]
    if command in LATER and not osp.isfile(osp.join(TOOLS_DIR, script)):
        pytest.skip(f'{LATER[command]} comes with another change')
    assert osp.isfile(osp.join(TOOLS_DIR, script))


def test_groups_list_their_tools():
    assert {'potsdam', 'vaihingen', 'deliver', 'dfc2023', 'retile'} <= set(
        cli.group_members('dataset_converters'))
    assert cli.group_members('model_converters') == ['dinov2', 'sam']


@pytest.fixture
def calls(monkeypatch):
    """The tool runs ``cli.main`` makes, instead of running them."""
    made = []
    monkeypatch.setattr(cli, 'run_tool',
                        lambda *args: made.append(args))
    return made


def test_a_config_name_is_resolved_before_the_tool_runs(calls):
    cli.main(['train', DEMO, '--work-dir', 'w'])
    script, prog, args = calls[-1]
    assert (script, prog) == ('train.py', 'mmrsfusion train')
    assert osp.samefile(args[0], osp.join(CONFIG_DIR, DEMO + '.py'))
    assert args[1:] == ['--work-dir', 'w']
    cli.main(['convert', 'potsdam', 'raw', '-o', 'out'])
    assert calls[-1] == ('dataset_converters/potsdam.py',
                         'mmrsfusion convert potsdam', ['raw', '-o', 'out'])
    cli.main(['make-synthetic', 'mobanet'])  # no config: left as given
    assert calls[-1][2] == ['mobanet']


@pytest.mark.parametrize('argv, message', [
    (['trian'], "unknown command 'trian'"),
    (['convert', 'isprs'], 'DATASET one of: deliver, dfc2023'),
    (['test', 'mobanet/nope', 'ckpt.pth'], 'no config mobanet/nope.py'),
])
def test_wrong_commands_are_named(calls, argv, message):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert message in str(info.value.code)
    assert not calls


def test_help_and_configs_print(capsys):
    cli.main([])
    out = capsys.readouterr().out
    for command in [*cli.COMMANDS, *cli.GROUPS, 'configs']:
        assert f'  {command} ' in out
    cli.main(['configs', 'demo_tinyvit', '--paths'])
    lines = capsys.readouterr().out.split()
    assert osp.join(CONFIG_DIR, DEMO + '.py') in lines
    assert all('demo_tinyvit' in line for line in lines)


def test_tool_runs_as_main(capsys, monkeypatch):
    monkeypatch.setattr(sys, 'argv', list(sys.argv))  # run_tool sets it
    with pytest.raises(SystemExit) as info:
        cli.main(['make-synthetic', '--help'])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(
        'usage: make_synthetic_dataset.py')


def _hints():
    """Every command our errors and warnings tell users to run."""
    from mmrsfusion.datasets.multimodal_dataset import MultiModalSegDataset
    from mmrsfusion.datasets.transforms.windowed_loading import RETILE_HINT
    from mmrsfusion.engine.preflight import PRETRAIN_COMMANDS
    from mmseg.registry import DATASETS
    hints = [RETILE_HINT] + [c for _, c in PRETRAIN_COMMANDS]
    for name in sorted(DATASETS.module_dict):
        dataset = DATASETS.get(name)
        if isinstance(dataset, type) and issubclass(
                dataset, MultiModalSegDataset) and dataset.MAKE_COMMAND:
            hints.append(dataset.MAKE_COMMAND)
    return [part.strip() for hint in hints for part in hint.split('&&')]


def test_the_commands_our_messages_name_exist(calls):
    """Hints say ``mmrsfusion ...`` (an install has no ``tools/``), and
    each names a command and tool that exist."""
    hints = _hints()
    assert len(hints) >= 9
    for hint in hints:
        argv = hint.split(' (')[0].format('b', path='p', root='r').split()
        assert argv[0] == 'mmrsfusion', hint
        cli.main(argv[1:])
        script = calls[-1][0]
        assert osp.isfile(osp.join(TOOLS_DIR, script)), hint
