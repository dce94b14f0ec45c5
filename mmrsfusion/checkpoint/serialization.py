"""Load mmengine checkpoints with ``torch.load(weights_only=True)``.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, and
mmengine 0.10.x loads local files without passing it. Checkpoints written by
an mmengine ``Runner`` carry numpy arrays and scalars (in ``meta`` and in the
message hub) and mmengine's ``HistoryBuffer`` objects, which the weights-only
unpickler refuses, so ``load_from``, ``resume`` and ``init_cfg=dict(type=
'Pretrained')`` fail. Switching ``weights_only`` off would let any checkpoint
a user is handed run arbitrary code.

Importing this module (``import mmrsfusion`` does) replaces mmengine's loader
for local files (``CheckpointLoader`` scheme ``''``) with
:func:`load_from_local`, which keeps ``weights_only=True`` and allow-lists
only the types mmengine checkpoints need (:func:`checkpoint_safe_globals`).
A checkpoint that needs anything else is refused with
:class:`UnsafeCheckpointError`, before any of its code can run.

Also: saving without ever leaving a partial file
(:func:`save_checkpoint_atomically`) and the weights of a checkpoint from any
mmengine backend (:func:`load_checkpoint_file`).
"""
import inspect
import os
import os.path as osp
import pickle
import tempfile
import zipfile
from typing import Dict, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from .pickle_scan import pickle_globals

# Classes whose public methods a pickle may fetch with ``getattr``: pickle
# protocol 2 (torch.save's default) stores a function defined in a class,
# such as ``HistoryBuffer.min`` in a HistoryBuffer's state, as
# ``getattr(HistoryBuffer, 'min')``.
_GETATTR_CLASSES = (HistoryBuffer, )


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs pickle globals outside the allow-list."""


class InvalidCheckpointError(ValueError):
    """A file is not a usable checkpoint (empty, not written by
    ``torch.save``, damaged, not a dict, or not fitting the model); the
    message names the file."""


def _restricted_getattr(obj, name):
    """``getattr`` limited to public functions of :data:`_GETATTR_CLASSES`.

    Stands in for ``builtins.getattr`` while unpickling: an unrestricted
    ``getattr`` would let a pickle walk from any allowed object to arbitrary
    callables (``__globals__``, ``__builtins__``, ...).
    """
    if (obj in _GETATTR_CLASSES and isinstance(name, str)
            and not name.startswith('_')
            and inspect.isfunction(vars(obj).get(name))):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed: only public methods of '
        f'{[c.__name__ for c in _GETATTR_CLASSES]} may be fetched')


def checkpoint_safe_globals() -> List:
    """Globals that :func:`load_from_local` allows in a checkpoint's pickle.

    Beyond torch's own weights-only set (tensors, ``OrderedDict``, ...):
    numpy arrays, dtypes and scalars (also under numpy 1.x's module path
    ``numpy.core.multiarray``, as older checkpoints name them), mmengine's
    ``HistoryBuffer`` (message hub state) and a restricted ``getattr``.
    None of them runs code chosen by the file.

    Returns:
        list: Entries for ``torch.serialization.safe_globals``: objects, or
        ``(object, 'module.name')`` pairs for names that differ.
    """
    multiarray = np._core.multiarray if hasattr(np, '_core') \
        else np.core.multiarray
    dtype_classes = [
        cls for cls in vars(getattr(np, 'dtypes', np)).values()
        if isinstance(cls, type) and issubclass(cls, np.dtype)
    ]
    return [
        np.ndarray,
        np.dtype,
        *dtype_classes,
        (multiarray._reconstruct, 'numpy._core.multiarray._reconstruct'),
        (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
        (multiarray.scalar, 'numpy._core.multiarray.scalar'),
        (multiarray.scalar, 'numpy.core.multiarray.scalar'),
        HistoryBuffer,
        (_restricted_getattr, 'builtins.getattr'),
    ]


def _allowed_names() -> set:
    """``module.name`` of every global the weights-only unpickler allows
    under :func:`checkpoint_safe_globals`."""
    from torch._weights_only_unpickler import _get_allowed_globals
    names = set(_get_allowed_globals())
    for entry in checkpoint_safe_globals() + list(
            torch.serialization.get_safe_globals()):
        if isinstance(entry, tuple):
            names.add(entry[1])
        else:
            names.add(f'{entry.__module__}.{entry.__qualname__}')
    return names


def _code_referenced(filename) -> List[str]:
    """The globals outside :func:`_allowed_names` that the pickle of
    ``filename`` references (``['<not scanned>']`` for what is not a local
    file)."""
    if not isinstance(filename, (str, os.PathLike)):
        return ['<not scanned>']
    allowed = _allowed_names()
    return sorted({n for n in pickle_globals(filename) if n not in allowed})


def _unpickler_reason(message: str) -> str:
    """The weights-only unpickler's reason, without the advice torch wraps
    around it (which starts with turning ``weights_only`` off)."""
    if 'WeightsUnpickler error:' in message:
        message = message.rsplit('WeightsUnpickler error:', 1)[1]
    boilerplate = ('Weights only load failed', 'Check the documentation',
                   '(1)', '(2)')
    lines = [line.strip() for line in message.splitlines()]
    return ' '.join(
        line for line in lines
        if line and not line.startswith(boilerplate)) or message.strip()


def _damaged(filename, error: Exception) -> InvalidCheckpointError:
    return InvalidCheckpointError(
        f'Cannot read checkpoint {filename!r}: the file is damaged or '
        f'truncated ({type(error).__name__}: {error}). Was it copied or '
        'saved completely?')


def _unreadable_pickle(filename, message: str) -> Exception:
    """The error for a pickle the weights-only unpickler refused:
    :class:`UnsafeCheckpointError` when it references code outside the
    allow-list, else an :class:`InvalidCheckpointError` saying it is not a
    checkpoint (random bytes, a plain pickle of data)."""
    reason = _unpickler_reason(message)
    code = _code_referenced(filename)
    if not code:
        return InvalidCheckpointError(
            f'{filename!r} is not a checkpoint: its bytes are not a '
            'torch.save archive of tensors (the weights-only unpickler '
            f'said: {reason}); it references no code. Use the checkpoint '
            'file itself.')
    return UnsafeCheckpointError(
        f'Refused to load checkpoint {filename!r}: its pickle needs '
        'something outside the allow-list of safe types (tensors, numpy '
        'arrays/dtypes/scalars, mmengine HistoryBuffer), and unpickling it '
        f'could run arbitrary code (it references {", ".join(code)}). '
        f'Unpickler said: {reason}\nOnly if you trust where this file '
        'comes from: allow-list that type with `torch.serialization.'
        'add_safe_globals([...])` before loading, or re-save the parts you '
        "need once, e.g. `ckpt = torch.load(path, weights_only=False); "
        "torch.save({'state_dict': ckpt['state_dict']}, new_path)`.")


def load_checkpoint_safely(filename: str, map_location=None):
    """``torch.load(filename, weights_only=True)`` with mmengine's types.

    Args:
        filename (str): Path of the checkpoint file.
        map_location: As for :func:`torch.load`.

    Returns:
        The unpickled checkpoint (usually a dict).

    Raises:
        InvalidCheckpointError: When the file is empty, was not written by
            ``torch.save`` (e.g. a text file), is damaged or truncated, or
            does not hold a dict, or holds a pickle the weights-only
            unpickler cannot read that references no code (random bytes
            starting with a pickle's first byte, a pickled list).
        UnsafeCheckpointError: When the pickle needs a global outside
            :func:`checkpoint_safe_globals`; nothing of the file has run.
    """
    _check_checkpoint_file(filename)
    with torch.serialization.safe_globals(checkpoint_safe_globals()):
        try:
            checkpoint = torch.load(
                filename, map_location=map_location, weights_only=True)
        except RuntimeError as e:
            if 'Invalid magic number' in str(e):  # a pickle, not torch's
                raise _unreadable_pickle(filename, str(e)) from None
            if 'PytorchStreamReader' not in str(e):
                raise  # not the file's fault (e.g. a CUDA map_location)
            raise _damaged(filename, e) from e
        except (EOFError, zipfile.BadZipFile, OSError) as e:
            raise _damaged(filename, e) from e
        except pickle.UnpicklingError as e:
            raise _unreadable_pickle(filename, str(e)) from None
    if not isinstance(checkpoint, dict):
        raise InvalidCheckpointError(
            f'{filename!r} holds a {type(checkpoint).__name__}, not a '
            'checkpoint: expected a dict (mmengine\'s {"meta", '
            '"state_dict", ...} or a state dict of named tensors)')
    return checkpoint


def _check_checkpoint_file(filename: str) -> None:
    """Refuse, naming the file, what ``torch.save`` cannot have written:
    an empty file, or one that is neither a zip archive (torch >= 1.6) nor
    a pickle (older torch)."""
    if isinstance(filename, (str, os.PathLike)):
        if osp.getsize(filename) == 0:
            raise InvalidCheckpointError(
                f'{filename!r} is empty (0 bytes), not a checkpoint: an '
                'interrupted copy or save? Use another checkpoint.')
        with open(filename, 'rb') as f:
            head = f.read(8)
        if not head.startswith(b'PK') and not head.startswith(b'\x80'):
            raise InvalidCheckpointError(
                f'{filename!r} is not a checkpoint: it was not written by '
                f'torch.save (it starts with {head!r}, not a zip archive or '
                'a pickle)')


def load_from_local(filename: str, map_location=None):
    """Loader for local checkpoint files, registered on mmengine's
    ``CheckpointLoader`` in place of its own :func:`load_from_local`.

    Same behaviour as mmengine's (``~`` expansion, FileNotFoundError) but
    loads through :func:`load_checkpoint_safely`.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return load_checkpoint_safely(filename, map_location)


def save_checkpoint_atomically(obj, filename: str) -> None:
    """``torch.save(obj, filename)`` that never leaves a partial file: the
    data go to a temporary file in the same folder (created if needed),
    which then replaces ``filename`` in one step."""
    folder = osp.dirname(osp.abspath(filename))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(filename)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it open()'s mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, filename)
    except BaseException:
        os.unlink(tmp)
        raise


def get_state_dict(checkpoint: dict) -> Dict[str, torch.Tensor]:
    """The weights of a loaded checkpoint: its ``state_dict`` (mmengine) or
    ``model`` entry when there is one, else the dict itself (plain torch
    state dicts, as the official files are)."""
    for name in ('state_dict', 'model'):
        if isinstance(checkpoint.get(name), dict):
            return checkpoint[name]
    return checkpoint


def load_checkpoint_file(filename: str) -> Dict[str, torch.Tensor]:
    """Load a checkpoint through mmengine's ``CheckpointLoader`` (local
    paths, URLs and every backend mmengine knows) on the CPU, and return
    its weights (:func:`get_state_dict`)."""
    checkpoint = CheckpointLoader.load_checkpoint(
        str(filename), map_location='cpu')
    if not isinstance(checkpoint, dict):
        raise TypeError(f'{filename}: expected a dict checkpoint, got '
                        f'{type(checkpoint).__name__}')
    return get_state_dict(checkpoint)


# torch < 2.5 has no ``safe_globals`` (and before 2.6 loads with
# weights_only=False anyway): keep mmengine's loader there.
if hasattr(torch.serialization, 'safe_globals'):
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
