"""A small U-Net for the filled head mask (PyTorch; training only).

Fully convolutional: the same weights run on the whole image (coarse pass) and on
a head-centred crop (fine pass). Input: 1 x H x W, standardised grey levels;
output: 1 x H x W logits of "inside the head ellipse". H and W must be multiples
of 2**depth (2**(depth + 1) with a strided stem).

With ``stem_stride=2`` a strided convolution halves the view first, the U-Net works at half
resolution and its logits are upsampled bilinearly to the input's size: about a quarter of
the arithmetic (0.23 against 0.85 GMAC per 160 px view), for CPUs (issue 12's speed bar).
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
    stem_stride : {1, 2}
        2: a 3x3 convolution of stride 2 first, logits upsampled x2 at the end.
    """

    def __init__(self, channels=(16, 32, 48, 64, 96), stem_stride: int = 1):
        super().__init__()
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, not {stem_stride}")
        self.channels = tuple(int(c) for c in channels)
        self.depth = len(self.channels) - 1
        self.stem_stride = stem_stride
        cin = 1
        self.stem = None
        if stem_stride == 2:
            self.stem = nn.Sequential(nn.Conv2d(1, self.channels[0], 3, 2, 1, bias=False),
                                      nn.BatchNorm2d(self.channels[0]), nn.ReLU(inplace=True))
            cin = self.channels[0]
        self.down = nn.ModuleList()
        for c in self.channels:
            self.down.append(_block(cin, c))
            cin = c
        self.up = nn.ModuleList()
        for i in range(self.depth - 1, -1, -1):
            self.up.append(_block(self.channels[i + 1] + self.channels[i], self.channels[i]))
        self.head = nn.Conv2d(self.channels[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stem is not None:
            x = self.stem(x)
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
        x = self.head(x)
        if self.stem is not None:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return x
