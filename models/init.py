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

from collections.abc import Sequence

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


def chrono_init(bias_ih: torch.Tensor, bias_hh: torch.Tensor, hidden: int, t_max: int) -> None:
    """Chrono initialisation of one LSTM layer's gate biases (Tallec & Ollivier 2018, "Can recurrent
    neural networks warp time?"): forget bias ``b_f ~ log(U(1, t_max - 1))``, input bias ``-b_f``.

    Each unit then starts with a forget gate ``sigmoid(b_f)`` that keeps its cell state for about
    ``exp(b_f)`` steps, spread up to ``t_max``, so the cell-state gradient reaches back as far as the
    data's dependencies. It generalises the forget-gate bias of 1 (Gers, Schmidhuber & Cummins 2000;
    Jozefowicz, Zaremba & Sutskever 2015), which keeps it ~1/(1 - sigmoid(1)) ~ 4 steps: too short
    for the recurrent presets (docs/presets.md has the measurements). Gate order is torch's (input,
    forget, cell, output); the effective bias is ``bias_ih + bias_hh``, so ``bias_hh`` gets 0 there.
    Draws from the global RNG, which the trainer seeds.
    """
    forget = torch.log(torch.empty(hidden).uniform_(1.0, max(2.0, t_max - 1.0)))
    with torch.no_grad():
        bias_ih[hidden : 2 * hidden] = forget
        bias_ih[:hidden] = -forget
        bias_hh[: 2 * hidden] = 0.0


def parameters_of(*modules: nn.Module | None) -> list[nn.Parameter]:
    """The trainable parameters of ``modules`` (``None`` and parameter-less modules give none)."""
    return [p for m in modules if m is not None for p in m.parameters() if p.requires_grad]


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
