"""tools/analysis_tools/count_params.py on the MoBaNet configs: the
reference-compatible trainable totals, exactly (paper Table IV: Base 1.91M,
+CPIA 3.99M, +DGFM 5.00M, full 6.18M; ViT-L 8.98M), and the output format:
one ``<name> trainable=<int> frozen=<int>`` line per top-level submodule,
then ``total trainable=<int> frozen=<int>``."""
import os.path as osp
import re
import runpy
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'analysis_tools', 'count_params.py')
LINE = re.compile(r'^(\S+) trainable=(\d+) frozen=(\d+)$')


def count_params(config, capsys, monkeypatch):
    """Run the script as ``python count_params.py CONFIG``; its rows."""
    monkeypatch.setattr(sys, 'argv', [SCRIPT, osp.join(ROOT, config)])
    runpy.run_path(SCRIPT, run_name='__main__')
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    rows = []
    for line in lines:
        match = LINE.match(line)
        assert match, f'unexpected line {line!r}'
        rows.append((match[1], int(match[2]), int(match[3])))
    return rows


@pytest.mark.parametrize('config,trainable,frozen', [
    ('configs/mobanet/ablation/dinov2_vitb_potsdam_base.py', 1_908_352,
     86_579_712),
    ('configs/mobanet/ablation/dinov2_vitb_potsdam_cpia.py', 3_990_400,
     86_579_712),
    ('configs/mobanet/ablation/dinov2_vitb_potsdam_cpia_dgfm.py', 4_995_712,
     86_579_712),
    ('configs/mobanet/dinov2_vitb_potsdam.py', 6_179_456, 86_579_712),
    ('configs/mobanet/dinov2_vitl_vaihingen.py', 8_981_376, 304_367_616),
])
def test_reference_totals(config, trainable, frozen, capsys, monkeypatch):
    rows = count_params(config, capsys, monkeypatch)
    total = rows[-1]
    assert total == ('total', trainable, frozen)
    parts = rows[:-1]
    assert sum(r[1] for r in parts) == trainable
    assert sum(r[2] for r in parts) == frozen
    names = [r[0] for r in parts]
    assert {'backbone', 'neck', 'decode_head'} <= set(names)
    # only the backbone holds frozen weights (the shared ViT)
    assert {r[0] for r in parts if r[2]} == {'backbone'}


def test_full_model_breakdown(capsys, monkeypatch):
    """The spec's per-part table for ViT-B: aux patch embedding 452,352 +
    CPIA x4 2,082,048 = backbone; DGFM x4 + LayerNorms + projections =
    neck; UperNet 669,568; aux heads 2 x 591,872."""
    rows = dict((r[0], r[1:]) for r in count_params(
        'configs/mobanet/dinov2_vitb_potsdam.py', capsys, monkeypatch))
    assert rows['backbone'][0] == 452_352 + 2_082_048
    assert rows['neck'][0] == 999_168 + 6_144 + 786_432
    assert rows['decode_head'][0] == 669_568
    assert rows['auxiliary_head'][0] == 1_183_744


def sgf_params(c, m=3, k=5):
    """One SGF scale: M projectors (dw 11/7/3 + pw, with biases), the
    class-aware filter C -> K, two multi-head attentions (4 C^2 + 4 C)."""
    return m * (c * 182 + c * c + c) + (c * k + k) + 2 * (4 * c * c + 4 * c)


def test_sgma_pvtv2b2_breakdown(capsys, monkeypatch):
    """SGMA, PVT-v2-b2 on Potsdam R + D + N: the shared backbone is timm's
    pvt_v2_b2 (24,849,856 = the paper's 24.85M); SGF over the four scales
    (64, 128, 320, 512 channels) 4,810,772; the SegFormer head (256
    channels, 5 classes) 528,133: 5,338,905 beyond the backbone against the
    paper's 4.79M (Table IX), SGF alone matching it to 0.02M."""
    rows = dict((r[0], r[1:]) for r in count_params(
        'configs/sgma/pvtv2b2_potsdam_rdn.py', capsys, monkeypatch))
    assert rows['backbone'] == (24_849_856, 0)
    assert rows['neck'] == (4_810_772, 0)
    assert rows['neck'][0] == sum(sgf_params(c) for c in (64, 128, 320, 512))
    head = (64 + 128 + 320 + 512) * 256 + 4 * 2 * 256 + \
        1024 * 256 + 2 * 256 + 256 * 5 + 5
    assert rows['decode_head'] == (head, 0) == (528_133, 0)
