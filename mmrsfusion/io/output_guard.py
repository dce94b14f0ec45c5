"""The one check every writer of user-named files makes before writing:
no output is an input or another output, and no existing file is replaced
without ``overwrite``."""
import os.path as osp
from typing import Mapping, Optional


def check_outputs(outputs: Mapping[str, Optional[str]],
                  inputs: Optional[Mapping[str, str]] = None,
                  overwrite: bool = False) -> None:
    """Refuse to write ``outputs`` over an input, over each other, or over
    an existing file unless ``overwrite``.

    Files are compared by their real paths (links and ``..`` resolved).

    Args:
        outputs (dict): Option that names it (e.g. ``'-o'``) -> output
            path; None entries are not written and skipped.
        inputs (dict, optional): Option (e.g. ``'--input dsm'``) -> input
            path.
        overwrite (bool): Allow replacing an existing output file.

    Raises:
        ValueError: Naming both options and the file.
    """
    seen = {osp.realpath(path): option
            for option, path in (inputs or {}).items()}
    kinds = dict.fromkeys(seen, 'input')
    for option, path in outputs.items():
        if path is None:
            continue
        real = osp.realpath(path)
        if real in seen:
            raise ValueError(
                f'{option} {path} is also the {kinds[real]} {seen[real]}: '
                f'give each output its own file')
        if osp.lexists(path) and not overwrite:
            raise ValueError(f'{option} {path} exists; pass --overwrite '
                             f'(overwrite=True) to replace it')
        seen[real], kinds[real] = option, 'output'
