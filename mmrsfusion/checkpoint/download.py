"""The official DINOv2 / SAM weights: where their publisher serves them,
how to recognise them, and a download that resumes, verifies and never
leaves a partial file under the final name.

:data:`OFFICIAL_WEIGHTS` is the registry (one :class:`OfficialWeights` per
size); :func:`fetch_official` puts a verified official file in a folder.
Converting it to MultiStreamViT's keys is the model converters' job
(``tools/model_converters/``; ``tools/misc/download_weights.py`` runs both).

A download goes to ``<file>.part``; an interrupted transfer is resumed with
an HTTP ``Range`` request (in the same call while the server keeps sending
bytes, and in the next call from the ``.part`` left behind); the complete
file must have the registry's size and SHA-256, else it is deleted; only then
is it renamed to its final name.
"""
import hashlib
import http.client
import os
import os.path as osp
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Dict, Optional, TextIO

from mmrsfusion.utils.progress import Progress

#: Suffix of a download in progress (never the final name).
PART_SUFFIX = '.part'
_CHUNK = 1 << 20
_MIB = 1 << 20


@dataclass(frozen=True)
class OfficialWeights:
    """One official checkpoint.

    Args:
        name (str): What the user types (``dinov2_vitb14``, ``sam_vit_b``).
        family (str): The converter: ``'dinov2'`` or ``'sam'``.
        url (str): The publisher's URL; its last part is the file name.
        size (int): Bytes of the file.
        sha256 (str): Full SHA-256 of the file (hex).
    """
    name: str
    family: str
    url: str
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        """The publisher's file name (last part of :attr:`url`)."""
        return self.url.rsplit('/', 1)[-1]

    @property
    def converted(self) -> str:
        """File name of the converted checkpoint, the one the configs name
        under ``pretrain/``."""
        return f'{self.name}_converted.pth'


# The configs load dinov2_vitb14 / vitl14 and sam_vit_b / l / h; vits14 and
# vitg14 are here because the converter supports them too.
# Where the facts come from (looked up 2026-12; Meta publishes no digests):
# - URLs: DINOv2's torch.hub loader (facebookresearch/dinov2,
#   dinov2/hub/backbones.py: https://dl.fbaipublicfiles.com/dinov2/
#   <name>/<name>_pretrain.pth) and the "Model Checkpoints" section of
#   facebookresearch/segment-anything's README.
# - SAM SHA-256: the checksums micro-sam verifies its downloads of these
#   URLs with (computational-cell-analytics/micro-sam, micro_sam/util.py,
#   _CHECKSUMS), the same digests in several independent lock files. SAM's
#   file-name suffixes (4b8939, 0b3195, 01ec64) are the first hex digits of
#   each file's MD5 (4b8939a8..., 0b319550..., 01ec64d2... in public MD5
#   listings such as IOPaint's), not of its SHA-256, so torch.hub's
#   name-prefix check cannot verify them: the full SHA-256 does.
# - SAM sizes: the Content-Length dl.fbaipublicfiles.com reports, as quoted
#   in public notes (375,042,383 / 1,249,524,607 / 2,564,550,879 bytes).
# - DINOv2 sizes and SHA-256: sha256sum listings of these files in public
#   lock files and torch.hub caches (vitl14 also with the server's
#   Content-Length: 1217586395); vitb14 and vitl14 agree across several
#   independent repositories, vits14 and vitg14 across a few.
_FB = 'https://dl.fbaipublicfiles.com'
OFFICIAL_WEIGHTS: Dict[str, OfficialWeights] = {
    w.name: w
    for w in (
        OfficialWeights(
            name='dinov2_vits14',
            family='dinov2',
            url=f'{_FB}/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth',
            size=88_283_115,
            sha256='b938bf1bc15cd2ec0feacfe3a1bb553f'
            'e8ea9ca46a7e1d8d00217f29aef60cd9'),
        OfficialWeights(
            name='dinov2_vitb14',
            family='dinov2',
            url=f'{_FB}/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth',
            size=346_378_731,
            sha256='0b8b82f85de91b424aded121c7e1dcc2'
            'b7bc6d0adeea651bf73a13307fad8c73'),
        OfficialWeights(
            name='dinov2_vitl14',
            family='dinov2',
            url=f'{_FB}/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth',
            size=1_217_586_395,
            sha256='d5383ea8f4877b2472eb973e0fd72d55'
            '7c7da5d3611bd527ceeb1d7162cbf428'),
        OfficialWeights(
            name='dinov2_vitg14',
            family='dinov2',
            url=f'{_FB}/dinov2/dinov2_vitg14/dinov2_vitg14_pretrain.pth',
            size=4_546_108_579,
            sha256='baf8467e50af277596bbbafa06887c17'
            '7ee899ab46033649c383577d7e9309d3'),
        OfficialWeights(
            name='sam_vit_b',
            family='sam',
            url=f'{_FB}/segment_anything/sam_vit_b_01ec64.pth',
            size=375_042_383,
            sha256='ec2df62732614e57411cdcf32a23ffdf'
            '28910380d03139ee0f4fcbe91eb8c912'),
        OfficialWeights(
            name='sam_vit_l',
            family='sam',
            url=f'{_FB}/segment_anything/sam_vit_l_0b3195.pth',
            size=1_249_524_607,
            sha256='3adcc4315b642a4d2101128f611684e8'
            '734c41232a17c648ed1693702a49a622'),
        OfficialWeights(
            name='sam_vit_h',
            family='sam',
            url=f'{_FB}/segment_anything/sam_vit_h_4b8939.pth',
            size=2_564_550_879,
            sha256='a7bf3b02f3ebf1267aba913ff637d9a2'
            'd5c33d3173bb679e46d9f338c26f262e'),
    )
}


class DownloadError(RuntimeError):
    """The publisher's server could not be reached or stopped sending; the
    message names the URL and the commands to do it by hand."""


class VerificationError(ValueError):
    """A file is not the official one (size or SHA-256 differ); the message
    names the file and both values."""


def official_weights(name: str) -> OfficialWeights:
    """The registry entry ``name``; a ``KeyError`` lists the known names."""
    if name not in OFFICIAL_WEIGHTS:
        raise KeyError(f'unknown official weights {name!r}: expected one of '
                       f'{", ".join(sorted(OFFICIAL_WEIGHTS))}')
    return OFFICIAL_WEIGHTS[name]


def file_sha256(path: str) -> str:
    """Hex SHA-256 of the file ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: str, weights: OfficialWeights) -> None:
    """Raise :class:`VerificationError` unless ``path`` has the size and
    SHA-256 of ``weights`` (the size first: it costs nothing)."""
    size = osp.getsize(path)
    if size != weights.size:
        raise VerificationError(
            f'{path} has {size} bytes, the official {weights.filename} has '
            f'{weights.size}: it is not the official file (truncated or '
            'another file)')
    digest = file_sha256(path)
    if digest != weights.sha256:
        raise VerificationError(
            f'{path} has SHA-256 {digest}, the official {weights.filename} '
            f'has {weights.sha256}: it is not the official file (damaged '
            'or altered)')


def manual_commands(weights: OfficialWeights, directory: str) -> str:
    """The shell commands that do what :func:`fetch_official` and the
    converter do, for a machine where the download has to happen by hand."""
    dst = osp.join(directory, weights.filename)
    converted = osp.join(directory, weights.converted)
    return (f'  curl -L -C - --create-dirs -o {dst} {weights.url}\n'
            f'  sha256sum {dst}   # must print {weights.sha256}\n'
            f'  mmrsfusion convert-weights {weights.family} {dst} '
            f'{converted}\n'
            f'or copy the file to {dst} and rerun `mmrsfusion download '
            f'{weights.name} --dir {directory}`, which '
            'verifies and converts a file already there.')


def _content_range(value: Optional[str]):
    """``(start, total)`` of a ``Content-Range: bytes a-b/total`` header
    (``total`` None when the server says ``*``)."""
    match = re.match(r'bytes (\d+)-\d+/(\d+|\*)', value or '')
    if match is None:
        return None, None
    start, total = match.groups()
    return int(start), None if total == '*' else int(total)


def _remove(path: str) -> None:
    if osp.lexists(path):
        os.remove(path)


def _not_official(part: str, weights: OfficialWeights, why: str):
    """Delete the download ``part`` and say why it is not the file."""
    _remove(part)
    return VerificationError(
        f'{weights.url} does not serve the official {weights.filename}: '
        f'{why}. The download was deleted.')


class _Interrupted(Exception):
    """The request failed or its connection ended early; ``args[0]`` is
    the network error. (Errors of the local disk are not wrapped: they
    propagate as they are.)"""


def _read(response, size: int) -> bytes:
    try:
        return response.read(size)
    except (OSError, http.client.HTTPException) as e:
        raise _Interrupted(e) from e


def _transfer(weights: OfficialWeights, part: str, timeout: float,
              progress: Progress) -> None:
    """One HTTP request appending to ``part`` from its current size.

    Raises :class:`VerificationError` (``part`` deleted) when the server
    announces another size, :class:`_Interrupted` when the request fails or
    the connection ends early (``part`` kept).
    """
    offset = osp.getsize(part) if osp.exists(part) else 0
    headers = {'User-Agent': 'mmrsfusion-download'}
    if offset:
        headers['Range'] = f'bytes={offset}-'
    request = urllib.request.Request(weights.url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416:  # the server's file ends before our offset
            raise _not_official(
                part, weights, f'it has fewer than the {offset} bytes '
                'already received') from None
        raise _Interrupted(e) from e
    except (OSError, http.client.HTTPException) as e:
        raise _Interrupted(e) from e
    with response:
        if offset and response.status == 206:
            start, total = _content_range(response.headers['Content-Range'])
            if start != offset:
                raise _Interrupted(
                    http.client.HTTPException(
                        f'asked for bytes from {offset}, got a range from '
                        f'{start}'))
            mode = 'ab'
        else:  # 200: the whole file (the server ignored or got no Range)
            offset, mode = 0, 'wb'
            length = response.headers['Content-Length']
            total = int(length) if length is not None else None
        if total is not None and total != weights.size:
            raise _not_official(part, weights,
                                f'it has {total} bytes, not {weights.size}')
        progress.done = offset // _MIB
        with open(part, mode) as f:
            while True:
                chunk = _read(response, _CHUNK)
                if not chunk:
                    break
                if offset + len(chunk) > weights.size:
                    f.close()
                    raise _not_official(
                        part, weights, f'it has more than {weights.size} '
                        'bytes')
                f.write(chunk)
                offset += len(chunk)
                progress.update(offset // _MIB - progress.done)
            f.flush()
            os.fsync(f.fileno())
    if offset < weights.size:  # http.client returns b'' on an early close
        raise _Interrupted(
            ConnectionError(f'the connection closed after {offset} of '
                            f'{weights.size} bytes'))


def download(weights: OfficialWeights,
             dst: str,
             timeout: float = 60.,
             file: Optional[TextIO] = None) -> str:
    """Download ``weights`` to ``dst`` through ``dst + '.part'``.

    Resumes from a ``.part`` left by an earlier call, and within this call
    after every drop that brought new bytes; a request that brings none
    ends the call with :class:`DownloadError` (``.part`` kept, so that the
    next call resumes). The complete file is verified
    (:func:`verify_file`); a file that is not the official one is deleted
    and raises :class:`VerificationError`. ``dst`` appears only once
    verified (``os.replace``).

    Args:
        weights (OfficialWeights): What to download.
        dst (str): Final path (its folder is created).
        timeout (float): Seconds a connection may stay silent.
        file (TextIO, optional): Where the progress goes (stdout).

    Returns:
        str: ``dst``.
    """
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    part = dst + PART_SUFFIX
    progress = Progress(
        max(weights.size // _MIB, 1), f'{weights.filename} MiB', file=file)
    while True:
        before = osp.getsize(part) if osp.exists(part) else 0
        if before >= weights.size:
            break
        try:
            _transfer(weights, part, timeout, progress)
            break
        except _Interrupted as interrupted:
            e = interrupted.args[0]
            after = osp.getsize(part) if osp.exists(part) else 0
            if after > before:
                continue  # the server sent bytes before dropping: resume
            kept = (f' The {after} bytes received are kept in {part}; '
                    'running the command again resumes from there.'
                    if after else '')
            raise DownloadError(
                f'Cannot download {weights.name} from {weights.url} '
                f'({type(e).__name__}: {e}).{kept} Without access to that '
                'server, download the file elsewhere and convert it here:\n'
                + manual_commands(weights, osp.dirname(dst) or '.')) from e
    progress.close()
    try:
        verify_file(part, weights)
    except VerificationError as e:
        _remove(part)
        raise VerificationError(f'{e}. The download from {weights.url} was '
                                'deleted.') from None
    os.replace(part, dst)
    return dst


def fetch_official(weights: OfficialWeights,
                   directory: str,
                   force: bool = False,
                   timeout: float = 60.,
                   file: Optional[TextIO] = None) -> str:
    """A verified official file in ``directory``, downloaded if needed.

    A file already there under the official name is verified and kept; one
    that fails verification is left untouched and refused
    (``FileExistsError``) unless ``force``, which replaces it.

    Returns:
        str: Path of the official file, ``directory/weights.filename``.
    """
    dst = osp.join(directory, weights.filename)
    if osp.exists(dst):
        try:
            verify_file(dst, weights)
            return dst
        except VerificationError as e:
            if not force:
                raise FileExistsError(
                    f'{e}. {dst} is left untouched: move it away, or pass '
                    '--force to replace it with the official file.') from None
    return download(weights, dst, timeout=timeout, file=file)
