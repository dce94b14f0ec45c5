"""Trainable means requires_grad: checkpoints of an MMLoRA model keep the
PEFT wrappers' weights that live inside the frozen encoder, drop the frozen
weights, and load back (re-attaching them from the pretrained file) to
identical predictions. Full size: the MMLoRA ViT-B checkpoint holds ~3.2M
parameters."""
import copy
import os
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmrsfusion  # noqa: F401
from mmrsfusion.engine.hooks import load_trainable_checkpoint, strip_frozen
from mmrsfusion.models.peft import merge_lora, peft_wrappers

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MMLORA = osp.join(ROOT, 'configs', 'mfnet', 'sam_vitb_mmlora_vaihingen.py')
init_default_scope('mmseg')


def build(frozen_checkpoint, tiny=True):
    model = copy.deepcopy(Config.fromfile(MMLORA).model)
    model.backbone.frozen_checkpoint = frozen_checkpoint
    if tiny:
        model.backbone.arch = dict(embed_dims=32, num_layers=4, num_heads=2,
                                   feedforward_channels=64,
                                   global_attn_indexes=[1, 3])
        model.backbone.out_indices = [3]
        model.backbone.encoder_cfg = dict(img_size=64, window_size=4,
                                          out_channels=32)
        model.neck.in_channels = 32
        model.decode_head.in_channels = [32] * 4
        model.decode_head.channels = 16
        model.decode_head.num_heads = 2
    return revert_sync_batchnorm(MODELS.build(model))


def test_round_trip_keeps_lora_and_reattaches_frozen(tmp_path):
    torch.manual_seed(0)
    pretrained = build(None)
    with torch.no_grad():
        for p in pretrained.backbone.encoder.parameters():
            p.normal_(0, 0.2)
    frozen_file = str(tmp_path / 'sam_tiny_converted.pth')
    torch.save({'state_dict': {
        k[len('backbone.encoder.'):]: v
        for k, v in pretrained.state_dict().items()
        if k in {f'backbone.{f}' for f in pretrained.backbone.frozen_keys()}
    }}, frozen_file)

    trained = build(frozen_file)
    trained.init_weights()
    with torch.no_grad():  # "trained" PEFT and head weights
        for m in peft_wrappers(trained):
            m.lora_b.normal_(0, 0.2)
            if m.cross_modal:
                m.mix.uniform_()
    checkpoint = {'state_dict': trained.state_dict(), 'meta': {}}
    strip_frozen(checkpoint, trained)
    kept = set(checkpoint['state_dict'])
    trainable = {n for n, p in trained.named_parameters() if p.requires_grad}
    assert trainable <= kept  # every trainable tensor, wherever it lives
    assert any(k.startswith('backbone.encoder.layers.') and
               k.endswith('lora_b') for k in kept)
    assert not kept & {f'backbone.{k}'
                       for k in trained.backbone.frozen_keys()}
    path = str(tmp_path / 'iter_1.pth')
    torch.save(checkpoint, path)

    fresh = build(frozen_file)  # random LoRA, frozen not loaded yet
    load_trainable_checkpoint(fresh, path)
    x = torch.rand(1, 4, 256, 256)
    trained.eval(), fresh.eval()
    with torch.no_grad():
        expected = trained(x, mode='tensor')
        out = fresh(x, mode='tensor')
    assert torch.equal(out, expected)
    # merged LoRA inference gives the same prediction
    assert merge_lora(fresh) == 4  # the qkv LoRAs
    with torch.no_grad():
        torch.testing.assert_close(fresh(x, mode='tensor'), expected,
                                   rtol=1e-4, atol=1e-5)


def test_mmlora_vitb_checkpoint_holds_about_3_2m_parameters(tmp_path):
    model = build('pretrain/sam_vit_b_converted.pth', tiny=False)
    checkpoint = {'state_dict': model.state_dict(), 'meta': {}}
    strip_frozen(checkpoint, model)
    state = checkpoint['state_dict']
    params = sum(state[n].numel() for n, p in model.named_parameters()
                 if n in state)
    assert params == 1_032_240 + 1_643_136 + 515_102  # 3,190,478
    assert set(state) >= {n for n, p in model.named_parameters()
                          if p.requires_grad}
    path = str(tmp_path / 'mmlora_vitb.pth')
    torch.save(checkpoint, path)
    assert 12e6 < os.path.getsize(path) < 14e6  # ~13 MB of float32
