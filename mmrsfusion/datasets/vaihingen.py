"""ISPRS Vaihingen, multimodal (IRRG + DSM)."""
from mmseg.registry import DATASETS

from .isprs import ISPRSMMDataset


@DATASETS.register_module()
class VaihingenMMDataset(ISPRSMMDataset):
    """ISPRS Vaihingen in the converted layout: 3-band IRRG ``img_dir``
    tiles, float32 ``dsm_dir`` tiles, ``ann_dir`` / ``ann_eroded_dir``
    labels, official ``train`` / ``test`` areas. See
    :class:`MultiModalSegDataset`."""

    MAKE_COMMAND = ('mmrsfusion convert vaihingen RAW_PATH '
                    '-o {root}')
