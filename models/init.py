"""What every model offers the trainer, and the weight initialisation schemes the ``init`` remedy picks.

Initialisation decides whether a deep net starts with gradients of a sensible size:

* ``default``: whatever PyTorch gives the layer (for ``nn.Linear`` and ``nn.Conv2d`` a uniform
  distribution of standard deviation ``1/sqrt(3 * fan_in)``, too small to keep a deep ReLU net's signal).
* ``xavier``: Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural
  networks": variance ``2 / (fan_in + fan_out)``, which keeps the variance of activations and of
  gradients roughly constant through linear (or tanh, near 0) layers.
* ``he``: He, Zhang, Ren & Sun (2015), "Delving deep into rectifiers": variance ``2 / fan_in``, which
  compensates for ReLU zeroing half of its inputs.
* ``poor``: a deliberately bad fixed-scale Gaussian; each family documents its own and why.

Each family applies its scheme in one place (its ``_init_weights``); this module holds the parts they
share. No textual, no training code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

INIT_SCHEMES = ("default", "xavier", "he", "poor")
"""The values of the ``init`` remedy, in its cycling order."""


def check_choice(what: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else a ValueError naming the allowed values."""
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(choices)}")
    return value  # type: ignore[return-value]


def init_weight(
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    scheme: str,
    *,
    poor_std: float | None = None,
    he_mode: str = "fan_in",
) -> None:
    """Initialise one layer's ``weight`` (and zero its ``bias``) by ``scheme``; ``default`` leaves both.

    ``he`` is ``kaiming_normal_`` for ReLU (std ``sqrt(2 / fan)``, fan picked by ``he_mode``); ``poor`` is
    ``N(0, poor_std**2)`` whatever the layer's size, which is what makes it poor.
    """
    check_choice("init", scheme, INIT_SCHEMES)
    if scheme == "default":
        return
    if scheme == "xavier":
        nn.init.xavier_uniform_(weight)
    elif scheme == "he":
        nn.init.kaiming_normal_(weight, mode=he_mode, nonlinearity="relu")
    elif poor_std is None:
        raise ValueError("this layer has no poor init of the fixed-scale kind")
    else:
        nn.init.normal_(weight, 0.0, poor_std)
    if bias is not None:
        nn.init.zeros_(bias)


def parameters_of(*modules: nn.Module | None) -> list[nn.Parameter]:
    """The trainable parameters of ``modules`` (``None`` and parameter-less modules give none)."""
    return [p for m in modules if m is not None for p in m.parameters() if p.requires_grad]


def stacked_norms(grads: Iterable[torch.Tensor], dim: tuple[int, ...]) -> torch.Tensor:
    """L2 norm of each gradient over ``dim`` of their stack, on the device and without ``.item()``."""
    return torch.linalg.vector_norm(torch.stack(list(grads)), dim=dim)


class ProbeDefaults:
    """What the trainer may ask of any model, answered "nothing to show"; a model overrides what it has.

    The trainer sets ``track_time`` / ``track_stats`` before the forward of a sampled step and reads
    ``time_gradient_norms()`` / ``activation_stats()`` after backward. Both return device tensors (never
    Python floats) so the trainer can stack many steps and copy them to the host at once.
    """

    track_time: bool = False
    """Keep what the per-time-step gradient view needs during the next forward (recurrent models)."""
    track_stats: bool = False
    """Measure activation statistics during the next forward (models with a ``stats_label``)."""
    time_view: str | None = None
    """Label of the per-time-step gradient view, e.g. ``"dL/dh_t"``; None where there is none."""
    stats_label: str | None = None
    """What ``activation_stats()`` measures, e.g. ``"dead ReLU fraction"``; None where nothing."""

    def time_gradient_norms(self) -> torch.Tensor | None:
        """(T,) gradient norm per time step after backward of a tracked forward; None here."""
        return None

    def activation_stats(self) -> torch.Tensor | None:
        """One value per ``layer_groups()`` entry from the last tracked forward; None here."""
        return None

    def layer_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        """``[(name, parameters), ...]``, input side first, each trainable parameter exactly once."""
        raise NotImplementedError
