"""The converted layout (folders, extensions), the ISPRS label colours and
the constants shared by the converter modules."""
from ..isprs import ISPRS_PALETTE

#: RGB colour of each class index (ISPRS colour coding).
PALETTE = tuple(tuple(c) for c in ISPRS_PALETTE)
#: Colour of boundary pixels in the eroded (``_noBoundary``) labels.
BOUNDARY_COLOUR = (0, 0, 0)
IGNORE_INDEX = 255
#: Default colour tolerance: a label pixel whose every channel is within this
#: many levels of a palette colour is snapped to it; farther pixels -> 255.
COLOUR_TOLERANCE = 10
#: A label file with more off-palette pixels than this fraction is refused:
#: it is most likely not a colour-coded label (e.g. an image in a folder
#: that looked like ground truth).
MAX_UNKNOWN_FRACTION = 0.05
#: Elevation values treated as no-data (besides NaN / inf and the TIFF's
#: GDAL_NODATA tag). All of them are written as NaN in the converted DSM.
NODATA_VALUES = (-9999.0, )

#: role -> (folder in OUT_DIR, file extension)
LAYOUT = {
    'img': ('img_dir', '.tif'),
    'dsm': ('dsm_dir', '.tif'),
    'ndsm': ('ndsm_dir', '.tif'),
    'ann': ('ann_dir', '.tif'),
    'ann_eroded': ('ann_eroded_dir', '.tif'),
}
#: (rows, columns) of the tiles of every written TIFF: a 256 x 256 training
#: window then decodes 9 tiles of 128 (2.25 windows' worth of pixels) rather
#: than 4 of 256 (4 windows' worth); 35 % less CPU per sample, measured.
TILE_SIZE = (128, 128)
ROLE_NAMES = {
    'img': 'optical image',
    'dsm': 'DSM',
    'ndsm': 'nDSM',
    'ann': 'label',
    'ann_eroded': 'eroded label',
}
MANIFEST = 'conversion.json'
ELEVATION_MISMATCH = ('error', 'resize')


class ConversionError(RuntimeError):
    """Raised for anything that stops a conversion; the message says what
    was looked for, which files are involved and what to do."""
