"""Finding the transforms of a dataset's pipeline."""
from typing import Iterator, List, Tuple


def pipeline_transforms(dataset) -> Iterator[Tuple[str, object]]:
    """``(name, transform)`` of every transform of ``dataset``'s pipeline,
    through dataset wrappers (``.dataset`` / ``.datasets``) and transforms
    that hold ``transforms`` (e.g. ``OpticalOnly``); ``name`` says where,
    e.g. ``'dataset.pipeline.transforms.0'``."""
    stack: List[Tuple[str, object]] = [('dataset', dataset)]
    while stack:
        name, obj = stack.pop()
        if obj is None:
            continue
        inner = getattr(obj, 'datasets', None)
        if isinstance(inner, (list, tuple)):
            stack += [(f'{name}.datasets.{i}', d) for i, d in enumerate(inner)]
        if getattr(obj, 'dataset', None) is not None:
            stack.append((f'{name}.dataset', obj.dataset))
        if getattr(obj, 'pipeline', None) is not None:
            stack.append((f'{name}.pipeline', obj.pipeline))
        transforms = getattr(obj, 'transforms', None)
        if isinstance(transforms, (list, tuple)):
            for i, t in enumerate(transforms):
                yield f'{name}.transforms.{i}', t
                stack.append((f'{name}.transforms.{i}', t))
