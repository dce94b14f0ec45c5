"""tools/analysis_tools/scene_memory.py: builds its sparse scenes, measures
a SceneDataset in a fresh process per scene and prints one line each."""
import os.path as osp
import re
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis_tools', 'scene_memory.py')


def test_lines_per_scene_and_bounded_tables(tmp_path):
    out = subprocess.run(
        [sys.executable, TOOL, '--work-dir', str(tmp_path), '--sizes',
         '1024', '8192', '--crop', '64', '--samples', '5'],
        capture_output=True, text=True, check=True).stdout
    held = {}
    for side in (1024, 8192):
        m = re.search(
            rf'scene {side}x{side} crop 64: build [\d.]+ s, 5 windows '
            rf'[\d.]+ s, numpy arrays held ([\d.]+) MiB, peak RSS rise: '
            rf'built \d+ MiB, read \d+ MiB \((.+)\)', out)
        assert m, out
        held[side] = float(m.group(1))
        assert m.group(2).startswith(osp.join(ROOT, 'mmrsfusion')) or \
            'site-packages' in m.group(2)
        assert osp.isfile(tmp_path / f'scene_{side}' / 'scenes.csv')
    # 64x the area, the sampling table at its cap (8 MiB) either way
    assert held[8192] <= 8.1 and held[8192] < 1.1 * held[1024] + 0.1
