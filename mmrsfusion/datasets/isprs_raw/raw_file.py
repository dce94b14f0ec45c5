"""A raw file on disk or inside a zip archive: what discovery finds and the
readers read."""
import os.path as osp
import re
import zipfile
import zlib
from dataclasses import dataclass
from typing import Optional, Tuple

from .layout import ConversionError


@dataclass(frozen=True)
class RawFile:
    """A raw file on disk or inside a zip archive.

    Attributes:
        path (str): The file on disk, or the archive holding it.
        member (str | None): Its name inside the archive, if any.
        context (tuple[str]): Names of the folders / archives (without
            ``.zip``) that contain it below the ``RAW_PATH`` folder (whose
            own name and location do not count; a ``RAW_PATH`` that is an
            archive counts). Used to tell files with the same name apart.
    """
    path: str
    member: Optional[str] = None
    context: Tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return re.split(r'[\\/]', self.member or self.path)[-1]

    def fingerprint(self) -> Tuple[int, int]:
        """(byte size, CRC-32) of the content; free for zip members (read
        from the archive's directory), one streamed read for plain files."""
        if self.member is not None:
            with zipfile.ZipFile(self.path) as zf:
                info = zf.getinfo(self.member)
                return info.file_size, info.CRC
        crc = 0
        with open(self.path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 22), b''):
                crc = zlib.crc32(chunk, crc)
        return osp.getsize(self.path), crc

    def read_bytes(self) -> bytes:
        try:
            if self.member is None:
                with open(self.path, 'rb') as f:
                    return f.read()
            with zipfile.ZipFile(self.path) as zf:
                return zf.read(self.member)
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error,
                KeyError) as e:
            kind = 'zlib' if isinstance(e, zlib.error) else type(e).__name__
            raise ConversionError(
                f'Cannot read {self}: {kind}: {e}. The file is damaged: '
                're-download it.') from e

    def __str__(self) -> str:
        return f'{self.path}!{self.member}' if self.member else self.path
