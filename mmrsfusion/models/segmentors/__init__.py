from .multimodal_encoder_decoder import MultiModalEncoderDecoder
from .sgma_encoder_decoder import SGMAEncoderDecoder

__all__ = ['MultiModalEncoderDecoder', 'SGMAEncoderDecoder']
