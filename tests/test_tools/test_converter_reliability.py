"""The converter's output as the training pipeline sees it, and the
converter's handling of its folders: raw ISPRS files -> converter ->
dataset -> loaded values; permissions, progress output, stale folders."""
import itertools
import os
import os.path as osp
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
from mmengine.registry import init_default_scope

from test_dataset_converters import CONVERTERS, REPO, synth, vaihingen

from mmrsfusion.datasets import VaihingenMMDataset, isprs_raw
from mmrsfusion.utils import progress as progress_module

pytestmark = [
    pytest.mark.filterwarnings('ignore:.*not found under RAW_PATH'),
    pytest.mark.filterwarnings('ignore:Labels of .* off-palette pixels'),
]

GDAL_NODATA = 42113


def _dsm_file(path, heights, nodata_tag=None):
    tags = [] if nodata_tag is None else \
        [(GDAL_NODATA, 's', 0, nodata_tag, True)]
    tifffile.imwrite(path, heights, photometric='minisblack', extratags=tags)


def _raw_with_dsm_nodata(raw, kind):
    """Vaihingen areas 1 (train) and 2 (test), extracted, with DSMs whose
    no-data is ``kind``: -9999, NaN or a value declared only by the
    GDAL_NODATA tag (-32768). The top-left 32 x 32 block is no-data, so
    that one clip of area1 is no-data only. Returns the raw DSMs and their
    no-data masks."""
    synth.make_vaihingen_raw(str(raw), areas=(1, 2), as_zip=False)
    value = dict(minus9999=-9999., nan=np.nan, tag_only=-32768.)[kind]
    out = {}
    for n in (1, 2):
        h, w = synth.VAIHINGEN_SIZES[n]
        rng = np.random.default_rng(n)
        heights = (260 + 30 * rng.random((h, w))).astype(np.float32)
        nodata = np.zeros((h, w), bool)
        nodata[:32, :32] = True
        nodata[-1, -1] = True
        heights[nodata] = value
        _dsm_file(
            raw / synth.VAIHINGEN_IMAGES / 'dsm' /
            f'dsm_09cm_matching_area{n}.tif', heights,
            '-32768' if kind == 'tag_only' else None)
        out[f'area{n}'] = (heights, nodata)
    return out


def _loaded_dsm(out, split):
    """{stem: normalised DSM channel} as the training pipeline loads it."""
    init_default_scope('mmseg')
    ds = VaihingenMMDataset(
        data_root=str(out),
        data_prefix=dict(img_path=f'img_dir/{split}',
                         dsm_path=f'dsm_dir/{split}',
                         seg_map_path=f'ann_dir/{split}'),
        pipeline=[
            dict(type='LoadMultiModalImageFromFiles',
                 modalities=[dict(name='irrg', channels=3, kind='optical'),
                             dict(name='dsm', channels=1,
                                  kind='elevation')])
        ])
    return {
        osp.splitext(osp.basename(r['img_path']))[0]: r['img'][..., 3]
        for r in (ds[i] for i in range(len(ds)))
    }


@pytest.mark.parametrize('clip', [None, 32])
@pytest.mark.parametrize('kind', ['minus9999', 'nan', 'tag_only'])
def test_dsm_nodata_survives_the_whole_chain(tmp_path, kind, clip):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    dsms = _raw_with_dsm_nodata(raw, kind)
    with pytest.warns(UserWarning, match='not found under RAW_PATH'):
        isprs_raw.convert(vaihingen.build_spec(), str(raw), str(out),
                          clip_size=clip, optical_bands=3, progress=False)
    for tile, split in [('area1', 'train'), ('area2', 'test')]:
        heights, nodata = dsms[tile]
        valid = heights[~nodata]
        want = np.where(nodata, 0,
                        (heights - valid.min()) / (valid.max() - valid.min()))
        whole = np.full(heights.shape, np.nan, np.float32)
        loaded = _loaded_dsm(out, split)
        for stem, dsm in loaded.items():
            if not stem.startswith(tile):
                continue
            x0, y0, x1, y1 = (0, 0, heights.shape[1], heights.shape[0]) \
                if clip is None else map(int, stem.split('_')[1:])
            np.testing.assert_allclose(dsm, want[y0:y1, x0:x1], atol=1e-6,
                                       err_msg=stem)
            whole[y0:y1, x0:x1] = dsm
        # no-data is 0; the valid heights span [0, 1] over the tile
        assert not np.isnan(whole).any()
        assert (whole[nodata] == 0).all()
        assert whole[~nodata].min() == 0 and whole[~nodata].max() == 1
    if clip is not None:  # the no-data-only clip loads as zeros
        nodata_clip = _loaded_dsm(out, 'train')['area1_0_0_32_32']
        assert nodata_clip.shape == (32, 32) and not nodata_clip.any()


def test_new_out_dir_follows_the_umask(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'new' / 'out'
    synth.make_vaihingen_raw(str(raw), areas=(1, ))
    old = os.umask(0o022)
    try:
        with pytest.warns(UserWarning, match='not found under RAW_PATH'):
            isprs_raw.convert(vaihingen.build_spec(), str(raw), str(out),
                              progress=False)
    finally:
        os.umask(old)
    for path in (out, out / 'img_dir', out / 'img_dir' / 'train'):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o755, path


def _cli(script, *args, **kwargs):
    return subprocess.run(
        [sys.executable, osp.join(CONVERTERS, script), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, PYTHONPATH=REPO), **kwargs)


@pytest.fixture
def slow_clock(monkeypatch):
    """Every reading of the progress clock is 60 s after the previous one:
    a progress line at each step, whatever the machine's speed."""
    ticks = itertools.count(step=60)
    monkeypatch.setattr(progress_module, 'clock', lambda: float(next(ticks)))


def _piped(monkeypatch, path):
    """stdout and stderr of the running process into one file, as
    ``converter > log 2>&1``."""
    log = open(path, 'w')
    monkeypatch.setattr(sys, 'stdout', log)
    monkeypatch.setattr(sys, 'stderr', log)
    return log


def test_converter_piped_to_a_file_reports_progress(tmp_path, monkeypatch,
                                                    slow_clock):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_vaihingen_raw(str(raw), areas=(1, 2, 3))
    with _piped(monkeypatch, tmp_path / 'log'):
        assert vaihingen.main([str(raw), '-o', str(out), '--nproc', '1']) \
            == 0
    lines = (tmp_path / 'log').read_text().splitlines()
    progress = [line for line in lines if line.startswith('tiles ')]
    # one line per tile (a minute each), done / total and an ETA
    assert progress[:3] == [
        'tiles 1/3 (33%), 1 min 00 s elapsed, ETA 2 min 00 s',
        'tiles 2/3 (67%), 2 min 00 s elapsed, ETA 1 min 00 s',
        'tiles 3/3 (100%), 3 min 00 s elapsed',
    ]
    assert not any('\r' in line for line in lines)


def test_error_starts_its_own_line_after_the_progress_lines(
        tmp_path, monkeypatch, slow_clock):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    # area3 (converted after area1) has a DSM of another size
    synth.make_vaihingen_raw(str(raw), areas=(1, 3), dsm_shapes={3: (9, 9)})
    with _piped(monkeypatch, tmp_path / 'log'):
        assert vaihingen.main([str(raw), '-o', str(out), '--nproc', '1']) \
            == 1
    lines = (tmp_path / 'log').read_text().splitlines()
    errors = [line for line in lines if 'size mismatch' in line]
    assert errors and errors[0].startswith('error: Tile area3'), lines
    assert any(line.startswith('tiles 1/2') for line in lines)


def test_overwrite_with_other_elevation_removes_the_old_one(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_potsdam_raw(str(raw), tiles=('2_10', ))
    for elevation in ('ndsm', 'dsm'):
        res = _cli('potsdam.py', raw, '-o', out, '--elevation', elevation,
                   '--overwrite')
        assert res.returncode == 0, res.stdout
        assert (out / f'{elevation}_dir' / 'train' / '2_10.tif').exists()
    assert not (out / 'ndsm_dir').exists()
    assert sorted(os.listdir(out)) == [
        'ann_dir', 'ann_eroded_dir', 'conversion.json', 'dsm_dir', 'img_dir'
    ]


def test_uint16_optical_and_all_nodata_dsm_are_reported(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_vaihingen_raw(str(raw), areas=(1, 2), as_zip=False)
    top = raw / synth.VAIHINGEN_IMAGES / 'top' / 'top_mosaic_09cm_area1.tif'
    img = tifffile.imread(top).astype(np.uint16) * 8
    tifffile.imwrite(top, img, photometric='rgb')
    dsm = raw / synth.VAIHINGEN_IMAGES / 'dsm' / 'dsm_09cm_matching_area2.tif'
    _dsm_file(dsm, np.full(synth.VAIHINGEN_SIZES[2], -9999., np.float32))
    with pytest.warns(UserWarning) as record:
        report = isprs_raw.convert(vaihingen.build_spec(), str(raw),
                                   str(out), optical_bands=3, progress=False)
    text = '\n'.join(str(w.message) for w in record)
    assert ('1 optical images are uint16, not uint8 (largest value '
            f'{img.max()}; tiles area1)') in text
    assert 'mean/std' in text
    assert 'The DSM of 1 tiles has no valid value (all no-data): area2' \
        in text
    assert report.tiles['area1']['img_dtype'] == 'uint16'
    # written unchanged
    np.testing.assert_array_equal(
        tifffile.imread(out / 'img_dir' / 'train' / 'area1.tif'), img)


def test_sigkill_leaves_nothing_for_long(tmp_path):
    """A conversion killed with SIGKILL leaves its staging and scratch
    folders; the next conversion removes them (not those of a live
    process) and succeeds."""
    raw, out, tmp = tmp_path / 'raw', tmp_path / 'out', tmp_path / 'tmp'
    synth.make_vaihingen_raw(str(raw), areas=(1, 2))
    tmp.mkdir()
    # a conversion that hangs in its first tile, killed there
    code = (
        'import sys, time\n'
        'import mmrsfusion.datasets.isprs_raw.convert\n'
        # the module itself: the package's `convert` is the function
        "c = sys.modules['mmrsfusion.datasets.isprs_raw.convert']\n"
        'c.convert_tile = lambda job: time.sleep(600)\n'
        f'sys.path.insert(0, {CONVERTERS!r})\n'
        'import vaihingen\n'
        f'vaihingen.main([{str(raw)!r}, "-o", {str(out)!r}, "--tmp-dir", '
        f'{str(tmp)!r}])\n')
    proc = subprocess.Popen([sys.executable, '-c', code],
                            env=dict(os.environ, PYTHONPATH=REPO))
    deadline = time.time() + 120
    while not [n for n in os.listdir(tmp_path) if '.converting-' in n]:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stale = [n for n in os.listdir(tmp_path) if '.converting-' in n]
    assert stale and os.listdir(tmp)  # what SIGKILL leaves behind
    # a live process's folders are not touched
    live = tmp / f'isprs-raw-{os.uname().nodename}-{os.getppid()}-x'
    live.mkdir()
    with pytest.warns(UserWarning, match='not found under RAW_PATH'):
        isprs_raw.convert(vaihingen.build_spec(), str(raw), str(out),
                          tmp_dir=str(tmp), progress=False)
    assert [n for n in os.listdir(tmp_path) if '.converting-' in n] == []
    assert os.listdir(tmp) == [live.name]
    assert (out / 'img_dir' / 'train' / 'area1.tif').exists()


def test_damaged_zip_member_is_named(tmp_path):
    """A member whose deflate stream is damaged (zlib.error inside
    zipfile) stops the conversion naming the archive and the member."""
    import zipfile
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_vaihingen_raw(str(raw), areas=(1, ))
    archive = raw / (synth.VAIHINGEN_IMAGES + '.zip')
    member = 'dsm/dsm_09cm_matching_area1.tif'
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(member)
    data = bytearray(archive.read_bytes())
    # the member's data follow its 30-byte local header, name and extra
    start = info.header_offset + 30 + len(info.filename.encode()) + \
        int.from_bytes(data[info.header_offset + 28:info.header_offset + 30],
                       'little')
    data[start + 10:start + 60] = b'\xff' * 50
    archive.write_bytes(bytes(data))
    with pytest.raises(isprs_raw.ConversionError) as err:
        isprs_raw.convert(vaihingen.build_spec(), str(raw), str(out),
                          progress=False)
    msg = str(err.value)
    assert msg.startswith(f'Cannot read {archive}!{member}: ')
    assert 'damaged: re-download it' in msg
    assert not out.exists()


def test_written_files_are_read_back(tmp_path, monkeypatch):
    """Every file the converter writes is read back
    (mmrsfusion.io.verify_written): one cut short on the way is named and
    nothing is left in OUT_DIR."""
    from mmrsfusion.datasets.isprs_raw import tiles
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    synth.make_vaihingen_raw(str(raw), areas=(1, ))
    write = tiles.write_tiff

    def cut_dsm(path, arr, nodata=None):
        write(path, arr, nodata)
        if '/dsm_dir/' in path:
            data = open(path, 'rb').read()
            with open(path, 'wb') as f:
                f.write(data[:len(data) // 2])

    monkeypatch.setattr(tiles, 'write_tiff', cut_dsm)
    with pytest.raises(isprs_raw.ConversionError,
                       match=r'Tile area1: .*/dsm_dir/train/area1\.tif: '
                       'written but cannot be read back'):
        isprs_raw.convert(vaihingen.build_spec(), str(raw), str(out),
                          progress=False)
    assert sorted(os.listdir(tmp_path)) == ['raw']
