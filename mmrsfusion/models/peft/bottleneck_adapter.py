"""The bottleneck adapter ``a(x) = fc2(GELU(fc1(x)))`` of the adapter
family (MFNet's Adapter / MMAdapter)."""
import torch
import torch.nn as nn


class BottleneckAdapter(nn.Module):
    """``Linear(C -> int(C * ratio)) -> GELU -> Linear(-> C)``, no skip.

    Args:
        embed_dims (int): Token width C.
        ratio (float): Bottleneck ratio. Defaults to 0.25 (MFNet).

    Shapes: ``(..., C) -> (..., C)``. Parameters: ``2 * C * d + d + C``
    with ``d = int(C * ratio)`` (295,872 for C = 768).
    """

    def __init__(self, embed_dims: int, ratio: float = 0.25):
        super().__init__()
        hidden = int(embed_dims * ratio)
        self.fc1 = nn.Linear(embed_dims, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))
