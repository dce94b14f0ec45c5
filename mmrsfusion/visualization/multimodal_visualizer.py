"""Pictures of multimodal samples: every modality, the ground truth and the
prediction side by side."""
import os
import os.path as osp
from typing import List, Mapping, Optional, Sequence, Union

import cv2
import mmcv
import numpy as np
from mmengine.dist import master_only

from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer
from mmrsfusion.io import nodata_mask, read_raster
from mmrsfusion.utils import Modality, ModalitySpec


def _text(panel: np.ndarray, text: str, org, scale: float) -> None:
    """White text with a black outline, in place."""
    for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(panel, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale,
                    colour, width, cv2.LINE_AA)


def _scale(h: int) -> float:
    return max(0.3, h / 500)


def optical_panel(arr: np.ndarray) -> np.ndarray:
    """A new (H, W, 3) uint8 picture of an (H, W, C) optical raster: its
    first three bands (one band as grey); uint8 as is, other dtypes
    stretched from their 2nd to 98th percentile."""
    arr = arr[..., :3] if arr.shape[2] >= 3 else np.repeat(arr[..., :1], 3,
                                                           axis=2)
    if arr.dtype == np.uint8:  # a copy: titles are drawn on it
        return arr.copy()
    arr = arr.astype(np.float32)
    lo, hi = np.nanpercentile(arr, (2, 98))
    return np.clip((arr - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(
        np.uint8)


def colormap_panel(band: np.ndarray, invalid: np.ndarray,
                   unit: str = '') -> np.ndarray:
    """(H, W, 3) uint8 of one (H, W) band in the viridis colour map over
    its valid range (``invalid`` pixels black), with a scale bar along the
    bottom labelled with the range's ends."""
    h, w = band.shape
    valid = band[~invalid]
    lo, hi = (float(valid.min()), float(valid.max())) if valid.size \
        else (0., 0.)
    norm = np.clip((band - lo) / max(hi - lo, 1e-6), 0, 1)
    grey = np.where(invalid, 0, norm * 255).astype(np.uint8)
    panel = cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_VIRIDIS),
                         cv2.COLOR_BGR2RGB)
    panel[invalid] = 0
    bar_h = max(4, h // 20)
    x0, x1, y0 = w // 10, w - w // 10, h - 2 * bar_h
    ramp = np.linspace(0, 255, max(x1 - x0, 1)).astype(np.uint8)[None]
    bar = cv2.applyColorMap(np.repeat(ramp, bar_h, 0), cv2.COLORMAP_VIRIDIS)
    panel[y0:y0 + bar_h, x0:x1] = cv2.cvtColor(bar, cv2.COLOR_BGR2RGB)
    cv2.rectangle(panel, (x0 - 1, y0 - 1), (x1, y0 + bar_h), (255, ) * 3, 1)
    scale = _scale(h)
    _text(panel, f'{lo:.4g}{unit}', (x0, y0 - 3), scale)
    text = f'{hi:.4g}{unit}'
    tw = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
    _text(panel, text, (x1 - tw, y0 - 3), scale)
    return panel


def label_panel(label: np.ndarray, palette: List) -> np.ndarray:
    """(H, W, 3) uint8 of class indices in ``palette``; other values
    (ignore) black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:len(palette)] = np.asarray(palette, np.uint8)
    return lut[np.clip(label, 0, 255).astype(np.uint8)]


def modality_panel(mod: Modality, source: Union[str, np.ndarray, None],
                   shape, bands: Optional[Sequence[int]] = None
                   ) -> np.ndarray:
    """The panel of one modality from ``source``, its file or (H, W[,
    bands]) array in file units (None: absent, a grey panel).

    Of the source's bands it draws those the model reads, in that order:
    ``bands`` (what the loader read, packed as metainfo
    ``modality_bands``), else the spec entry's ``bands``, else all; an
    optical modality shows the first three of them. So a 4-band R, G, B,
    IR file read whole (Potsdam RGBIR) shows R, G, B; a 3-band IR, R, G file
    (Vaihingen) or IR, R, G read from R, G, B, IR (Potsdam IRRG) shows the
    IRRG false colour the model sees."""
    if source is None:
        panel = np.full(tuple(shape) + (3, ), 96, np.uint8)
        _text(panel, 'absent', (4, shape[0] // 2), _scale(shape[0]))
        return panel
    if isinstance(source, np.ndarray):
        arr, file_nodata = source, None
        if arr.ndim == 2:
            arr = arr[..., None]
    else:
        arr, file_nodata = read_raster(source, with_nodata=True)
    bands = mod.bands if bands is None else bands
    if bands is not None:
        arr = arr[..., list(bands)]
    if mod.kind == 'optical':
        return optical_panel(arr)
    band = arr[..., 0].astype(np.float32)
    nodata = mod.nodata + (() if file_nodata is None else (file_nodata, ))
    return colormap_panel(band, nodata_mask(band, nodata),
                          ' m' if mod.kind == 'elevation' else '')


@VISUALIZERS.register_module()
class MultiModalSegLocalVisualizer(SegLocalVisualizer):
    """mmseg's :class:`SegLocalVisualizer` drawing, side by side, every
    modality of a sample, its ground truth and its prediction.

    The modalities are re-read from their files in file units (the data
    sample's metainfo ``modality_paths``, ``modality_bands`` and
    ``modalities``, packed by the datasets' :func:`run_pipeline`): optical
    as the model reads it (first three of the bands read, see
    :func:`modality_panel`; non-uint8 stretched), elevation and other
    bands (first channel) in a colour map with a scale bar (metres for
    elevation); an absent modality is a grey panel. Labels are drawn in the dataset palette (ignore
    black). Every panel is H x W: the picture is (M + 2) W wide. A sample
    without ``modality_paths`` is drawn as mmseg does.

    Args:
        out_dir (str, optional): Write each picture to
            ``out_dir/STEM.png`` (STEM: the tile's file stem) instead of
            handing it to the vis backends. ``tools/test.py --show-dir``
            sets it.
        **kwargs: :class:`SegLocalVisualizer` arguments.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 out_dir: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.out_dir = out_dir

    def draw_panels(self,
                    data_sample: SegDataSample,
                    draw_gt: bool = True,
                    draw_pred: bool = True,
                    sources: Optional[Mapping[str, Union[str,
                                                         np.ndarray]]] = None
                    ) -> np.ndarray:
        """The (H, (M + 2) W, 3) uint8 RGB picture of ``data_sample``.

        ``sources`` (modality name -> file or array; the Python API's
        inputs) replaces the files of its metainfo ``modality_paths``; a
        modality in neither is drawn absent."""
        spec = ModalitySpec.build(data_sample.modalities)
        if sources is None:
            sources = data_sample.modality_paths
        bands = data_sample.get('modality_bands') or {}
        shape = data_sample.ori_shape
        palette = self.dataset_meta['palette']
        panels, names = [], []
        for mod in spec:
            panels.append(
                modality_panel(mod, sources.get(mod.name), shape,
                               bands.get(mod.name)))
            names.append(mod.name)
        for key, draw in (('gt_sem_seg', draw_gt), ('pred_sem_seg',
                                                      draw_pred)):
            if draw and key in data_sample:
                label = data_sample.get(key).data.squeeze(0).cpu().numpy()
                panels.append(label_panel(label, palette))
                names.append('ground truth' if key == 'gt_sem_seg' else
                             'prediction')
        for panel, name in zip(panels, names):
            _text(panel, name, (4, 4 + int(24 * _scale(shape[0]))),
                  _scale(shape[0]))
        return np.concatenate(panels, axis=1)

    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[SegDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       with_labels: Optional[bool] = True) -> None:
        if data_sample is None or 'modality_paths' not in data_sample:
            return super().add_datasample(name, image, data_sample, draw_gt,
                                          draw_pred, show, wait_time,
                                          out_file, step, with_labels)
        drawn = self.draw_panels(data_sample, draw_gt, draw_pred)
        stem = osp.splitext(osp.basename(data_sample.img_path))[0]
        if show:
            self.show(drawn, win_name=stem, wait_time=wait_time)
        if out_file is None and self.out_dir is not None:
            os.makedirs(self.out_dir, exist_ok=True)
            out_file = osp.join(self.out_dir, f'{stem}.png')
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(drawn), out_file)
        else:
            self.add_image(stem, drawn, step)
