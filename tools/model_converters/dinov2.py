"""Convert an official DINOv2 checkpoint to MultiStreamViT's encoder keys.

    python tools/model_converters/dinov2.py dinov2_vitb14_pretrain.pth \
        pretrain/dinov2_vitb14_converted.pth

Key mapping: ``mmrsfusion/models/backbones/vit_checkpoint.py``.
"""
from mmrsfusion.models.backbones.vit_checkpoint import main

if __name__ == '__main__':
    main('dinov2')
