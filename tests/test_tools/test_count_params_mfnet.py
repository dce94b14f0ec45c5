"""tools/analysis_tools/count_params.py on the MFNet configs: the paper's /
reference's trainable counts exactly (MMAdapter ViT-B encoder 14,201,880,
MMLoRA 1,032,240 / 2,752,608 / 4,587,648, DFM 1,643,136, UNetFormer decoder
515,102; frozen SAM encoders without prompt encoder / mask decoder)."""
import pytest
from test_count_params import count_params

SAM_B, SAM_L, SAM_H = 89_670_912, 308_278_272, 637_026_048


@pytest.mark.parametrize('config,backbone,frozen,neck', [
    ('sam_vitb_mmadapter_vaihingen', 14_201_880, SAM_B, 1_643_136),
    ('sam_vitb_mmlora_vaihingen', 1_032_240, SAM_B, 1_643_136),
    ('sam_vitl_mmlora_potsdam', 2_752_608, SAM_L, 1_643_136),
    ('sam_vith_mmlora_vaihingen', 4_587_648, SAM_H, 1_643_136),
    # Table IV baselines: standard Adapter / LoRA per modality (late
    # fusion) and on the optical stream alone (DFM with one modality)
    ('sam_vitb_adapter_dsm_late_vaihingen', 4 * 295_872 * 12, SAM_B,
     1_643_136),
    ('sam_vitb_lora_dsm_late_vaihingen', 1_032_240 - 48, SAM_B, 1_643_136),
    ('sam_vitb_adapter_vaihingen', 2 * 295_872 * 12, SAM_B, 821_568),
    ('sam_vitb_lora_vaihingen', (1_032_240 - 48) // 2, SAM_B, 821_568),
])
def test_mfnet_counts(config, backbone, frozen, neck, capsys, monkeypatch):
    rows = {r[0]: r[1:] for r in count_params(
        f'configs/mfnet/{config}.py', capsys, monkeypatch)}
    assert rows['backbone'] == (backbone, frozen)
    assert rows['neck'] == (neck, 0)
    assert rows['decode_head'] == (515_102, 0)
    assert set(rows) == {'data_preprocessor', 'backbone', 'neck',
                         'decode_head', 'total'}
