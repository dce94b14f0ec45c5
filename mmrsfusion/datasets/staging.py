"""Writing a converted dataset atomically: a hidden staging folder next to
the output, named after this host and process so that the next conversion
removes those a killed one (SIGKILL) left, moved into place in one step
when everything is written. Shared by every converter (ISPRS, DFC2023)."""
import os
import os.path as osp
import re
import shutil
import socket
import tempfile
from typing import Sequence


def owned_prefix(kind: str) -> str:
    """Prefix of the scratch / staging folders of this process: naming the
    host and process lets a later run remove those of a killed one."""
    return f'{kind}{socket.gethostname()}-{os.getpid()}-'


def remove_stale(folder: str, kind: str) -> None:
    """Remove the folders ``{kind}{this host}-{pid}-*`` in ``folder`` whose
    process is gone (left by a conversion killed with SIGKILL)."""
    mine = f'{kind}{socket.gethostname()}-'
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        m = re.match(r'(\d+)-', name[len(mine):])
        if not name.startswith(mine) or m is None:
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except OSError:
            continue  # another user's process: leave it
        print(f'Removing {osp.join(folder, name)}, left by a conversion '
              'that was killed')
        shutil.rmtree(osp.join(folder, name), ignore_errors=True)


def commit(staging: str, out_dir: str, stale: Sequence[str] = ()) -> None:
    """Move the staged layout into ``out_dir`` and remove its ``stale``
    entries (folders of an earlier conversion that this one does not
    write); rolls back on failure."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp made it private (0700)
    if not osp.lexists(out_dir):
        os.rename(staging, out_dir)
        return
    backup = tempfile.mkdtemp(prefix=osp.basename(staging) + '.old-',
                              dir=osp.dirname(staging))
    moved_old, moved_new = [], []
    try:
        for entry in stale:
            os.rename(osp.join(out_dir, entry), osp.join(backup, entry))
            moved_old.append(entry)
        for entry in sorted(os.listdir(staging)):
            dst = osp.join(out_dir, entry)
            if osp.lexists(dst):
                os.rename(dst, osp.join(backup, entry))
                moved_old.append(entry)
            os.rename(osp.join(staging, entry), dst)
            moved_new.append(entry)
    except BaseException:
        for entry in reversed(moved_new):
            os.rename(osp.join(out_dir, entry), osp.join(staging, entry))
        for entry in reversed(moved_old):
            os.rename(osp.join(backup, entry), osp.join(out_dir, entry))
        raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)  # now empty
