"""A recurrent regressor read out from its last hidden state: the rnn-clipping scenario.

The adding problem (Hochreiter & Schmidhuber 1997, "Long short-term memory") feeds a sequence of
(value, marker) pairs and asks for the sum of the two marked values, so the answer depends on inputs
far back in time. Back-propagation through time multiplies ``dL/dh_t`` by the recurrent Jacobian
``diag(1 - h^2) W_hh`` once per step: it explodes when ``W_hh`` is large and vanishes when small
(Bengio, Simard & Frasconi 1994; Pascanu, Mikolov & Bengio 2013, "On the difficulty of training
recurrent neural networks"). The LSTM's additive cell state, and the GRU's (Cho et al. 2014)
interpolated state, give the gradient a path that is not squashed at every step.

The per-time-step view reports ``dL/dx_t``, the gradient at each step's *input*, for every cell: the
same quantity whatever the cell, so the rnn and lstm curves compare like with like. (``dL/dh_t`` would
not: an LSTM also carries its memory in the cell state ``c_t``, a path ``dL/dh_t`` leaves out.) It is
the sentiment preset's quantity too.

One departure from PyTorch's defaults: an LSTM's gate biases start with the chrono initialisation
(Tallec & Ollivier 2018, ``init.chrono_init``) for dependencies as long as the sequence, under every
``init``. It is the setting under which the LSTM's gradient reaches back over the 50 steps of the
adding problem: with the usual forget-gate bias of 1 (Gers et al. 2000; Jozefowicz et al. 2015) the
preset's LSTM measured dL/dx_1 / dL/dx_50 of 2e-4 to 8e-4 after 300 steps (vanishing), with chrono 0.08
to 0.2 (docs/presets.md). With PyTorch's near-zero bias the forget gate starts near 0.5 and halves the
cell-state gradient at every step back.

The loop is unrolled in Python rather than a fused ``nn.RNN``, one code path for every cell. It steps
torch's own ``nn.LSTMCell`` / ``nn.GRUCell``. For the vanilla ``nn.RNNCell`` (tanh), the scenario's
hot path, it applies the cell's weights itself: the input projection of all time steps is
one matmul before the loop, leaving one ``addmm`` and one ``tanh`` per step (measured ~1.4x faster on
a CPU than calling the cell; a test checks the result equals calling the cell step by step). Doing the
same for the gated cells measured no faster than torch's C++ cell math, so they call the cell.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vgp_tui.data.specs import Task

from .configs import SequenceConfig
from .init import INIT_SCHEMES, ProbeDefaults, check_choice, chrono_init, init_weight, parameters_of

CELLS: dict[str, type[nn.Module]] = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}

POOR_RECURRENT_GAIN = 2.0
"""The ``poor`` init sets each gate's recurrent matrix to ``orthogonal * 2``: every singular value is 2.

A tanh RNN's gradient can then grow by up to 2x per step back (Pascanu et al.: explosion needs the
largest singular value above 1 / max tanh' = 1). Measured on the adding problem with T = 50 and H = 64,
its first total gradient norm is about 10^3 times an LSTM's at default init (10^2.8 to 10^3.4 over
eight seeds), and without clipping SGD at lr 0.05 goes non-finite within ~30 steps through growing
spikes of the norm and the loss. Gain 3 gives ~10^6 and no learning even when clipped; 1.5 only ~20x.
The gated cells tolerate the same matrices (an LSTM's norm stays within ~2x of its default-init norm),
which is the scenario's point. Input weights and biases keep PyTorch's default under ``poor``.
"""


class SequenceRegressor(ProbeDefaults, nn.Module):
    """A single recurrent cell unrolled over time, and a linear head on the last hidden state."""

    time_view = "dL/dx_t"

    def __init__(self, config: SequenceConfig, task: Task, cell: str = "rnn", init: str = "default") -> None:
        super().__init__()
        self.cell_type = check_choice("cell", cell, tuple(CELLS))
        self.init = check_choice("init", init, INIT_SCHEMES)
        self.hidden_size = config.hidden
        features = task.input_shape[-1]
        self.cell = CELLS[cell](features, config.hidden)  # nn.RNNCell's nonlinearity defaults to tanh
        self.regress = task.kind == "regress"
        self.head = nn.Linear(config.hidden, 1 if self.regress else task.classes)
        self.track_time = False
        self._inputs: torch.Tensor | None = None
        """The (B, T, F) input of the last tracked forward, whose ``.grad`` is dL/dx_t; None otherwise."""
        self._init_weights(init)
        if cell == "lstm":
            chrono_init(self.cell.bias_ih, self.cell.bias_hh, config.hidden, task.input_shape[0])

    def _init_weights(self, scheme: str) -> None:
        if scheme == "default":
            return
        cell, hidden = self.cell, self.hidden_size
        # Each gate is its own linear map, so each gate's block is initialised on its own fans. "he"
        # keeps its ReLU gain here (std sqrt(2/H)): a recurrent spectral radius near sqrt(2), so it
        # is no cure for a tanh RNN; xavier's (std 1/sqrt(H)) is near 1.
        for w_ih, w_hh in zip(cell.weight_ih.split(hidden), cell.weight_hh.split(hidden)):
            if scheme == "poor":
                nn.init.orthogonal_(w_hh, gain=POOR_RECURRENT_GAIN)
            else:
                init_weight(w_ih, None, scheme)
                init_weight(w_hh, None, scheme)
        if scheme != "poor":
            nn.init.zeros_(cell.bias_ih)
            nn.init.zeros_(cell.bias_hh)
            init_weight(self.head.weight, self.head.bias, scheme)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, F)
        cell = self.cell
        self._inputs = None
        if self.track_time and torch.is_grad_enabled():
            # The data carry no gradient; a leaf copy that asks for one gives dL/dx_t at backward
            # without changing any parameter's gradient. An input that already has a graph keeps it.
            x = x if x.requires_grad else x.detach().requires_grad_()
            x.retain_grad()
            self._inputs = x
        h = x.new_zeros(x.shape[0], self.hidden_size)  # (B, H)
        c = h  # the LSTM's cell state
        if self.cell_type == "rnn":
            # Lean path: every step's input projection (and both biases) in one matmul up front, so a
            # step is one addmm and one tanh; ~1.4x faster than calling nn.RNNCell on a CPU.
            inputs = F.linear(x, cell.weight_ih, cell.bias_ih + cell.bias_hh)  # (B, T, H)
            w_hh = cell.weight_hh.t()  # (H, H)
            steps = inputs.unbind(1)  # T x (B, H)
        else:
            steps = x.unbind(1)  # T x (B, F); torch's cells run their gate math in C++, as fast
        for x_t in steps:
            if self.cell_type == "rnn":
                h = torch.tanh(torch.addmm(x_t, h, w_hh))  # tanh(W_ih x_t + b + W_hh h)
            elif self.cell_type == "lstm":
                h, c = cell(x_t, (h, c))
            else:
                h = cell(x_t, h)
        out = self.head(h)  # (B, 1) or (B, classes)
        return out.squeeze(-1) if self.regress else out  # (B,) for regression

    def time_gradient_norms(self) -> torch.Tensor | None:
        """(T,): ``||dL/dx_t||`` over batch and input features, after backward of a tracked forward."""
        if self._inputs is None or self._inputs.grad is None:
            return None
        return torch.linalg.vector_norm(self._inputs.grad, dim=(0, 2))

    def layer_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        cell = self.cell
        return [
            ("cell.input", [cell.weight_ih, cell.bias_ih]),
            ("cell.recurrent", [cell.weight_hh, cell.bias_hh]),
            ("head", parameters_of(self.head)),
        ]
