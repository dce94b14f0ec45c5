"""SAM done right for MFNet: an official SAM file loads into a backbone
with PEFT wrappers injected (strict: every frozen weight, the wrapped
linears' and the relative-position tables included), and the loaded rel-pos
tables take effect (the reference code never loads them)."""
import os.path as osp

import torch
from mmengine.config import Config
from test_model_converters import official_sam, tiny_sam

import mmrsfusion  # noqa: F401
from mmrsfusion.models.backbones import convert_sam

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MMLORA = Config.fromfile(
    osp.join(ROOT, 'configs', '_base_', 'models',
             'mfnet_sam_vitb_mmlora.py')).model.backbone.peft


def test_official_sam_file_loads_into_a_peft_backbone(tmp_path):
    official = official_sam()
    path = str(tmp_path / 'sam_vit_t_0000.pth')
    torch.save(official, path)
    model = tiny_sam(peft=MMLORA, aux_embed='shared', out_indices=[3],
                     tap_transform='neck', frozen_checkpoint=path)
    model.init_weights()  # strict
    converted = convert_sam(official)
    state = model.encoder.state_dict()
    for key, value in converted.items():
        assert torch.equal(state[key], value), key
    assert state['layers.1.attn.rel_pos_h'].abs().sum() > 0
    x = torch.rand(1, 4, 64, 64)
    model.eval()
    with torch.no_grad():
        out = model(x)[0]
        # the reference's state (by key: the attention may be wrapped)
        for key, value in model.encoder.state_dict().items():
            if key.endswith(('attn.rel_pos_h', 'attn.rel_pos_w')):
                value.zero_()
        without = model(x)[0]
    assert (out - without).abs().max() > 1e-3
