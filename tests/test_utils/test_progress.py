"""Progress lines: bounded in a file, redrawn in a terminal, silent for a
short loop; done/total and an ETA on each line."""
import io
import itertools
import re

import pytest

from mmrsfusion.utils import Progress, progress as progress_module


@pytest.fixture
def fake_clock(monkeypatch):
    """Every reading of the clock is 1 s after the previous one."""
    ticks = itertools.count()
    monkeypatch.setattr(progress_module, 'clock', lambda: float(next(ticks)))


class Terminal(io.StringIO):

    def isatty(self):
        return True


def test_file_gets_a_line_every_interval(fake_clock):
    out = io.StringIO()
    progress = Progress(1000, 'windows', file=out)  # 10 s between lines
    for _ in range(1000):
        progress.update()
    progress.close()
    lines = out.getvalue().splitlines()
    # one update per second of the fake clock: 1000 s / 10 s
    assert 90 <= len(lines) <= 101
    assert re.fullmatch(r'windows 10/1000 \(1%\), 10 s elapsed, '
                        r'ETA 16 min 30 s', lines[0]), lines[0]
    assert all('ETA' in line for line in lines[:-1])
    assert lines[-1].startswith('windows 1000/1000 (100%)')
    assert 'ETA' not in lines[-1]


def test_short_loop_is_silent(fake_clock):
    out = io.StringIO()
    progress = Progress(5, 'tiles', file=out)
    for _ in range(5):
        progress.update()
    progress.close()
    assert out.getvalue() == ''


def test_terminal_line_is_redrawn(fake_clock):
    out = Terminal()
    progress = Progress(10, 'tiles', file=out)
    for _ in range(10):
        progress.update()
    progress.close()
    text = out.getvalue()
    assert text.count('\n') == 1 and text.endswith('tiles 10/10 (100%), '
                                                   '10 s elapsed\n')
    assert text.count('\r') == 10  # 0.5 s between lines, 1 s per update
