"""A deep fully connected net: the deep-sigmoid and deep-relu scenarios.

``depth`` hidden layers of ``width`` units, then a linear head producing logits. Back-propagation
multiplies the gradient by each layer's Jacobian ``diag(act'(z)) W``. With the sigmoid, ``act' <= 0.25``,
so the gradient shrinks geometrically towards the input (Glorot & Bengio 2010, "Understanding the
difficulty of training deep feedforward neural networks"). With ReLU, ``act'`` is 0 or 1 and the scale
of ``W`` decides: He et al. (2015), "Delving deep into rectifiers", derive ``Var(W) = 2 / fan_in`` to
keep it constant. The remedies are switches here:

* ``activation``: sigmoid, tanh or relu.
* ``init``: default, xavier, he or poor (see ``POOR_STD``).
* ``batchnorm``: BatchNorm1d after each hidden Linear, before the activation (Ioffe & Szegedy 2015).
* ``skip``: ``x = x + act(bn(linear(x)))`` around each hidden layer whose input and output widths
  match (He et al. 2016), so the gradient has an identity path past every layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vgp_tui.data.specs import Task

from .configs import MLPConfig
from .init import INIT_SCHEMES, ProbeDefaults, check_choice, init_weight, parameters_of

ACTIVATIONS: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}

POOR_STD = 0.25
"""Standard deviation of the ``poor`` init, the same for every layer whatever its size.

At the presets' width 64, He's std is ``sqrt(2/64) = 0.177``; 0.25 is ``sqrt(2)`` times that, so every
ReLU layer doubles the variance of the activations going forward and of ``dL/da`` going back. Over 20
layers that is ``2**10``, about 1000x in norm: enough to reach inf/NaN within a few steps (measured:
docs/benchmarks.md, "The `poor` init of the deep MLP"). A fixed std ignores ``fan_in``: a wider net would
explode faster, a narrower one would vanish instead, which is exactly the mistake He init corrects.

Note that with zero biases a ReLU net is positively homogeneous, so at init the per-layer *weight*
gradient norms stay about level even here (the forward activations grow as fast as ``dL/da`` does);
the explosion shows as every layer's gradient being orders of magnitude too large, then non-finite.
"""

_STATS_LABELS = {
    "relu": "dead ReLU fraction",
    "sigmoid": "saturated sigmoid fraction",
    "tanh": "saturated tanh fraction",
}


_SIGMOID_SATURATED = math.sqrt(0.24)
"""|s - 1/2| beyond which s(1 - s) < 0.01."""


class HiddenLayer(nn.Module):
    """``act(bn(linear(x)))``; the residual addition and statistics are the owning net's business."""

    def __init__(self, d_in: int, d_out: int, activation: str, batchnorm: bool, skip: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.norm: nn.Module = nn.BatchNorm1d(d_out) if batchnorm else nn.Identity()
        self.act = ACTIVATIONS[activation]()
        # A residual needs matching shapes; the first layer (features -> width) usually has none.
        self.residual = skip and d_in == d_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.linear(x)))  # (B, d_out)


class DeepMLP(ProbeDefaults, nn.Module):
    """``depth`` x ``width`` MLP classifier with activation, init, batch norm and skip switches."""

    def __init__(
        self,
        config: MLPConfig,
        task: Task,
        activation: str = "sigmoid",
        init: str = "default",
        batchnorm: bool = False,
        skip: bool = False,
    ) -> None:
        super().__init__()
        self.activation = check_choice("activation", activation, tuple(ACTIVATIONS))
        self.init = check_choice("init", init, INIT_SCHEMES)
        (features,) = task.input_shape
        widths = [features] + [config.width] * config.depth
        self.layers = nn.ModuleList(
            HiddenLayer(d_in, d_out, activation, batchnorm, skip) for d_in, d_out in zip(widths, widths[1:])
        )
        self.head = nn.Linear(config.width, task.classes)
        self.track_stats = False
        self._stats: torch.Tensor | None = None
        self._init_weights(init)

    def _init_weights(self, scheme: str) -> None:
        # Every Linear, the head included; batch norm keeps its (1, 0) affine init.
        for module in self.modules():
            if isinstance(module, nn.Linear):
                init_weight(module.weight, module.bias, scheme, poor_std=POOR_STD)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, features)
        outputs: list[torch.Tensor] | None = [] if self.track_stats else None
        for layer in self.layers:
            a = layer(x)  # (B, width)
            if outputs is not None:
                outputs.append(a.detach())
            x = x + a if layer.residual else a
        self._stats = self._stuck_fractions(outputs) if outputs is not None else None
        return self.head(x)  # (B, classes)

    @torch.no_grad()
    def _stuck_fractions(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """Per layer, the fraction of units whose activation passes (almost) no gradient, and 0 for
        the head: one (layers + 1,) tensor, no sync.

        Every hidden layer has the same width, so the test runs once on the stacked (layers, B,
        width) copy, in place and in floating point: a comparison into a new bool tensor costs four
        times as much on the CPU. Measured on the 20-layer preset (batch 128): about 0.1 ms per
        tracked forward, against 0.6-1 ms for four small kernels per layer."""
        a = torch.stack(outputs)  # a copy: free to overwrite
        if self.activation == "relu":
            # A unit is dead when it outputs 0 for every example: its weights get no gradient at all.
            stuck = a.eq_(0).amin(dim=1).mean(dim=1)
        elif self.activation == "sigmoid":
            # s(1 - s) < 0.01, i.e. |s - 1/2| > sqrt(0.24) (s < ~0.0101 or s > ~0.9899): 25x below
            # the sigmoid's best slope.
            stuck = a.sub_(0.5).abs_().gt_(_SIGMOID_SATURATED).mean(dim=(1, 2))
        else:
            stuck = a.abs_().gt_(0.99).mean(dim=(1, 2))  # tanh' = 1 - a^2 < ~0.02
        return torch.cat([stuck, stuck.new_zeros(1)])  # the head has no activation

    @property
    def stats_label(self) -> str:  # type: ignore[override]
        return _STATS_LABELS[self.activation]

    def activation_stats(self) -> torch.Tensor | None:
        """Stuck-unit fraction per layer group (0 for the head) from the last forward, if it tracked."""
        return self._stats

    def layer_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        groups = [(f"layer{i}", parameters_of(layer)) for i, layer in enumerate(self.layers, start=1)]
        return groups + [("head", parameters_of(self.head))]
