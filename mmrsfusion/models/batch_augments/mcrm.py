"""MCRM: modality-complementary random masking of a training batch."""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from mmseg.registry import MODELS
from mmrsfusion.utils import Modality, ModalitySpec

FillValue = Union[float, Sequence[float], Dict[str, Union[float,
                                                          Sequence[float]]]]


def balanced_split(num: int, parts: int) -> List[int]:
    """Split ``num`` into ``parts`` counts differing by at most one, the
    larger counts last: ``balanced_split(3, 2) == [1, 2]`` (MoBaNet gives
    ``floor(N / 2)`` to the first modality and the rest to the second)."""
    base, rem = divmod(num, parts)
    return [base + (i >= parts - rem) for i in range(parts)]


def check_range(name: str, value: Sequence[float], low: float,
                high: float) -> Tuple[float, float]:
    """Validate a ``(min, max)`` pair lying within ``[low, high]``."""
    if len(value) != 2 or not low <= value[0] <= value[1] <= high:
        raise ValueError(f'{name}: expected (min, max) with {low} <= min '
                         f'<= max <= {high}, got {value!r}')
    return float(value[0]), float(value[1])


def resolve_targets(spec: ModalitySpec,
                    mask_modalities: Optional[Sequence[str]],
                    field: str) -> Tuple[Modality, ...]:
    """The modalities of ``spec`` that may be masked, in spec order."""
    names = spec.names if mask_modalities is None else spec.check_names(
        mask_modalities, f'{field}.mask_modalities')
    targets = tuple(m for m in spec if m.name in names)
    if len(targets) < 2:
        raise ValueError(f'{field}: needs at least 2 maskable modalities '
                         f'(a sample is masked in one of them and keeps the '
                         f'others), got {[m.name for m in targets]}')
    return targets


def resolve_fill(fill_value: FillValue, mod: Modality,
                 field: str) -> List[float]:
    """Per-channel fill values of ``mod``."""
    if isinstance(fill_value, dict):
        fill_value = fill_value.get(mod.name, 0.)
    if isinstance(fill_value, (int, float)):
        return [float(fill_value)] * mod.channels
    fill_value = [float(v) for v in fill_value]
    if len(fill_value) != mod.channels:
        raise ValueError(f'{field}.fill_value ({mod.name}): expected 1 or '
                         f'{mod.channels} values, got {len(fill_value)}')
    return fill_value


def rect_size(height: int, width: int, area: float,
              aspect: float) -> Tuple[int, int]:
    """Height and width of a rectangle covering ``area`` of the image with
    ``width / height == aspect``, rounded and clipped to the image."""
    h = round((area * height * width / aspect)**0.5)
    w = round((area * height * width * aspect)**0.5)
    return min(max(h, 1), height), min(max(w, 1), width)


@MODELS.register_module()
class MCRM(nn.Module):
    """Modality-complementary random masking, applied to a whole batch.

    Meant for the data preprocessor's ``batch_augments`` (training only,
    after normalisation): ``inputs, data_samples = mcrm(inputs,
    data_samples)`` with ``inputs`` the stacked (B, C_total, H, W) batch.

    ``N = floor(ratio * B)`` samples are drawn at random and split between
    the maskable modalities as evenly as possible, in spec order, the first
    modalities getting the smaller shares (two modalities: ``floor(N / 2)``
    masked in the first, the rest in the second, as in MoBaNet). A chosen
    sample gets ``num_rects`` rectangles set to ``fill_value`` in the
    channels of its one modality; every other channel, and every other
    sample, is left untouched, so no sample loses all its modalities. Each
    rectangle covers a fraction ``~ U(area_range)`` of the image, has
    ``width / height ~ U(aspect_range)`` (rounded, clipped to the image)
    and a uniform position.

    Args:
        modalities (ModalitySpec | list[dict]): The modality spec (the
            model's, handed down by the data preprocessor).
        ratio (float): Fraction of the batch that is masked. Defaults to
            0.25.
        num_rects (int): Rectangles per masked sample (K). Defaults to 1.
        area_range (tuple[float]): Defaults to (0.1, 0.3).
        aspect_range (tuple[float]): Defaults to (0.5, 2.0).
        fill_value (float | list[float] | dict): Value written into masked
            pixels, in normalised units: a number, one value per channel,
            or a dict from modality name to either (missing names: 0).
            Defaults to 0.
        mask_modalities (list[str], optional): Names of the modalities that
            may be masked (at least 2). Defaults to all of the spec.
        seed (int, optional): Seed of a private ``torch.Generator``; by
            default the global torch RNG is used (seeded by the runner).
    """

    def __init__(self,
                 modalities: Union[ModalitySpec, Sequence[dict]],
                 ratio: float = 0.25,
                 num_rects: int = 1,
                 area_range: Sequence[float] = (0.1, 0.3),
                 aspect_range: Sequence[float] = (0.5, 2.0),
                 fill_value: FillValue = 0.,
                 mask_modalities: Optional[Sequence[str]] = None,
                 seed: Optional[int] = None):
        super().__init__()
        if not 0 <= ratio <= 1:
            raise ValueError(f'MCRM.ratio: expected a value in [0, 1], got '
                             f'{ratio!r}')
        if num_rects < 1:
            raise ValueError(f'MCRM.num_rects: expected >= 1, got '
                             f'{num_rects!r}')
        spec = ModalitySpec.build(modalities, 'MCRM.modalities')
        self.targets = resolve_targets(spec, mask_modalities, 'MCRM')
        self.num_channels = spec.num_channels
        self.ratio = ratio
        self.num_rects = num_rects
        self.area_range = check_range('MCRM.area_range', area_range, 0, 1)
        self.aspect_range = check_range('MCRM.aspect_range', aspect_range,
                                        1e-6, float('inf'))
        self.fills = {
            m.name: resolve_fill(fill_value, m, 'MCRM')
            for m in self.targets
        }
        self.generator = None if seed is None else \
            torch.Generator().manual_seed(seed)

    def _uniform(self, low: float, high: float,
                 generator: Optional[torch.Generator]) -> float:
        return low + (high - low) * torch.rand(
            (), generator=generator).item()

    def sample(
        self,
        batch_size: int,
        height: int,
        width: int,
        generator: Optional[torch.Generator] = None
    ) -> List[Tuple[int, Modality, List[Tuple[int, int, int, int]]]]:
        """Draw the masking plan of one batch.

        Returns:
            list[tuple]: ``(sample index, modality, rects)`` per masked
            sample, each rect being ``(top, left, height, width)``.
        """
        generator = generator if generator is not None else self.generator
        # floor, robust to float error (0.29 * 100 = 28.999...)
        num = math.floor(self.ratio * batch_size + 1e-9)
        chosen = torch.randperm(batch_size, generator=generator)[:num]
        plan, start = [], 0
        for mod, count in zip(self.targets,
                              balanced_split(num, len(self.targets))):
            for idx in chosen[start:start + count].tolist():
                rects = []
                for _ in range(self.num_rects):
                    h, w = rect_size(
                        height, width,
                        self._uniform(*self.area_range, generator),
                        self._uniform(*self.aspect_range, generator))
                    top = int(torch.randint(
                        height - h + 1, (), generator=generator))
                    left = int(torch.randint(
                        width - w + 1, (), generator=generator))
                    rects.append((top, left, h, w))
                plan.append((idx, mod, rects))
            start += count
        return plan

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[list] = None,
                generator: Optional[torch.Generator] = None):
        """Mask a batch.

        Args:
            inputs (Tensor): (B, C_total, H, W), normalised.
            data_samples (list, optional): Returned unchanged.
            generator (torch.Generator, optional): Overrides the module's
                generator for this call.

        Returns:
            tuple: ``(masked inputs, data_samples)``; the input tensor is
            not modified in place.
        """
        if inputs.dim() != 4 or inputs.shape[1] != self.num_channels:
            raise ValueError(f'MCRM: expected (B, {self.num_channels}, H, W) '
                             f'inputs, got {tuple(inputs.shape)}')
        plan = self.sample(inputs.shape[0], inputs.shape[2], inputs.shape[3],
                           generator)
        if not plan:
            return inputs, data_samples
        inputs = inputs.clone()
        for idx, mod, rects in plan:
            fill = inputs.new_tensor(self.fills[mod.name]).view(-1, 1, 1)
            for top, left, h, w in rects:
                inputs[idx, mod.slice, top:top + h, left:left + w] = fill
        return inputs, data_samples

    def extra_repr(self) -> str:
        return (f'modalities={[m.name for m in self.targets]}, '
                f'ratio={self.ratio}, num_rects={self.num_rects}, '
                f'area_range={self.area_range}, '
                f'aspect_range={self.aspect_range}')
