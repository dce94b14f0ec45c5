"""Features of a GeoPackage layer read by feature id straight from its
SQLite tables, over one read-only connection per process."""
import os
import sqlite3
from typing import List, Optional, Sequence, Tuple

import numpy as np

#: Bytes of a GeoPackage geometry blob's envelope, by its flags' envelope
#: code (none, xy, xyz, xym, xyzm).
ENVELOPE_BYTES = (0, 32, 48, 48, 64)


class GeoPackageLayer:
    """One layer (feature table) of a GeoPackage: geometries (WKB) and one
    attribute of features picked by feature id.

    OGR (pyogrio) opens the file, its SQLite database and layer list at
    every read, some milliseconds each time; this keeps one read-only
    ``sqlite3`` connection per process (opened on first use, again in a
    forked or unpickled dataloader worker; never shared across processes)
    and reads the rows by primary key. The geometry blobs are GeoPackage
    binary: a header and envelope, then standard WKB, which is returned as
    is (what OGR returns for them). Blobs of the extended (non-standard)
    geometry types are refused: read such files with OGR.

    Args:
        path (str): The GeoPackage.
        table (str): The layer's table (OGR's layer name).
        fid_column (str): Its primary key (OGR's feature id).
        geometry_column (str): Its geometry column.
    """

    def __init__(self, path: str, table: str, fid_column: str,
                 geometry_column: str) -> None:
        self.path, self.table = path, table
        self.fid_column, self.geometry_column = fid_column, geometry_column
        self._con: Optional[sqlite3.Connection] = None
        self._pid: Optional[int] = None

    def __getstate__(self) -> dict:
        # the connection stays with its process (workers open their own)
        state = self.__dict__.copy()
        state.update(_con=None, _pid=None)
        return state

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            # a forked worker: the parent's connection is left alone
            self._con, self._pid = None, os.getpid()
        if self._con is None:
            self._con = sqlite3.connect(f'file:{self.path}?mode=ro',
                                        uri=True, check_same_thread=False)
        return self._con

    def read(self, fids: Sequence[int], attribute: Optional[str] = None
             ) -> Tuple[List[Optional[bytes]], Optional[np.ndarray]]:
        """The features ``fids`` in that order: their geometries as WKB
        (None for a null geometry) and, if ``attribute`` is given, its
        values (object (N,), None for null).

        Raises:
            KeyError: A feature id not in the table.
            ValueError: A geometry blob that is not GeoPackage binary of a
                standard type (the feature named).
        """
        names = [self.fid_column, self.geometry_column] + (
            [] if attribute is None else [attribute])
        fids = [int(f) for f in fids]
        rows = self._connection().execute(
            f'SELECT {", ".join(map(quote, names))} FROM '
            f'{quote(self.table)} WHERE {quote(self.fid_column)} IN '
            f'({",".join(map(str, fids))})').fetchall()
        by_fid = {row[0]: row for row in rows}
        rows = [by_fid[f] for f in fids]
        wkb = [None if row[1] is None else self._wkb(row[0], row[1])
               for row in rows]
        values = None if attribute is None else np.array(
            [row[2] for row in rows], object)
        return wkb, values

    def _wkb(self, fid: int, blob: bytes) -> bytes:
        flags = blob[3] if len(blob) > 8 and blob[:2] == b'GP' else None
        envelope = None if flags is None else (flags >> 1) & 7
        if flags is None or flags & 0x20 or envelope >= len(ENVELOPE_BYTES):
            raise ValueError(f'{self.path}: feature {fid} is not a standard '
                             f'GeoPackage geometry')
        return blob[8 + ENVELOPE_BYTES[envelope]:]


def quote(name: str) -> str:
    """``name`` as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
