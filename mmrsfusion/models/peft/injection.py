"""Inject PEFT wrappers into a frozen encoder in place, by name pattern.

Like peft's and mmpretrain's LoRA: every submodule whose name matches a
target pattern is replaced by a wrapper (:class:`BasePEFTWrapper`) built
around it, so the encoder's own forward runs unchanged and calls the
wrapper where it called the module. A config lists the injections::

    peft=[
        dict(type='LoRALinear', targets='layers.*.attn.qkv', rank=4,
             enable=(True, False, True)),
        dict(type='LoRALinear', targets=['layers.*.ffn.layers.0.0',
                                          'layers.*.ffn.layers.1'],
             rank=4, alpha=4, cross_modal=True),
    ]

A pattern is a module name in which ``*`` stands for one name component
(``layers.*.attn`` matches ``layers.3.attn``, not ``layers.3.x.attn``);
components may use other :mod:`fnmatch` wildcards (``layers.1?.attn``).

Module-valued arguments (a :class:`PreBlockWrapper`'s ``adapter``) are
passed by reference; everything else in a config is copied.
"""
import copy
import inspect
from fnmatch import fnmatchcase
from typing import Callable, List, Optional, Sequence

import torch.nn as nn
from mmseg.registry import MODELS

from .lora_linear import LoRALinear
from .wrapper import BasePEFTWrapper


def match_name(name: str, pattern: str) -> bool:
    """Whether module ``name`` matches ``pattern`` component-wise."""
    parts, wanted = name.split('.'), pattern.split('.')
    return len(parts) == len(wanted) and all(
        fnmatchcase(p, w) for p, w in zip(parts, wanted))


def inject_peft(root: nn.Module,
                cfgs: Sequence[dict],
                skip: Optional[Callable[[str], bool]] = None,
                **defaults) -> List[str]:
    """Wrap the submodules of ``root`` that the configs target.

    Args:
        root (nn.Module): The (frozen) module to inject into, e.g. the
            encoder; names are relative to it.
        cfgs (Sequence[dict]): Wrapper configs, each with ``type`` (a
            registered :class:`BasePEFTWrapper`), ``targets`` (a pattern or
            a list of patterns) and the wrapper's own arguments.
        skip (callable, optional): ``skip(name) -> bool``: matched modules
            to leave alone (e.g. blocks that never run).
        **defaults: Arguments given to every wrapper unless its config sets
            them (``num_modalities``; ``embed_dims`` where the wrapper
            takes it).

    Returns:
        list[str]: The wrapped module names, in injection order.

    Raises:
        ValueError: If a config has no ``targets`` or a pattern matches no
            module (naming the config and a few module names).
        TypeError: If a wrapper is not a :class:`BasePEFTWrapper`.
    """
    wrapped = []
    for i, cfg in enumerate(cfgs):
        cfg = {k: v if isinstance(v, nn.Module) else copy.deepcopy(v)
               for k, v in dict(cfg).items()}
        targets = cfg.pop('targets', None)
        if not targets:
            raise ValueError(f'peft[{i}] ({cfg.get("type")}): no targets')
        if isinstance(targets, str):
            targets = [targets]
        wrapper_cls = MODELS.get(cfg.get('type'))
        if not (isinstance(wrapper_cls, type)
                and issubclass(wrapper_cls, BasePEFTWrapper)):
            raise TypeError(f'peft[{i}]: type {cfg.get("type")!r} is not a '
                            'registered PEFT wrapper (BasePEFTWrapper)')
        accepted = inspect.signature(wrapper_cls).parameters
        names = [name for name, _ in root.named_modules() if name]
        for pattern in targets:
            matches = [
                n for n in names if match_name(n, pattern)
                and not (skip is not None and skip(n))
            ]
            if not matches:
                raise ValueError(
                    f'peft[{i}] ({cfg.get("type")}): target {pattern!r} '
                    f'matches no module of {type(root).__name__} (e.g. '
                    f'{", ".join(names[:8])}, ...)')
            for name in matches:
                parent_name, _, child = name.rpartition('.')
                parent = root.get_submodule(parent_name)
                wrapper_cfg = dict(cfg, module=getattr(parent, child))
                for key, value in defaults.items():
                    if key in accepted:
                        wrapper_cfg.setdefault(key, value)
                setattr(parent, child, MODELS.build(wrapper_cfg))
                wrapped.append(name)
    return wrapped


def peft_wrappers(model: nn.Module) -> List[BasePEFTWrapper]:
    """The PEFT wrappers in ``model``, outermost first."""
    return [m for m in model.modules() if isinstance(m, BasePEFTWrapper)]


def merge_lora(model: nn.Module) -> int:
    """Merge every non-cross-modal :class:`LoRALinear` of ``model`` for
    inference (see :meth:`LoRALinear.merge`); cross-modal ones stay as they
    are. Returns how many were merged."""
    merged = 0
    for m in peft_wrappers(model):
        if isinstance(m, LoRALinear) and not m.cross_modal:
            m.merge()
            merged += 1
    return merged


def unmerge_lora(model: nn.Module) -> None:
    """Undo :func:`merge_lora`."""
    for m in peft_wrappers(model):
        if isinstance(m, LoRALinear):
            m.unmerge()
