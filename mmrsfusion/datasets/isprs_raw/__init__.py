"""Reading the official ISPRS Vaihingen / Potsdam downloads and writing the
converted layout.

This package is the shared engine of ``tools/dataset_converters/vaihingen.py``
and ``tools/dataset_converters/potsdam.py``; each script only states what is
specific to its dataset (file-name rules, split table, CLI extras) in a
:class:`DatasetSpec` and calls :func:`convert` (or :func:`run_cli`).

Modules: ``layout`` (output layout, palette, constants), ``discovery`` (raw
files in folders and zips, file-name rules, matching tiles), ``readers``
(rasters), ``labels`` (colour -> class index), ``tiles`` (clipping and
writing one tile), ``convert`` (planning, parallel jobs, atomic commit) and
``cli`` (the converters' shared command line).

Raw input
    One or more ``RAW_PATH`` arguments, each a folder, a ``.zip`` archive
    or a single file. Folders are walked at any depth; every ``.zip`` met
    on the way is listed without extracting it (members are read into
    memory one at a time); a ``.zip`` inside a ``.zip`` is extracted to
    ``tmp_dir`` first.
    Files are recognised by their exact official base names (see the specs
    in the scripts); everything else is ignored. Where two different files
    share a name (Vaihingen images and complete ground truth are both
    ``top_mosaic_09cm_area{N}.tif``) a rule can require or forbid a
    ground-truth *context*: a containing archive or folder whose name marks
    ground truth (see :func:`is_ground_truth_context`); only the folders
    and archives below a ``RAW_PATH`` folder count, not its own name. Optical
    candidates whose content is a colour-coded label (the six class colours)
    are labels, never the image; any other choice between different files
    is refused, naming them (see :func:`match_files`).

Converted layout (``OUT_DIR``)::

    img_dir/{train,test}/{stem}.tif        optical, H x W x C, source dtype,
                                           band order of the source file
                                           (Vaihingen IR,R,G; Potsdam
                                           RGBIR -> R,G,B,IR)
    dsm_dir/{train,test}/{stem}.tif        DSM, H x W float32, raw heights;
                                           every no-data pixel (-9999, the
                                           source's GDAL_NODATA value, NaN,
                                           inf) written as NaN
    ndsm_dir/{train,test}/{stem}.tif       Potsdam nDSM, H x W uint8
    ann_dir/{train,test}/{stem}.tif        class index 0..5, 255 = unknown
    ann_eroded_dir/{train,test}/{stem}.tif eroded labels, 255 = ignore
    conversion.json                        manifest: arguments, sources,
                                           per-tile elevation statistics

``stem`` is the tile id (``area1``, ``2_10``) for whole tiles, or
``{tile}_{x0}_{y0}_{x1}_{y1}`` for clips (mmseg's naming; x is the column).
All rasters are TIFFs with zlib (deflate) compression, stored in
:data:`TILE_SIZE` tiles, so that a training window is read without decoding
the whole tile (:class:`LoadMultiModalRandomWindow`);
``tools/dataset_converters/retile.py`` converts data written before (PNG
labels, stripped TIFFs).

Labels
    RGB colour-coded labels become class indices 0..5 (:data:`PALETTE`).
    Real label TIFFs have slightly-off colours in a few pixels: a pixel
    within ``tolerance`` levels (every channel, default
    :data:`COLOUR_TOLERANCE`) of a class colour is snapped to that class,
    any other colour becomes 255; black boundary pixels of the eroded
    (``_noBoundary``) labels become 255. Counts of snapped / unknown pixels
    are reported and stored per tile in ``conversion.json``; a "label" with
    more than :data:`MAX_UNKNOWN_FRACTION` unknown pixels is refused.

Elevation statistics
    Clipping a tile loses its whole-tile range, and the protocol normalises
    the DSM per *tile*. ``conversion.json`` therefore records, per tile, the
    min / max of the valid elevation values (no-data = non-finite, -9999 or
    the TIFF's ``GDAL_NODATA`` value) so that a loader can normalise clips
    by their tile's range.

Atomicity
    Everything is written to a hidden staging folder next to ``OUT_DIR``
    (``.{name}.converting-*``, same file system) and moved into place only
    after every tile succeeded. Any failure (or Ctrl-C) removes the staging
    folder and leaves ``OUT_DIR`` as it was. A killed process (SIGKILL) may
    leave the hidden staging folder (and a scratch folder in ``tmp_dir``)
    behind, never a half-written ``OUT_DIR``; the next conversion removes
    them (their names hold the host and process id). ``OUT_DIR`` gets the
    permissions of the umask.
"""
from .cli import add_common_args, run_cli
from .convert import ConversionReport, convert
from .discovery import (DatasetSpec, FileRule, discover,
                        is_ground_truth_context, match_files)
from .labels import colour_to_index
from .layout import (BOUNDARY_COLOUR, COLOUR_TOLERANCE, ELEVATION_MISMATCH,
                     IGNORE_INDEX, LAYOUT, MANIFEST, MAX_UNKNOWN_FRACTION,
                     NODATA_VALUES, PALETTE, ROLE_NAMES, TILE_SIZE,
                     ConversionError)
from .raw_file import RawFile
from .readers import read_colour_label, read_dsm, read_gray, read_optical
from .tiles import (TileJob, clip_boxes, clip_starts, convert_tile,
                    elevation_stats)

__all__ = [
    'BOUNDARY_COLOUR', 'COLOUR_TOLERANCE', 'ELEVATION_MISMATCH',
    'IGNORE_INDEX', 'LAYOUT', 'MANIFEST', 'MAX_UNKNOWN_FRACTION',
    'NODATA_VALUES', 'PALETTE', 'ROLE_NAMES', 'TILE_SIZE', 'ConversionError',
    'ConversionReport', 'DatasetSpec', 'FileRule', 'RawFile', 'TileJob',
    'add_common_args', 'clip_boxes', 'clip_starts', 'colour_to_index',
    'convert', 'convert_tile', 'discover', 'elevation_stats',
    'is_ground_truth_context', 'match_files', 'read_colour_label',
    'read_dsm', 'read_gray', 'read_optical', 'run_cli'
]
