"""Apply photometric transforms to the optical channels of a stack only."""
from typing import List, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform, Compose

from mmseg.registry import TRANSFORMS
from mmrsfusion.utils import ModalitySpec


@TRANSFORMS.register_module()
class OpticalOnly(BaseTransform):
    """Run photometric transforms on each optical modality of the stack.

    The stacked (H, W, C) array is split by the modality spec; for every
    modality of kind ``'optical'`` its channels are handed to ``transforms``
    (e.g. mmseg's ``PhotoMetricDistortion``) as an image of their own and
    written back. All other channels (DSM, extra bands) are returned
    bit-identical. Several optical modalities get independent draws.

    mmseg's photometric transforms are written for 8-bit images (they clip
    to [0, 255] and return uint8). With ``to_uint8=True`` (default) the
    optical channels are scaled by ``255 / value_range``, rounded to uint8
    before the transforms, and scaled back to float32 after: set
    ``value_range`` to the data's range for uint16 optical (e.g. 65535 or
    2047; the loader keeps raw values). Values above ``value_range`` (beyond
    a 1 % tolerance for interpolation overshoot) raise an error instead of
    being clipped silently. Note that the round trip quantises the optical
    channels to 256 levels of ``value_range`` whenever this transform runs.

    ``PhotoMetricDistortion`` converts to HSV and so needs exactly 3
    channels: for a 4-band optical modality (RGBIR) pass ``channels=[0, 1,
    2]`` to distort the RGB bands only. The channel order (RGB as stored,
    while mmseg assumes BGR) does not matter for it: brightness, contrast and
    saturation are symmetric in the channels and the hue shift is drawn
    symmetrically around 0.

    Required keys: ``img``; ``modalities`` (the spec object, set by
    :class:`LoadMultiModalImageFromFiles`) unless given here.
    Modified keys: ``img`` (a new array).

    Args:
        transforms (list[dict]): Transform configs (TRANSFORMS registry).
        modalities (ModalitySpec | list[dict], optional): The modality spec
            (the dataset hands its own down); defaults to
            ``results['modalities']``.
        channels (Sequence[int], optional): Channel indices within each
            optical modality to transform. Defaults to all of them.
        value_range (float): Value of full scale of the optical data.
            Defaults to 255.
        to_uint8 (bool): Convert to uint8 around the transforms (needed by
            mmseg's photometric transforms). Defaults to True.
    """

    def __init__(self,
                 transforms: List[dict],
                 modalities: Union[ModalitySpec, Sequence[dict],
                                   None] = None,
                 channels: Optional[Sequence[int]] = None,
                 value_range: float = 255.,
                 to_uint8: bool = True) -> None:
        # built from mmseg's registry (which also sees mmcv's transforms), so
        # that mmseg transforms resolve without a default scope
        self.transforms = Compose([
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in transforms
        ])
        self.modalities = None if modalities is None else \
            ModalitySpec.build(modalities, 'OpticalOnly.modalities')
        self.channels = None if channels is None else \
            [int(c) for c in channels]
        if value_range <= 0:
            raise ValueError(f'OpticalOnly.value_range: expected > 0, got '
                             f'{value_range!r}')
        self.value_range = float(value_range)
        self.to_uint8 = to_uint8

    def transform(self, results: dict) -> Optional[dict]:
        spec = self.modalities
        if spec is None:
            if 'modalities' not in results:
                raise KeyError(
                    'OpticalOnly: no modality spec; give `modalities=` or '
                    'load with LoadMultiModalImageFromFiles, which sets '
                    "results['modalities']")
            spec = ModalitySpec.build(results['modalities'])
        img = results['img']
        total = spec.num_channels
        if img.ndim != 3 or img.shape[2] != total:
            raise ValueError(f'OpticalOnly: expected an (H, W, {total}) image '
                             f'for the spec {[m.name for m in spec]}, got '
                             f'shape {img.shape}')
        out = None
        for mod in spec:
            if mod.kind != 'optical':
                continue
            local = self.channels or list(range(mod.channels))
            if any(not 0 <= c < mod.channels for c in local):
                raise ValueError(f"OpticalOnly.channels {local}: out of range "
                                 f"for modality '{mod.name}' with "
                                 f'{mod.channels} channel(s)')
            idx = [mod.start + c for c in local]
            sub = img[..., idx]
            if self.to_uint8:
                peak = float(sub.max()) if sub.size else 0.
                if peak > self.value_range * 1.01:
                    raise ValueError(
                        f"OpticalOnly: modality '{mod.name}' has values up "
                        f'to {peak:g} above value_range={self.value_range:g}'
                        f'; set value_range to the data range (e.g. 65535 '
                        f'for raw uint16)')
                scale = 255. / self.value_range
                sub = np.clip(np.rint(sub * scale), 0, 255).astype(np.uint8)
            inner = dict(results)
            inner['img'] = sub
            inner = self.transforms(inner)
            if inner is None:
                return None
            new = np.asarray(inner['img'])
            if new.ndim == 2:
                new = new[..., None]
            if new.shape != (img.shape[0], img.shape[1], len(idx)):
                raise ValueError(
                    f'OpticalOnly is for photometric transforms, but '
                    f'{self.transforms} changed the shape of '
                    f"'{mod.name}' from {sub.shape} to {new.shape}")
            new = new.astype(np.float32)
            if self.to_uint8:
                new = new / np.float32(scale)
            if out is None:
                out = img.copy()
            out[..., idx] = new
        if out is not None:
            results['img'] = out
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(transforms={self.transforms}, '
                f'channels={self.channels}, value_range={self.value_range}, '
                f'to_uint8={self.to_uint8})')
