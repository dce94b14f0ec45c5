"""``python -m mmrsfusion COMMAND ...``: the ``mmrsfusion`` command (e.g. for
``torchrun -m mmrsfusion train CONFIG --launcher pytorch``)."""
from mmrsfusion.cli import main

main()
