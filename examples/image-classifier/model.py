"""The seed's CNN: two conv layers, dropout, `view(-1, 64 * 8 * 8)`, for 3x32x32 images."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Net"]


class Net(nn.Module):
    """conv(3->32) pool conv(32->64) pool dropout fc(4096->512) dropout fc(512->classes)."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.25) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.dropout = dropout
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.drop = nn.Dropout(dropout)
        self.fc1 = nn.Linear(64 * 8 * 8, 512)
        self.fc2 = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a batch of 3x32x32 images."""
        x = self.pool(F.relu(self.conv1(x)))  # 32x16x16
        x = self.pool(F.relu(self.conv2(x)))  # 64x8x8
        x = self.drop(x)
        x = x.view(-1, 64 * 8 * 8)
        x = self.drop(F.relu(self.fc1(x)))
        return self.fc2(x)
