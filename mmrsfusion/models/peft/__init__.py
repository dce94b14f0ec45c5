from .attn_adapter import AttnAdapter
from .bottleneck_adapter import BottleneckAdapter
from .cpia import CPIA
from .ffn_adapter import FFNAdapter
from .injection import inject_peft, merge_lora, peft_wrappers, unmerge_lora
from .lora_linear import LoRALinear
from .per_modality import PerModality
from .pre_block_wrapper import PreBlockWrapper
from .base import run_shared_block
from .wrapper import BasePEFTWrapper

__all__ = [
    'AttnAdapter', 'BasePEFTWrapper', 'BottleneckAdapter', 'CPIA',
    'FFNAdapter', 'LoRALinear', 'PerModality', 'PreBlockWrapper',
    'inject_peft', 'merge_lora', 'peft_wrappers', 'run_shared_block',
    'unmerge_lora'
]
