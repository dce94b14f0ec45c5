"""Schedules that follow a changed ``train_cfg.max_iters``."""
from typing import List, Optional

#: Iteration counts of a scheduler scaled with the training length.
_LENGTH_KEYS = ('begin', 'end', 'T_max')


def follow_max_iters(cfg) -> Optional[str]:
    """Rescale an iteration-based schedule to ``train_cfg.max_iters``, in
    place, when that was changed (``--cfg-options train_cfg.max_iters=50``)
    from the config's top-level ``max_iters`` that the schedule was written
    for.

    The schedule is scaled only when it is one written from ``max_iters``:
    every ``param_scheduler`` has ``by_epoch=False``, the last ``end`` is
    the top-level ``max_iters``, and every phase keeps at least one
    iteration. Then each scheduler's ``begin``, ``end``,
    ``T_max`` and ``milestones`` are multiplied by ``new / old`` (rounded;
    a 60-iteration warm-up of 600 iterations becomes 5 of 50), and
    ``train_cfg.val_interval`` and ``default_hooks.checkpoint.interval``
    equal to the old length become the new one (a validation and a
    checkpoint at the end, as before).

    Returns:
        str | None: What was changed, for the log; None if nothing.
    """
    train_cfg = cfg.get('train_cfg') or {}
    old, new = cfg.get('max_iters'), train_cfg.get('max_iters')
    schedulers = cfg.get('param_scheduler')
    if old is None or new is None or old == new or not schedulers:
        return None
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    ends = [s.get('end') for s in schedulers]
    if any(s.get('by_epoch', True) for s in schedulers) or \
            None in ends or max(ends) != old:
        return None
    ratio = new / old
    scaled = [(round(s.get('begin', 0) * ratio), round(s['end'] * ratio))
              for s in schedulers]
    if any(end <= begin for begin, end in scaled):
        return None  # too short to keep every phase: the schedule as written
    changes: List[str] = []
    for scheduler in schedulers:
        before = {k: scheduler[k] for k in _LENGTH_KEYS + ('milestones', )
                  if k in scheduler}
        for key in _LENGTH_KEYS:
            if key in scheduler:
                scheduler[key] = max(round(scheduler[key] * ratio),
                                     1 if key == 'T_max' else 0)
        if 'milestones' in scheduler:
            scheduler['milestones'] = [
                round(m * ratio) for m in scheduler['milestones']]
        changes.append(f"{scheduler['type']} "
                       + ', '.join(f'{k} {v} -> {scheduler[k]}'
                                   for k, v in before.items()))
    if train_cfg.get('val_interval') == old:
        train_cfg['val_interval'] = new
        changes.append(f'train_cfg.val_interval {old} -> {new}')
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    if checkpoint.get('interval') == old:
        checkpoint['interval'] = new
        changes.append(f'default_hooks.checkpoint.interval {old} -> {new}')
    return (f'train_cfg.max_iters={new} instead of the {old} the schedule '
            f'was written for: ' + '; '.join(changes))
