"""ISPRS Potsdam, multimodal (RGB / IRRG / RGBIR + DSM / nDSM)."""
from mmseg.registry import DATASETS

from .isprs import ISPRSMMDataset


@DATASETS.register_module()
class PotsdamMMDataset(ISPRSMMDataset):
    """ISPRS Potsdam in the converted layout: 4-band R, G, B, IR
    ``img_dir`` tiles, ``dsm_dir`` (float32 DSM) or ``ndsm_dir`` (8-bit
    nDSM) tiles, ``ann_dir`` / ``ann_eroded_dir`` labels.

    ``optical_bands`` picks the optical bands from the 4-band files:
    ``'RGB'`` (default), ``'IRRG'`` or ``'RGBIR'`` (the optical modality of
    the spec then has 4 channels), or explicit indices. Names are looked up
    in the band order the converter recorded (``conversion.json``
    ``notes.bands``; R, G, B, IR when there is none), so a folder converted
    with ``--optical IRRG`` also works with ``'IRRG'`` and refuses
    ``'RGB'``. ``elevation='ndsm'``
    reads ``ndsm_dir`` instead of ``dsm_dir``. See
    :class:`MultiModalSegDataset`.
    """

    MAKE_COMMAND = ('mmrsfusion convert potsdam RAW_PATH '
                    '-o {root}')
    BAND_PRESETS = dict(
        RGB=('R', 'G', 'B'),
        IRRG=('IR', 'R', 'G'),
        RGBIR=('R', 'G', 'B', 'IR'))
    FILE_BANDS = ('R', 'G', 'B', 'IR')

    def __init__(self, optical_bands='RGB', **kwargs) -> None:
        super().__init__(optical_bands=optical_bands, **kwargs)
