"""A changed train_cfg.max_iters rescales the schedule written for the
config's max_iters (warm-up and cosine of the demo), and leaves other
schedules alone."""
import os.path as osp

from mmrsfusion.engine.schedule_length import follow_max_iters
from mmrsfusion.utils import load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'mobanet', 'demo_tinyvit_synthetic.py')


def test_demo_schedule_follows_max_iters():
    cfg = load_config(DEMO, {'train_cfg.max_iters': 50})
    assert cfg.max_iters == 600  # what the schedule was written for
    message = follow_max_iters(cfg)
    warmup, cosine = cfg.param_scheduler
    assert (warmup.begin, warmup.end) == (0, 5)
    assert (cosine.begin, cosine.end, cosine.T_max) == (5, 50, 45)
    assert cfg.train_cfg.val_interval == 50
    assert cfg.default_hooks.checkpoint.interval == 50
    assert 'train_cfg.max_iters=50 instead of the 600' in message
    assert 'CosineAnnealingLR begin 60 -> 5, end 600 -> 50' in message


def test_unchanged_or_other_schedules_are_left_alone():
    cfg = load_config(DEMO)
    assert follow_max_iters(cfg) is None
    # the schedule ends before max_iters: not written from it
    cfg = load_config(DEMO, {'train_cfg.max_iters': 50,
                             'param_scheduler.1.end': 500})
    assert follow_max_iters(cfg) is None
    assert cfg.param_scheduler[0].end == 60
    # a top-level max_iters set on the command line changes nothing
    cfg = load_config(DEMO, {'max_iters': 50})
    assert follow_max_iters(cfg) is None
    assert cfg.param_scheduler[1].end == 600


def test_runner_applies_it(tmp_path):
    from mmrsfusion.engine import MultiModalRunner
    cfg = load_config(DEMO, {'train_cfg.max_iters': 50})
    cfg.work_dir = str(tmp_path)
    cfg.model.backbone.frozen_checkpoint = None
    runner = MultiModalRunner.from_cfg(cfg)
    assert runner.cfg.param_scheduler[1].end == 50
