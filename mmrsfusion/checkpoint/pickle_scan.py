"""Which globals a checkpoint's pickle references, read from its opcodes
(nothing is unpickled): tells a file that really asks for code apart from
one that is merely not a checkpoint (random bytes, a plain pickled list)."""
import io
import pickletools
import zipfile
from typing import List

#: Opcodes that push a string (the module / name operands of STACK_GLOBAL).
_STRING_OPS = {
    'SHORT_BINUNICODE', 'BINUNICODE', 'BINUNICODE8', 'UNICODE', 'STRING',
    'BINSTRING', 'SHORT_BINSTRING'
}


def _globals_of(stream) -> List[str]:
    """``module.name`` of every GLOBAL / INST / STACK_GLOBAL in the pickles
    of ``stream``, one after the other, up to the end or the first bytes
    that are not a pickle (the raw storages of torch's legacy format)."""
    found: List[str] = []
    while True:
        strings: List[str] = []
        memo = {}
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name in _STRING_OPS:
                    strings.append(str(arg))
                elif op.name in ('GLOBAL', 'INST'):
                    found.append(str(arg).replace(' ', '.'))
                elif op.name == 'STACK_GLOBAL':
                    found.append('.'.join(strings[-2:]) if len(strings) >= 2
                                 else '<unknown>')
                elif op.name in ('PUT', 'BINPUT', 'LONG_BINPUT', 'MEMOIZE'):
                    memo[len(memo) if arg is None else arg] = \
                        strings[-1] if strings else None
                elif op.name in ('GET', 'BINGET', 'LONG_BINGET') and \
                        memo.get(arg) is not None:
                    strings.append(memo[arg])
        except Exception:  # not (or no more) pickle data
            return found
        if not stream.read(1):
            return found
        stream.seek(-1, io.SEEK_CUR)


def pickle_globals(filename: str) -> List[str]:
    """The globals (``module.name``) referenced by the pickle of the file
    ``filename``: a ``torch.save`` zip archive's ``data.pkl``, else the
    file itself read as consecutive pickles. Empty for a file that holds no
    readable pickle."""
    if zipfile.is_zipfile(filename):
        try:
            with zipfile.ZipFile(filename) as zf:
                names = [n for n in zf.namelist()
                         if n.endswith('/data.pkl') or n == 'data.pkl']
                data = zf.read(names[0]) if names else b''
        except (OSError, zipfile.BadZipFile, KeyError, EOFError):
            return []
        return _globals_of(io.BytesIO(data))
    with open(filename, 'rb') as f:
        return _globals_of(f)
