"""mmengine's optimizer constructor with a summary in place of its
per-tensor log lines."""
import logging
from collections import defaultdict
from typing import Dict, List, Tuple

import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from prettytable import PrettyTable

from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS

#: The per-tensor lines of mmengine's constructor that the summary replaces.
_PER_TENSOR = ('paramwise_options -- ', 'is skipped since its requires_grad')


class _DropPerTensorLines(logging.Filter):

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(part in message for part in _PER_TENSOR)


def frozen_summary(model: nn.Module) -> str:
    """One line: how many parameter tensors (and values, MB) are frozen
    and how many are trained."""
    frozen = [p for p in model.parameters() if not p.requires_grad]
    trained = [p for p in model.parameters() if p.requires_grad]
    size = sum(p.numel() * p.element_size() for p in frozen) / 2**20
    return (f'frozen parameters (requires_grad=False, not optimised): '
            f'{len(frozen)} tensors, {sum(p.numel() for p in frozen):,} '
            f'values ({size:.1f} MB); trained: {len(trained)} tensors, '
            f'{sum(p.numel() for p in trained):,} values')


def override_table(model: nn.Module, optimizer) -> str:
    """One row per set of options that differs from the optimizer's
    defaults (e.g. ``weight_decay=0.0`` of norms and biases): the options,
    the number of tensors and of values, and the first tensor names; empty
    when every parameter group uses the defaults."""
    names = {id(p): n for n, p in model.named_parameters()}
    rows: Dict[Tuple, List] = defaultdict(list)
    for group in optimizer.param_groups:
        options = tuple(sorted(
            (k, v) for k, v in group.items()
            if k != 'params' and k in optimizer.defaults
            and v != optimizer.defaults[k]))
        if options:
            rows[options] += group['params']
    if not rows:
        return ''
    table = PrettyTable(['options', 'tensors', 'values', 'e.g.'])
    table.align['e.g.'] = 'l'
    for options, params in rows.items():
        examples = [names.get(id(p), '?') for p in params[:2]]
        table.add_row([
            ', '.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}'
                      for k, v in options),
            len(params), f'{sum(p.numel() for p in params):,}',
            ', '.join(examples) + (', ...' if len(params) > 2 else '')
        ])
    defaults = ', '.join(f'{k}={optimizer.defaults[k]}'
                         for k in ('lr', 'weight_decay')
                         if k in optimizer.defaults)
    return (f'parameters whose options differ from the optimizer\'s '
            f'({defaults}):\n{table.get_string()}')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SummaryOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """:class:`DefaultOptimWrapperConstructor` (same parameter groups,
    same ``paramwise_cfg``) that logs one line on the frozen parameters
    (:func:`frozen_summary`) and one table of the option overrides
    (:func:`override_table`) instead of a log line per tensor.
    :class:`~mmrsfusion.engine.MultiModalRunner` uses it when the
    ``optim_wrapper`` config names no ``constructor``."""

    def __call__(self, model: nn.Module) -> OptimWrapper:
        logger = MMLogger.get_current_instance()
        quiet = _DropPerTensorLines()
        logger.addFilter(quiet)
        try:
            optim_wrapper = super().__call__(model)
        finally:
            logger.removeFilter(quiet)
        module = model.module if hasattr(model, 'module') else model
        print_log(frozen_summary(module), logger='current')
        table = override_table(module, optim_wrapper.optimizer)
        if table:
            print_log(table, logger='current')
        return optim_wrapper
