"""The modality spec a checkpoint was trained with, in its ``meta``."""
from mmrsfusion.utils import ModalitySpec
from .serialization import InvalidCheckpointError

#: Key of the spec (:meth:`ModalitySpec.to_dict`) in ``checkpoint['meta']``.
META_KEY = 'modalities'


def save_checkpoint_spec(checkpoint: dict, spec: ModalitySpec) -> None:
    """Record ``spec`` in ``checkpoint['meta']``."""
    checkpoint.setdefault('meta', {})[META_KEY] = spec.to_dict()


def check_checkpoint_spec(checkpoint: dict, spec: ModalitySpec,
                          filename: str) -> None:
    """Refuse a checkpoint whose recorded spec differs from ``spec`` (the
    config's): its weights would read channels in another layout or with
    other statistics. A checkpoint without one (written before specs were
    recorded) is accepted.

    Raises:
        InvalidCheckpointError: naming both specs and the file.
    """
    saved = (checkpoint.get('meta') or {}).get(META_KEY)
    if saved is None:
        return
    message = spec.differs(
        ModalitySpec(saved, f'{filename}: meta.{META_KEY}'),
        'the config (model.modalities)', f'the checkpoint {filename}')
    if message:
        raise InvalidCheckpointError(
            f'{message}; test with the config the checkpoint was trained '
            f'with, or state that spec as the config\'s `modalities`')
