"""The MLP of bench_models.py as a module (the module-defined path: shipped with code_paths)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ModuleMLP"]


class ModuleMLP(nn.Module):
    """`depth` layers of width x width float32, as bench_models.MLP."""

    def __init__(self, width: int = 2560, depth: int = 4) -> None:
        super().__init__()
        self.width = width
        self.depth = depth
        self.layers = nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
