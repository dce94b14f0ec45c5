"""First-run errors: a missing file that a command of ours writes names that
command, a missing checkpoint lists what the work dir holds, and both fail
before the runner dumps the config."""
import os
import os.path as osp
import subprocess
import sys

import pytest

from mmrsfusion.engine import check_run_files
from mmrsfusion.utils import load_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs/mobanet/demo_tinyvit_synthetic.py')


def demo_cfg(tmp_path, **options):
    cfg = load_config(DEMO, options)
    cfg.work_dir = str(tmp_path / 'work')
    return cfg


def test_missing_tiny_checkpoint_names_both_commands(tmp_path):
    path = str(tmp_path / 'pretrain/dinov2_tiny_demo_converted.pth')
    cfg = demo_cfg(tmp_path, **{'model.backbone.frozen_checkpoint': path})
    with pytest.raises(FileNotFoundError) as e:
        check_run_files(cfg)
    msg = str(e.value)
    assert msg.startswith('model.backbone.frozen_checkpoint: pretrained '
                          f'weights {path} do not exist')
    assert ('mmrsfusion make-tiny-vit '
            'pretrain/dinov2_tiny_demo_pretrain.pth && mmrsfusion '
            'convert-weights dinov2 '
            f'pretrain/dinov2_tiny_demo_pretrain.pth {path}') in msg


def test_missing_data_root_names_the_generator(tmp_path):
    frozen = tmp_path / 'frozen.pth'
    frozen.write_bytes(b'')
    root = str(tmp_path / 'no_data')
    cfg = demo_cfg(
        tmp_path, **{'model.backbone.frozen_checkpoint': str(frozen),
                     'test_dataloader.dataset.data_root': root})
    with pytest.raises(FileNotFoundError,
                       match='test_dataloader.dataset.data_root .*no_data '
                       'does not exist; write it with: mmrsfusion '
                       'make-synthetic .*no_data$'):
        check_run_files(cfg, loaders=('test_dataloader', ))


def test_missing_checkpoint_lists_the_work_dir(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    for name in ('iter_300.pth', 'iter_600.pth'):
        (work / name).write_bytes(b'')
    (work / 'last_checkpoint').write_text(str(work / 'iter_600.pth'))
    cfg = demo_cfg(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        check_run_files(cfg, str(work / 'iter_50.pth'))
    msg = str(e.value)
    assert f'checkpoint {work}/iter_50.pth does not exist' in msg
    assert f'last_checkpoint -> {work}/iter_600.pth' in msg
    assert f'{work}/iter_300.pth' in msg and f'{work}/iter_600.pth' in msg


def test_test_tool_fails_before_the_config_dump(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'iter_600.pth').write_bytes(b'')
    (work / 'last_checkpoint').write_text(str(work / 'iter_600.pth'))
    out = subprocess.run(
        [sys.executable, 'tools/test.py', DEMO, str(work / 'iter_50.pth'),
         '--work-dir', str(work)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=REPO))
    assert out.returncode == 1
    assert 'iter_50.pth does not exist' in out.stderr
    assert f'last_checkpoint -> {work}/iter_600.pth' in out.stderr
    # nothing was logged or dumped: the runner was never built
    assert sorted(os.listdir(work)) == ['iter_600.pth', 'last_checkpoint']
    assert len((out.stdout + out.stderr).splitlines()) < 10
