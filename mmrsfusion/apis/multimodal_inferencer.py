"""mmseg's ``MMSegInferencer`` for multimodal models: a tile is a dict
modality name -> file or array."""
import os.path as osp
from typing import List, Mapping, Optional, Sequence, Union

import numpy as np

from mmseg.apis import MMSegInferencer
from mmseg.structures import SegDataSample
from mmrsfusion.io import check_outputs, write_png
from mmrsfusion.visualization import MultiModalSegLocalVisualizer
from .inference import (ModalityInput, build_test_pipeline, init_model,
                        prepare_tile)

#: One tile: modality name -> file or (H, W[, bands]) array; names left
#: out are absent.
Tile = Mapping[str, ModalityInput]


class MultiModalInferencer(MMSegInferencer):
    """:class:`mmseg.apis.MMSegInferencer` for the models of this package.

    Called as mmseg's inferencer, with tiles given as dicts::

        inferencer = MultiModalInferencer(CONFIG, CHECKPOINT)
        result = inferencer({'rgb': 'a.tif', 'dsm': 'a_dsm.tif'},
                            out_dir='out')
        result['predictions']  # (H, W) class indices

    What differs from mmseg's, and nothing else:

    - the model is built and loaded by :func:`init_model` (spec checked,
      frozen weights re-attached from their file);
    - each input is a dict modality name -> file or array, names left out
      absent, run through the config's test pipeline by the machinery of
      :func:`inference_model` (so a prediction is the one
      :func:`inference_model` and ``tools/test.py`` give);
    - pictures are those of ``tools/test.py --show-dir``
      (:class:`MultiModalSegLocalVisualizer`: every modality, then the
      prediction, side by side; ``opacity`` is unused, nothing is
      overlaid);
    - ``out_dir`` files are named by the tile's stem (that of its first
      modality given as a file; mmseg's counter name for arrays only):
      ``vis/STEM.png`` and ``pred/STEM.png``, a palette PNG of the class
      indices; an existing file is not replaced unless ``overwrite``.

    Args:
        model (str | Config): Config file or object.
        weights (str, optional): Checkpoint.
        classes, palette, dataset_name, device, scope: As
            :class:`MMSegInferencer`.
        overwrite (bool): Replace existing output files.
        cfg_options (dict, optional): Config overrides, as
            ``--cfg-options``.
    """

    def __init__(self,
                 model,
                 weights: Optional[str] = None,
                 classes: Optional[Union[str, List]] = None,
                 palette: Optional[Union[str, List]] = None,
                 dataset_name: Optional[str] = None,
                 device: Optional[str] = None,
                 scope: Optional[str] = 'mmseg',
                 overwrite: bool = False,
                 cfg_options: Optional[dict] = None) -> None:
        self.overwrite = overwrite
        self.cfg_options = cfg_options
        super().__init__(model, weights, classes, palette, dataset_name,
                         device, scope)
        if not isinstance(self.visualizer, MultiModalSegLocalVisualizer):
            raise ValueError(
                f'visualizer: expected MultiModalSegLocalVisualizer (that of '
                f'default_runtime.py), got '
                f'{type(self.visualizer).__name__}')

    def _init_model(self, cfg, weights: Optional[str], device: str = 'cpu'):
        return init_model(cfg, weights, device, self.cfg_options)

    def _init_pipeline(self, cfg) -> List:
        return build_test_pipeline(self.model)

    def _inputs_to_list(self, inputs: Union[Tile, Sequence[Tile]]) -> list:
        if isinstance(inputs, Mapping):
            return [inputs]
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f'inputs: expected a dict modality name -> file or array, or '
                f'a list of them, got {type(inputs).__name__}')
        return list(inputs)

    def preprocess(self, inputs: List[Tile], batch_size: int = 1, **kwargs):
        """Yield batches of ``batch_size`` tiles, each packed by
        :func:`prepare_tile` (errors name ``inputs[i]``)."""
        packed = (prepare_tile(self.model, self.pipeline, tile, f'inputs[{i}]')
                  for i, tile in enumerate(inputs))
        yield from map(self.collate_fn,
                       self._get_chunk_data(packed, batch_size))

    def _name(self, pred: SegDataSample, index: int, suffix: str) -> str:
        stem = pred.get('tile_stem')
        return f'{stem}.png' if stem else f'{index:08d}_{suffix}.png'

    def _write(self, path: str, array: np.ndarray, tile: Optional[Tile],
               palette=None) -> None:
        inputs = {} if tile is None else {
            f'inputs {name}': src
            for name, src in tile.items() if isinstance(src, str)
        }
        check_outputs({'out_dir': path}, inputs, self.overwrite)
        write_png(path, array, palette)

    def visualize(self,
                  inputs: List[Tile],
                  preds: List[SegDataSample],
                  return_vis: bool = False,
                  show: bool = False,
                  wait_time: int = 0,
                  img_out_dir: str = '',
                  opacity: float = 0.8,
                  with_labels: Optional[bool] = True
                  ) -> Optional[List[np.ndarray]]:
        """Draw each tile's modalities and prediction side by side, (H,
        (M + 1) W, 3) uint8 RGB; show, write to ``img_out_dir/STEM.png``
        and / or return them."""
        if not show and img_out_dir == '' and not return_vis:
            return None
        meta = self.model.dataset_meta
        self.visualizer.set_dataset_meta(meta.get('classes'),
                                         meta.get('palette'))
        results = []
        for tile, pred in zip(inputs, preds):
            drawn = self.visualizer.draw_panels(
                pred, draw_gt=False, sources=tile)
            name = self._name(pred, self.num_visualized_imgs, 'vis')
            if show:
                self.visualizer.show(drawn, win_name=name,
                                     wait_time=wait_time)
            if img_out_dir != '':
                self._write(osp.join(img_out_dir, name), drawn, tile)
            if return_vis:
                results.append(drawn)
            self.num_visualized_imgs += 1
        return results if return_vis else None

    def postprocess(self,
                    preds: List[SegDataSample],
                    visualization: Optional[List[np.ndarray]],
                    return_datasample: bool = False,
                    pred_out_dir: str = '') -> dict:
        """As :meth:`MMSegInferencer.postprocess`, the predictions written
        to ``pred_out_dir/STEM.png`` as palette PNGs."""
        if pred_out_dir != '':
            for i, pred in enumerate(preds):
                self._write(
                    osp.join(pred_out_dir,
                             self._name(pred, self.num_pred_imgs + i,
                                        'pred')),
                    pred.pred_sem_seg.data[0].cpu().numpy(), None,
                    self.model.dataset_meta.get('palette'))
        return super().postprocess(preds, visualization, return_datasample)
