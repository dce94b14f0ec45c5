"""MMHunan: Sentinel-2 RGB + DEM patches of Hunan province, 7 land-cover
classes (MFNet's third dataset)."""
from mmseg.registry import DATASETS

from .multimodal_dataset import MultiModalSegDataset

#: Class names, index = label value (0..6).
MMHUNAN_CLASSES = ('cropland', 'forest', 'grassland', 'wetland', 'water',
                   'unused_land', 'built_up_area')
#: The colour code of each class (RGB), as the MFNet code draws them.
MMHUNAN_PALETTE = [[196, 90, 17], [51, 129, 88], [177, 205, 61],
                   [228, 84, 96], [91, 154, 214], [225, 174, 110],
                   [239, 159, 2]]


@DATASETS.register_module()
class MMHunanDataset(MultiModalSegDataset):
    """MMHunan in its released layout (500 patches of 256 x 256)::

        data_root/
          images_png/ID.png   Sentinel-2 RGB, 8-bit
          dsm_pngs/ID.png     DEM
          masks_png/ID.tif    labels 0..6
          train.txt, test.txt the split: one ID per line (MFNet: 450 / 50)

    Set ``data_prefix=dict(img_path='images_png', dsm_path='dsm_pngs',
    seg_map_path='masks_png')`` and ``ann_file='train.txt'`` (or
    ``'test.txt'``); the DEM is min-max normalised per patch by the loader
    (``kind='elevation'``). Labels are index maps 0..6 (no ignore value in
    the release), so ``reduce_zero_label`` is False. See
    :class:`MultiModalSegDataset`.
    """
    METAINFO = dict(classes=MMHUNAN_CLASSES, palette=MMHUNAN_PALETTE)

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.tif',
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)
