"""tools/misc/download_weights.py end to end against a local HTTP server on
127.0.0.1 serving tiny checkpoints with the official key names (registry
entries injected for the test): download, verify, convert to the path the
configs load; refusals leave nothing behind; offline, the error names the
URL and the manual commands."""
import hashlib
import importlib.util
import io
import os
import os.path as osp

import pytest
import torch
from test_model_converters import official_dinov2, official_sam

from mmrsfusion.checkpoint import (OFFICIAL_WEIGHTS, OfficialWeights,
                                   load_checkpoint_file)
from mmrsfusion.models.backbones import convert_dinov2, convert_sam

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load(osp.join(ROOT, 'tools', 'misc', 'download_weights.py'),
             'download_weights')
local_http = _load(
    osp.join(ROOT, 'tests', 'test_checkpoint', 'local_http.py'), 'local_http')
LocalFileServer = local_http.LocalFileServer

FAMILIES = {
    'dinov2': ('/dinov2/dinov2_tiny14/dinov2_tiny14_pretrain.pth',
               official_dinov2, convert_dinov2),
    'sam': ('/segment_anything/sam_vit_tiny_0a1b2c.pth', official_sam,
            convert_sam),
}


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    local_http.direct_connections(monkeypatch)


def saved(state_dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getvalue()


def register(monkeypatch, family, url, data):
    """Inject a registry entry ``<family>_tiny`` for ``url`` serving
    ``data``."""
    name = f'{family}_tiny'
    monkeypatch.setitem(
        OFFICIAL_WEIGHTS, name,
        OfficialWeights(name, family, url, len(data),
                        hashlib.sha256(data).hexdigest()))
    return name


def error_of(capsys, argv):
    with pytest.raises(SystemExit) as info:
        tool.main(argv)
    assert info.value.code == 1
    return capsys.readouterr().err


@pytest.mark.parametrize('family', ['dinov2', 'sam'])
def test_download_verify_convert(tmp_path, monkeypatch, capsys, family):
    """The official file is fetched and converted to ``<dir>/<name>_
    converted.pth``, holding the converter's keys; a second run reuses
    both files and downloads nothing."""
    path, make, convert = FAMILIES[family]
    state_dict = make()
    data = saved(state_dict)
    folder = str(tmp_path / 'pretrain')
    with LocalFileServer({path: data}) as server:
        name = register(monkeypatch, family, server.url(path), data)
        tool.main([name, '--dir', folder])
        official = osp.join(folder, osp.basename(path))
        converted = osp.join(folder, f'{name}_converted.pth')
        assert sorted(os.listdir(folder)) == sorted(
            [osp.basename(path), f'{name}_converted.pth'])
        assert open(official, 'rb').read() == data
        got = load_checkpoint_file(converted)
        want = convert(state_dict)
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) for k in want)
        assert 'verified' in capsys.readouterr().out

        mtime = os.stat(converted).st_mtime_ns
        tool.main([name, '--dir', folder])
        assert 'already converted' in capsys.readouterr().out
        assert os.stat(converted).st_mtime_ns == mtime
    assert server.requests == [(path, None)]


def test_interrupted_then_resumed_by_rerun(tmp_path, monkeypatch, capsys):
    """The server drops the connection and then fails: the run stops with
    the URL, keeping only ``.part``; running again resumes with Range and
    converts."""
    path, make, _ = FAMILIES['dinov2']
    data = saved(make())
    folder = str(tmp_path)
    with LocalFileServer({path: data}) as server:
        name = register(monkeypatch, 'dinov2', server.url(path), data)
        server.plan = [10000, '503']
        err = error_of(capsys, [name, '--dir', folder])
        assert server.url(path) in err and '10000 bytes received' in err
        assert os.listdir(folder) == [osp.basename(path) + '.part']
        tool.main([name, '--dir', folder])
    assert server.requests[-1] == (path, 'bytes=10000-')
    assert sorted(os.listdir(folder)) == sorted(
        [osp.basename(path), f'{name}_converted.pth'])
    assert open(osp.join(folder, osp.basename(path)), 'rb').read() == data


@pytest.mark.parametrize('damage', ['truncated', 'altered'])
def test_damaged_file_refused_nothing_left(tmp_path, monkeypatch, capsys,
                                           damage):
    path, make, _ = FAMILIES['dinov2']
    data = saved(make())
    served = data[:len(data) // 2] if damage == 'truncated' else \
        data[:-1] + bytes([data[-1] ^ 1])
    folder = str(tmp_path / 'pretrain')
    with LocalFileServer({path: served}) as server:
        name = register(monkeypatch, 'dinov2', server.url(path), data)
        err = error_of(capsys, [name, '--dir', folder])
    assert 'not the official file' in err or 'not serve the official' in err
    assert 'deleted' in err
    assert not osp.exists(folder) or os.listdir(folder) == []


def test_existing_different_converted_file_needs_force(
        tmp_path, monkeypatch, capsys):
    path, make, convert = FAMILIES['dinov2']
    state_dict = make()
    data = saved(state_dict)
    folder = tmp_path
    with LocalFileServer({path: data}) as server:
        name = register(monkeypatch, 'dinov2', server.url(path), data)
        converted = folder / f'{name}_converted.pth'
        torch.save({'state_dict': {'x': torch.zeros(1)}}, converted)
        before = converted.read_bytes()
        err = error_of(capsys, [name, '--dir', str(folder)])
        assert f'{converted} exists and is not the conversion' in err
        assert '--force' in err
        assert converted.read_bytes() == before

        tool.main([name, '--dir', str(folder), '--force'])
    got = load_checkpoint_file(str(converted))
    assert got.keys() == convert(state_dict).keys()


def test_offline_error_names_url_and_commands(tmp_path, monkeypatch, capsys):
    path, make, _ = FAMILIES['dinov2']
    data = saved(make())
    with LocalFileServer({}) as server:
        url = server.url(path)
    # the server is shut down: nothing listens on its port any more
    name = register(monkeypatch, 'dinov2', url, data)
    folder = str(tmp_path / 'pretrain')
    err = error_of(capsys, [name, '--dir', folder])
    official = osp.join(folder, osp.basename(path))
    assert f'Cannot download {name} from {url}' in err
    assert f'curl -L -C - --create-dirs -o {official} {url}' in err
    assert (f'mmrsfusion convert-weights dinov2 {official} '
            f'{osp.join(folder, name + "_converted.pth")}') in err
    assert not osp.exists(folder) or os.listdir(folder) == []


def test_unknown_name_lists_the_known_ones(capsys):
    err = error_of(capsys, ['dinov2_vitx14'])
    assert "unknown official weights 'dinov2_vitx14'" in err
    for name in ('dinov2_vitb14', 'dinov2_vitl14', 'sam_vit_b', 'sam_vit_l',
                 'sam_vit_h'):
        assert name in err


def test_list(capsys):
    tool.main(['--list'])
    out = capsys.readouterr().out
    assert ('https://dl.fbaipublicfiles.com/segment_anything/'
            'sam_vit_h_4b8939.pth  -> pretrain/sam_vit_h_converted.pth') in out
    assert len(out.splitlines()) == len(OFFICIAL_WEIGHTS)
