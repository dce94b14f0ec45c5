from .amp_optim_wrapper import MixedPrecisionOptimWrapper
from .summary_constructor import SummaryOptimWrapperConstructor

__all__ = ['MixedPrecisionOptimWrapper', 'SummaryOptimWrapperConstructor']
