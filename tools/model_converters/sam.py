"""Convert an official SAM checkpoint (image encoder only) to
MultiStreamViT's encoder keys.

    python tools/model_converters/sam.py sam_vit_b_01ec64.pth \
        pretrain/sam_vit_b_converted.pth

Key mapping: ``mmrsfusion/models/backbones/vit_checkpoint.py``.
"""
from mmrsfusion.models.backbones.vit_checkpoint import main

if __name__ == '__main__':
    main('sam')
