from .hard_pixel_loss import HardPixelCrossEntropyLoss

__all__ = ['HardPixelCrossEntropyLoss']
