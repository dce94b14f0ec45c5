"""mmrsfusion/checkpoint/download.py against a local HTTP server on
127.0.0.1: the official file is accepted only with its size and SHA-256,
anything else is deleted, interrupted downloads resume with ``Range``, the
final name appears only once verified, and an unreachable server gives the
URL and the manual commands."""
import glob
import hashlib
import os
import os.path as osp
import re
import socket

import pytest
from local_http import LocalFileServer, direct_connections

from mmrsfusion.checkpoint import (OFFICIAL_WEIGHTS, DownloadError,
                                   OfficialWeights, VerificationError,
                                   fetch_official)
from mmrsfusion.checkpoint.download import PART_SUFFIX, download

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DATA = bytes(range(256)) * 4096 + b'tail'  # 1 MiB + 4 bytes
PATH = '/dinov2/dinov2_fake14/dinov2_fake14_pretrain.pth'


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    direct_connections(monkeypatch)


def entry(url, data=DATA):
    return OfficialWeights('dinov2_fake14', 'dinov2', url, len(data),
                           hashlib.sha256(data).hexdigest())


def files_in(folder):
    return sorted(os.listdir(folder)) if osp.isdir(folder) else []


def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return f'http://127.0.0.1:{port}{PATH}'


def test_registry_covers_the_configs():
    """Every official checkpoint a config loads has an entry whose
    converted file is the path the config names, and every entry points at
    the publisher with a full SHA-256."""
    expected = set()
    for cfg in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True):
        text = open(cfg).read()
        expected |= set(
            re.findall(r"frozen_checkpoint='(pretrain/[^']+)'", text))
    expected.discard('pretrain/dinov2_tiny_demo_converted.pth')  # demo
    assert expected == {
        'pretrain/dinov2_vitb14_converted.pth',
        'pretrain/dinov2_vitl14_converted.pth',
        'pretrain/sam_vit_b_converted.pth',
        'pretrain/sam_vit_l_converted.pth',
        'pretrain/sam_vit_h_converted.pth'
    }
    registered = {
        osp.join('pretrain', w.converted): w
        for w in OFFICIAL_WEIGHTS.values()
    }
    assert expected <= set(registered)
    for name, w in OFFICIAL_WEIGHTS.items():
        assert w.name == name
        assert re.fullmatch(r'[0-9a-f]{64}', w.sha256)
        if w.family == 'dinov2':
            assert w.url == ('https://dl.fbaipublicfiles.com/dinov2/'
                             f'{name}/{name}_pretrain.pth')
        else:
            assert re.fullmatch(
                r'https://dl\.fbaipublicfiles\.com/segment_anything/'
                rf'{name}_[0-9a-f]{{6}}\.pth', w.url)


def test_good_file_accepted(tmp_path):
    with LocalFileServer({PATH: DATA}) as server:
        w = entry(server.url(PATH))
        dst = fetch_official(w, str(tmp_path / 'pretrain'))
    assert dst == str(tmp_path / 'pretrain' / 'dinov2_fake14_pretrain.pth')
    assert open(dst, 'rb').read() == DATA
    assert files_in(tmp_path / 'pretrain') == ['dinov2_fake14_pretrain.pth']
    assert server.requests == [(PATH, None)]


@pytest.mark.parametrize('content_length', [True, False])
def test_truncated_file_refused_and_removed(tmp_path, content_length):
    """A server file shorter than the official one: refused from its
    Content-Length, or (without one) when the resume finds nothing more;
    nothing is left behind."""
    with LocalFileServer({PATH: DATA[:-1000]}) as server:
        server.content_length = content_length
        with pytest.raises(VerificationError, match='not serve the official'):
            fetch_official(entry(server.url(PATH)), str(tmp_path))
    assert files_in(tmp_path) == []


def test_altered_file_refused_and_removed(tmp_path):
    altered = bytearray(DATA)
    altered[12345] ^= 1
    with LocalFileServer({PATH: bytes(altered)}) as server:
        with pytest.raises(VerificationError) as info:
            fetch_official(entry(server.url(PATH)), str(tmp_path))
    message = str(info.value)
    assert hashlib.sha256(altered).hexdigest() in message
    assert hashlib.sha256(DATA).hexdigest() in message
    assert 'deleted' in message
    assert files_in(tmp_path) == []


def test_interrupted_download_resumed(tmp_path):
    """The connection drops after 300000 bytes: the same call asks for the
    rest with ``Range: bytes=300000-`` and ends with the right bytes."""
    with LocalFileServer({PATH: DATA}) as server:
        server.plan = [300000]
        dst = fetch_official(entry(server.url(PATH)), str(tmp_path))
    assert server.requests == [(PATH, None), (PATH, 'bytes=300000-')]
    assert open(dst, 'rb').read() == DATA
    assert files_in(tmp_path) == ['dinov2_fake14_pretrain.pth']


def test_resume_from_part_of_an_earlier_run(tmp_path):
    """The connection drops and the resume gets an error: the call stops,
    keeping the bytes in ``.part`` (not under the final name); the next
    call resumes from them."""
    folder = str(tmp_path)
    with LocalFileServer({PATH: DATA}) as server:
        w = entry(server.url(PATH))
        server.plan = [500000, '503']
        with pytest.raises(DownloadError) as info:
            fetch_official(w, folder)
        assert server.requests == [(PATH, None), (PATH, 'bytes=500000-')]
        part = osp.join(folder, w.filename + PART_SUFFIX)
        assert files_in(folder) == [w.filename + PART_SUFFIX]
        assert osp.getsize(part) == 500000
        assert '500000 bytes received are kept' in str(info.value)
        assert 'HTTP Error 503' in str(info.value)
        server.requests.clear()
        dst = fetch_official(w, folder)
    assert server.requests == [(PATH, 'bytes=500000-')]
    assert open(dst, 'rb').read() == DATA
    assert files_in(folder) == [w.filename]


def test_server_ignoring_range_restarts(tmp_path):
    """A ``.part`` of wrong bytes and a server that answers 200 to the
    Range request: the file is rewritten from byte 0, not appended."""
    with LocalFileServer({PATH: DATA}) as server:
        server.ignore_range = True
        w = entry(server.url(PATH))
        (tmp_path / (w.filename + PART_SUFFIX)).write_bytes(b'x' * 1000)
        dst = fetch_official(w, str(tmp_path))
    assert server.requests == [(PATH, 'bytes=1000-')]
    assert open(dst, 'rb').read() == DATA
    assert files_in(tmp_path) == [w.filename]


def test_offline_names_url_and_commands(tmp_path):
    url = closed_port_url()
    w = entry(url)
    with pytest.raises(DownloadError) as info:
        fetch_official(w, str(tmp_path / 'pretrain'))
    message = str(info.value)
    dst = osp.join(str(tmp_path / 'pretrain'), w.filename)
    assert f'Cannot download dinov2_fake14 from {url}' in message
    assert f'curl -L -C - --create-dirs -o {dst} {url}' in message
    assert f'sha256sum {dst}   # must print {w.sha256}' in message
    assert (f'mmrsfusion convert-weights dinov2 {dst} '
            f'{osp.join(str(tmp_path / "pretrain"), w.converted)}'
            in message)
    assert files_in(tmp_path / 'pretrain') == []


def test_existing_official_file_is_verified_not_downloaded(tmp_path):
    with LocalFileServer({PATH: DATA}) as server:
        w = entry(server.url(PATH))
        (tmp_path / w.filename).write_bytes(DATA)
        assert fetch_official(w, str(tmp_path)) == str(tmp_path /
                                                        w.filename)
    assert server.requests == []


def test_existing_different_file_needs_force(tmp_path):
    with LocalFileServer({PATH: DATA}) as server:
        w = entry(server.url(PATH))
        mine = tmp_path / w.filename
        mine.write_bytes(b'my own file')
        with pytest.raises(FileExistsError, match='--force'):
            fetch_official(w, str(tmp_path))
        assert mine.read_bytes() == b'my own file'
        assert server.requests == []
        fetch_official(w, str(tmp_path), force=True)
    assert mine.read_bytes() == DATA
    assert files_in(tmp_path) == [w.filename]


def test_download_replaces_only_when_verified(tmp_path):
    """``download`` never touches ``dst`` before verification: a refused
    download leaves an existing ``dst`` as it was."""
    altered = DATA[:-1] + b'X'
    dst = tmp_path / 'dinov2_fake14_pretrain.pth'
    dst.write_bytes(b'previous')
    with LocalFileServer({PATH: altered}) as server:
        with pytest.raises(VerificationError):
            download(entry(server.url(PATH)), str(dst))
    assert dst.read_bytes() == b'previous'
    assert files_in(tmp_path) == [dst.name]


def test_local_disk_errors_are_not_network_errors(tmp_path):
    """A ``.part`` that cannot be written (here a folder) raises the disk's
    own error, not a "cannot download" with network advice."""
    with LocalFileServer({PATH: DATA}) as server:
        w = entry(server.url(PATH))
        (tmp_path / (w.filename + PART_SUFFIX)).mkdir()
        with pytest.raises(IsADirectoryError):
            fetch_official(w, str(tmp_path))
