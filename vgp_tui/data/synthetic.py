"""Data sets generated in-process: the two synthetic tasks and the offline stand-ins for CIFAR-10 and IMDB.

Every generator draws from its own ``torch.Generator`` seeded with ``seed``, so the same seed gives the
same tensors and the global RNG is left alone (the trainer's own seeding stays reproducible).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vgp_tui.data.dataset import Dataset
from vgp_tui.data.specs import AddingSpec, Cifar10Spec, ImdbSpec, SpiralsSpec, Task

SPIRAL_TURNS = 1.0
"""How far each arm winds around the centre; one full turn interleaves the arms so that no straight
cut separates them, yet a healthy MLP learns them."""

SENTIMENT_DEFAULT_SAMPLES = 25_000
"""Stand-in reviews when the spec says 0 (all): as many as the IMDB training split."""
SENTIMENT_MAX_VOCAB = 1000
"""The stand-in needs few distinct words; a small vocabulary keeps the embedding table small."""
PAD, UNKNOWN, GOOD, BAD = 0, 1, 2, 3
"""Token ids of the stand-in: pad and unknown as in the IMDB vocabulary, then the two sentiment words;
every id from FIRST_FILLER up is a filler word that says nothing about the label."""
FIRST_FILLER = 4
SENTIMENT_BAND = (0.4, 0.6)
"""Where the one deciding word sits, as fractions of the sequence: the middle fifth, so that it is at
least 40% of the sequence away from either end. The sentiment preset is bidirectional and reads the
final state of each direction; a word near the start would be only a few steps from the backward
direction's final state and a vanilla RNN would not need to carry it far."""

CIFAR_STANDIN_DEFAULT_SAMPLES = 5000
CIFAR_CLASSES = 10
_TEMPLATE_GRID = 8
"""Class templates and nuisance patterns are random ``_TEMPLATE_GRID`` x ``_TEMPLATE_GRID`` grids
upsampled to image size: low spatial frequencies, like the coarse colour layout of a photo."""
_MAX_SHIFT = 8
"""Each image shows its class template shifted by up to this many pixels in each direction, so a
single linear template match is not enough and convolutions help."""
_NUISANCE = 1.2
_PIXEL_NOISE = 0.8
"""Scales of each image's own low-frequency pattern and of its pixel noise, relative to the template.
With these, at 5000 images, a small convnet reaches about 80% held-out accuracy in 600 Adam steps and
a linear classifier fits the training images but generalises worse: learnable, not trivial."""


def spirals(spec: SpiralsSpec, seed: int = 0) -> Dataset:
    """Interleaved 2-D spirals, one arm per class, with Gaussian noise; inputs standardised.

    A point at position ``t`` in [0, 1) along arm ``k`` lies at radius ``t`` and angle
    ``2*pi*(k/classes + SPIRAL_TURNS*t)``, plus Gaussian noise of standard deviation ``spec.noise``
    (in units of the outermost radius). Classes are balanced to within one example.
    """
    g = torch.Generator().manual_seed(seed)
    n, k = spec.samples, spec.classes
    labels = (torch.arange(n) % k)[torch.randperm(n, generator=g)]
    t = torch.rand(n, generator=g)
    angle = 2 * math.pi * (labels.float() / k + SPIRAL_TURNS * t)
    points = t[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)  # (N, 2)
    points = points + spec.noise * torch.randn(n, 2, generator=g)
    x = (points - points.mean(0)) / points.std(0).clamp_min(1e-12)
    return Dataset(x.float(), labels, Task("classify", (2,), classes=k), "spirals (generated)", True)


def adding_problem(spec: AddingSpec, seed: int = 0) -> Dataset:
    """The adding problem (Hochreiter & Schmidhuber 1997; as set in Le, Jaitly & Hinton 2015).

    ``x`` is (N, T, 2): channel 0 holds values drawn uniformly from [0, 1], channel 1 is 1 at exactly
    two positions, one in the first half (``t < T // 2``) and one in the second, and 0 elsewhere.
    The target is the sum of the two marked values, a float in [0, 2).
    """
    g = torch.Generator().manual_seed(seed)
    n, length = spec.samples, spec.length
    half = length // 2
    values = torch.rand(n, length, generator=g)
    first = torch.randint(0, half, (n,), generator=g)
    second = torch.randint(half, length, (n,), generator=g)
    rows = torch.arange(n)
    marks = torch.zeros(n, length)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    x = torch.stack([values, marks], dim=2)  # (N, T, 2)
    y = values[rows, first] + values[rows, second]
    return Dataset(x, y, Task("regress", (length, 2)), "adding problem (generated)", True)


def long_range_sentiment(spec: ImdbSpec, seed: int = 0) -> Dataset:
    """The offline stand-in for IMDB: the label is decided by ONE word far from both ends.

    Each sequence is ``spec.length`` ids of filler words drawn uniformly from
    ``FIRST_FILLER .. V-1`` (``V = min(spec.vocab, SENTIMENT_MAX_VOCAB)``), carrying no label signal,
    except one position inside ``SENTIMENT_BAND`` that holds ``GOOD`` (label 1) or ``BAD`` (label 0).
    Pad (0) and unknown (1) are reserved and never drawn. ``spec.samples`` = 0 makes
    ``SENTIMENT_DEFAULT_SAMPLES`` sequences.
    """
    g = torch.Generator().manual_seed(seed)
    n = spec.samples or SENTIMENT_DEFAULT_SAMPLES
    length = spec.length
    vocab = min(spec.vocab, SENTIMENT_MAX_VOCAB)
    tokens = torch.randint(FIRST_FILLER, vocab, (n, length), generator=g)
    labels = torch.randint(0, 2, (n,), generator=g)
    low = int(SENTIMENT_BAND[0] * length)
    high = max(low + 1, int(SENTIMENT_BAND[1] * length))
    where = torch.randint(low, high, (n,), generator=g)
    tokens[torch.arange(n), where] = torch.where(labels == 1, GOOD, BAD)
    return Dataset(
        tokens,
        labels,
        Task("classify", (length,), classes=2, vocab=vocab),
        "synthetic long-range sentiment (stand-in for IMDB)",
        True,
        stand_in=True,
    )


def cifar_standin(spec: Cifar10Spec, seed: int = 0) -> Dataset:
    """A clearly labelled synthetic stand-in for CIFAR-10: (N, 3, 32, 32) images in 10 classes.

    Each class has a fixed random low-frequency colour template. An image is its class template,
    shifted by up to ``_MAX_SHIFT`` pixels and scaled by a random contrast, plus a random
    low-frequency nuisance pattern of its own and pixel noise; then every channel is standardised
    like CIFAR-10. A small convnet learns it; a single template match does not solve it.
    ``spec.samples`` = 0 makes ``CIFAR_STANDIN_DEFAULT_SAMPLES`` images.
    """
    g = torch.Generator().manual_seed(seed)
    n = spec.samples or CIFAR_STANDIN_DEFAULT_SAMPLES
    size, canvas = 32, 32 + 2 * _MAX_SHIFT
    templates = _low_frequency(torch.randn(CIFAR_CLASSES, 3, _TEMPLATE_GRID, _TEMPLATE_GRID, generator=g), canvas)
    labels = (torch.arange(n) % CIFAR_CLASSES)[torch.randperm(n, generator=g)]
    offset_x = torch.randint(0, 2 * _MAX_SHIFT + 1, (n,), generator=g)
    offset_y = torch.randint(0, 2 * _MAX_SHIFT + 1, (n,), generator=g)
    contrast = 0.5 + torch.rand(n, 1, 1, 1, generator=g)
    # every 32x32 window of every template, as a view: (classes, oy, ox, 3, 32, 32)
    windows = templates.unfold(2, size, 1).unfold(3, size, 1).permute(0, 2, 3, 1, 4, 5)
    images = windows[labels, offset_y, offset_x]  # (N, 3, 32, 32), a copy
    images.mul_(contrast)
    chunk = 4096  # bounds the temporaries at about 50 MB whatever N is
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        grid = torch.randn(m, 3, _TEMPLATE_GRID, _TEMPLATE_GRID, generator=g)
        images[start : start + m] += _NUISANCE * _low_frequency(grid, size)
        images[start : start + m] += _PIXEL_NOISE * torch.randn(m, 3, size, size, generator=g)
    mean = images.mean(dim=(0, 2, 3), keepdim=True)
    std = images.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-12)
    images.sub_(mean).div_(std)
    return Dataset(
        images,
        labels,
        Task("classify", (3, size, size), classes=CIFAR_CLASSES),
        "synthetic stand-in for CIFAR-10",
        True,
        stand_in=True,
    )


def _low_frequency(grid: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, k, k) random values -> (B, C, size, size) smooth patterns of unit-ish scale."""
    return F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)
