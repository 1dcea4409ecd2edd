"""A small U-Net for the filled head mask (PyTorch; training only).

Fully convolutional: the same weights run on the whole image (coarse pass) and on
a head-centred crop (fine pass). Input: 1 x H x W, standardised grey levels;
output: 1 x H x W logits of "inside the head ellipse". H and W must be multiples
of 2**depth.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net with ``len(channels) - 1`` down-sampling steps.

    Parameters
    ----------
    channels : sequence of int
        Feature channels per level, shallow to deep.
    """

    def __init__(self, channels=(16, 32, 48, 64, 96)):
        super().__init__()
        self.channels = tuple(int(c) for c in channels)
        self.depth = len(self.channels) - 1
        self.down = nn.ModuleList()
        cin = 1
        for c in self.channels:
            self.down.append(_block(cin, c))
            cin = c
        self.up = nn.ModuleList()
        for i in range(self.depth - 1, -1, -1):
            self.up.append(_block(self.channels[i + 1] + self.channels[i], self.channels[i]))
        self.head = nn.Conv2d(self.channels[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < self.depth:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)
