"""One 256-colour palette for every frame of a GIF, chosen from the pixels of all of them.

A palette per frame (Pillow's default) makes two frames that differ in one cell differ in many
pixels, since each frame's colours land on slightly different entries; the GIF then stores most of
every frame again. One palette for the whole picture lets each frame store only the cells that
changed: a 30 s dashboard cast shrinks about fourfold (docs/benchmarks.md, "Animated casts").

The palette keeps the most frequent colours exactly (the flat colours of cells: backgrounds, the
heatmap's levels, bars and plot dots) and gives the other entries to Pillow's octree quantiser run
on a sample of all pixels, for the anti-aliased edges of text.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

EXACT = 96
"""Palette entries kept for the most frequent colours exactly; the rest approximate text edges."""
STRIDE = 7
"""Every 7th pixel of each frame goes into the sample (prime, so it does not follow the cell grid)."""


class PaletteSampler:
    """Collects a sample of each frame's pixels, then makes the palette."""

    def __init__(self) -> None:
        self._samples: list[np.ndarray] = []

    def add(self, picture: Image.Image) -> None:
        self._samples.append(np.asarray(picture.convert("RGB")).reshape(-1, 3)[::STRIDE])

    def palette(self) -> Image.Image:
        """A 'P' image that carries the palette, for ``Image.quantize(palette=...)``."""
        pixels = np.concatenate(self._samples)
        packed = (pixels[:, 0].astype(np.uint32) << 16) | (pixels[:, 1].astype(np.uint32) << 8) | pixels[:, 2]
        colours, counts = np.unique(packed, return_counts=True)
        frequent = colours[np.argsort(-counts, kind="stable")[:EXACT]]
        entries = [((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in frequent.tolist()]
        rest = 256 - len(entries)
        if len(colours) > len(entries):
            sample = Image.fromarray(pixels[None, :, :].astype(np.uint8), "RGB")
            octree = sample.quantize(rest, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
            flat = octree.getpalette() or []
            entries += [tuple(flat[i:i + 3]) for i in range(0, min(len(flat), 3 * rest), 3)]
        carrier = Image.new("P", (1, 1))
        carrier.putpalette([v for rgb in entries for v in rgb] + [0] * (768 - 3 * len(entries)))
        return carrier
