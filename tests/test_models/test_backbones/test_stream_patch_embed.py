"""StreamPatchEmbed (the per-modality patch embeddings of MultiStreamViT)
and the family table's frozen encoder, on a tiny DINOv2-style encoder
(width 32, patch 8)."""
import pytest
import torch
import torch.nn.functional as F

from mmrsfusion.models.backbones import StreamPatchEmbed
from mmrsfusion.models.backbones.vit_families import build_frozen_encoder
from mmrsfusion.utils import ModalitySpec

TINY = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def encoder():
    torch.manual_seed(0)
    enc = build_frozen_encoder('dinov2', TINY, dict(img_size=32,
                                                    patch_size=8))
    with torch.no_grad():
        enc.patch_embed.projection.weight.normal_()
        enc.patch_embed.projection.bias.normal_()
    return enc


def mods(*channels):
    names = ['rgb', 'dsm', 'sar']
    return ModalitySpec(
        [dict(name=n, channels=c) for n, c in zip(names, channels)])


def frozen_tokens(enc, x):
    """The frozen embedding by hand: pad bottom/right, conv, flatten."""
    p = 8
    x = F.pad(x, (0, -x.shape[-1] % p, 0, -x.shape[-2] % p))
    return enc.patch_embed.projection(x).flatten(2).transpose(1, 2)


def test_build_frozen_encoder():
    enc = encoder()
    assert not any(p.requires_grad for p in enc.parameters())
    assert enc.patch_embed.projection.stride == (8, 8)
    with pytest.raises(ValueError, match=r"arch for sam: expected one of "
                       r"\('base', 'large', 'huge'\)"):
        build_frozen_encoder('sam', 'small')
    with pytest.raises(ValueError, match='family: expected one of'):
        build_frozen_encoder('dinov3', 'base')


@pytest.mark.parametrize('mode', ['replicate', 'shared'])
def test_pads_and_embeds_each_modality(mode):
    enc = encoder()
    embed = StreamPatchEmbed(mods(3, 1), enc.patch_embed.projection, mode)
    embed.init_from(enc.patch_embed.projection)
    assert list(embed) == ([] if mode == 'shared' else ['dsm'])
    x = torch.randn(2, 4, 30, 17)
    tokens, hw = embed(x, enc.patch_embed)
    assert hw == (4, 3) and tokens.shape == (2, 2, 12, 32)
    rgb, dsm = x[:, :3], x[:, 3:].expand(-1, 3, -1, -1)
    torch.testing.assert_close(tokens[0], frozen_tokens(enc, rgb))
    # replicate: a trainable copy, equal to the frozen one at init
    torch.testing.assert_close(tokens[1], frozen_tokens(enc, dsm))
    trainable = [p for p in embed.parameters() if p.requires_grad]
    assert len(trainable) == (0 if mode == 'shared' else 2)


def test_native_init_keeps_a_constant_input_response():
    enc = encoder()
    embed = StreamPatchEmbed(mods(3, 1, 2), enc.patch_embed.projection,
                             'native')
    embed.init_from(enc.patch_embed.projection)
    assert embed['sar'].weight.shape == (32, 2, 8, 8)
    x = torch.cat([torch.randn(1, 3, 16, 16),
                   torch.full((1, 3, 16, 16), 0.7)], dim=1)
    tokens, _ = embed(x, enc.patch_embed)
    constant = frozen_tokens(enc, torch.full((1, 3, 16, 16), 0.7))
    torch.testing.assert_close(tokens[1], constant)  # dsm, 1 channel
    torch.testing.assert_close(tokens[2], constant)  # sar, 2 channels


def test_errors():
    proj = encoder().patch_embed.projection
    with pytest.raises(ValueError, match=r'modalities\[0\] \(rgb\) uses the '
                       'pretrained patch embedding and needs 3 channels'):
        StreamPatchEmbed(mods(4, 1), proj)
    with pytest.raises(ValueError, match="use aux_embed='native'"):
        StreamPatchEmbed(mods(3, 2), proj, 'shared')
    with pytest.raises(ValueError, match='aux_embed: expected one of'):
        StreamPatchEmbed(mods(3, 1), proj, 'zeros')
