"""The optimizer constructor of MultiModalRunner: one line on frozen
parameters and one table of option overrides instead of a log line per
tensor; the same parameter groups as mmengine's default."""
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor

from mmrsfusion.engine.optimizers import SummaryOptimWrapperConstructor

CFG = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01))
PARAMWISE = dict(norm_decay_mult=0.0, bias_decay_mult=0.0)


def model():
    net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    for p in net[0].parameters():  # a frozen "backbone"
        p.requires_grad = False
    return net


def test_summary_replaces_per_tensor_lines(capsys):
    MMLogger.get_instance('summary_constructor_test')
    net = model()
    wrapper = SummaryOptimWrapperConstructor(CFG, PARAMWISE)(net)
    lines = capsys.readouterr().out.splitlines()
    assert not any('requires_grad=False' in line and 'skipped' in line
                   for line in lines)
    assert not any('paramwise_options' in line for line in lines)
    frozen = [line for line in lines if 'frozen parameters' in line]
    assert len(frozen) == 1
    assert '2 tensors, 40 values' in frozen[0]
    assert 'trained: 4 tensors, 34 values' in frozen[0]
    text = '\n'.join(lines)
    # norm weight / bias and the last bias: no weight decay, one row
    row = [line for line in lines if line.startswith('| weight_decay=0')]
    assert len(row) == 1 and '|    3    |' in row[0] and '1.weight' in row[0]
    assert "optimizer's (lr=0.001, weight_decay=0.01)" in text
    # same groups as mmengine's constructor
    ref = DefaultOptimWrapperConstructor(CFG, PARAMWISE)(model())
    assert [{k: v for k, v in g.items() if k != 'params'}
            for g in wrapper.optimizer.param_groups] == \
        [{k: v for k, v in g.items() if k != 'params'}
         for g in ref.optimizer.param_groups]
    # the filter is removed afterwards
    assert not MMLogger.get_current_instance().filters
