"""Mixed-precision training on GPU and CPU through one optimizer wrapper."""
from typing import Union

import torch
from mmengine.device import is_cuda_available
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from mmseg.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class MixedPrecisionOptimWrapper(AmpOptimWrapper):
    """mmengine's :class:`AmpOptimWrapper` that also runs on the CPU.

    mmengine 0.10's ``AmpOptimWrapper`` refuses to be built without a GPU.
    On a GPU this class *is* it (autocast to ``dtype``, default float16,
    or bfloat16; loss scaling as configured). Without one it autocasts the
    forward to bfloat16 on the CPU (the only reduced precision CPU autocast
    offers) and steps like :class:`OptimWrapper`: bfloat16 has float32's
    exponent range, so no loss scaling is needed; ``loss_scale`` is then
    ignored. Parameters, gradients and optimizer state stay float32.

    Args:
        loss_scale (str | float | dict): As for ``AmpOptimWrapper`` (GPU
            only). Defaults to ``'dynamic'``.
        dtype (str | torch.dtype, optional): ``'float16'`` or
            ``'bfloat16'`` on a GPU (None: float16); on the CPU None or
            ``'bfloat16'``.
        **kwargs: :class:`OptimWrapper` arguments.

    Raises:
        ValueError: A dtype other than bfloat16 on the CPU.
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None,
                 **kwargs):
        if is_cuda_available():
            super().__init__(loss_scale=loss_scale, dtype=dtype, **kwargs)
            return
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, dtype)
        if dtype not in (None, torch.bfloat16):
            raise ValueError(
                f'optim_wrapper.dtype: CPU mixed precision is bfloat16 only, '
                f'got {dtype}; set dtype=\'bfloat16\' (or leave it unset)')
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        self.loss_scaler = None
        self.cast_dtype = torch.bfloat16

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        if self.loss_scaler is None:
            return OptimWrapper.backward(self, loss, **kwargs)
        return super().backward(loss, **kwargs)

    def step(self, **kwargs) -> None:
        if self.loss_scaler is None:
            return OptimWrapper.step(self, **kwargs)
        return super().step(**kwargs)

    def state_dict(self) -> dict:
        if self.loss_scaler is None:
            return OptimWrapper.state_dict(self)
        return super().state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        if self.loss_scaler is None:
            # a GPU run's scaler state is not needed to resume on the CPU
            state_dict.pop('loss_scaler', None)
            return OptimWrapper.load_state_dict(self, state_dict)
        return super().load_state_dict(state_dict)
