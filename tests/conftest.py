"""Fixtures shared by test folders."""
import pytest


@pytest.fixture
def tiny_demo_options(tmp_path):
    """``--cfg-options`` that shrink a MoBaNet demo config for a CPU test:
    a random width-32, depth-4 ViT (no frozen checkpoint), training batches
    of 2 read in the main process, ``work_dir`` ``tmp_path``, no custom
    hooks."""
    width = 32
    return {
        'work_dir': str(tmp_path),
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'model.backbone.arch': dict(embed_dims=width, num_layers=4,
                                    num_heads=2,
                                    feedforward_channels=4 * width),
        'model.backbone.frozen_checkpoint': None,
        'model.neck.in_channels': [width] * 4,
        'custom_hooks': [],
    }
