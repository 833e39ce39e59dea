"""The seed's sentiment classifier: embedding, stacked (bi)directional recurrent layers, dropout, head.

Hochreiter & Schmidhuber (1997), "Long short-term memory": a vanilla tanh RNN multiplies the gradient
by its recurrent Jacobian at every step, so the signal of a word far from where the prediction is read
fades away; the LSTM's additive cell state carries it across the sequence. Data: IMDB reviews (Maas
et al. 2011, "Learning word vectors for sentiment analysis") or an offline stand-in whose deciding
token is far from the ends. Bidirectional layers: Schuster & Paliwal (1997).

The head reads the final hidden state of each direction of the last layer: the forward direction's
after the last token, the backward direction's after the first token (the seed's
``cat(hidden[-2], hidden[-1])``; equal to ``output[:, -1, :H]`` and ``output[:, 0, H:]``). Padding
tokens (id 0) are read like any other token: no packing, so the time axis stays whole for the view.

The recurrent layers are torch's fused ``nn.LSTM`` / ``nn.RNN`` (tanh) / ``nn.GRU`` (cuDNN on a GPU),
so the hidden states of each step are not tensors of the graph. The per-time-step view therefore
reports the gradient at each step's *input*: ``dL/dx_t`` at the embedding output, which shows how far
back (and forward) from the read-out points the loss still reaches.

One departure from PyTorch's defaults: an LSTM's gate biases start with the chrono initialisation
(Tallec & Ollivier 2018, "Can recurrent neural networks warp time?"; ``init.chrono_init``): forget
biases ``log(U(1, T - 1))`` for a sequence of ``T`` tokens, input biases their negatives, in every layer
and direction. It generalises the usual forget-gate bias of 1 (Gers, Schmidhuber & Cummins 2000;
Jozefowicz, Zaremba & Sutskever 2015), which keeps a cell's memory for only a few steps; the deciding
word here is 80 or more steps from either end. Measurements: docs/presets.md.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from vgp_tui.data.specs import Task

from .configs import SentimentConfig
from .init import ProbeDefaults, check_choice, chrono_init, parameters_of

RECURRENT: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

_LAYER_OF = re.compile(r"_l(\d+)(?:_reverse)?$")  # weight_ih_l1_reverse -> layer 1


class SentimentLSTM(ProbeDefaults, nn.Module):
    """Token ids (B, T) -> logits (B, classes); ``cell`` picks the recurrent layer type."""

    time_view = "dL/dx_t"

    def __init__(self, config: SentimentConfig, task: Task, cell: str = "lstm") -> None:
        super().__init__()
        self.cell_type = check_choice("cell", cell, tuple(RECURRENT))
        self.directions = 2 if config.bidirectional else 1
        self.embedding = nn.Embedding(task.vocab, config.embed, padding_idx=0)
        self.rnn = RECURRENT[cell](
            config.embed,
            config.hidden,
            num_layers=config.layers,
            bidirectional=config.bidirectional,
            batch_first=True,
            # Dropout between stacked layers only exists with two or more (torch warns otherwise).
            dropout=config.dropout if config.layers > 1 else 0.0,
        )  # nn.RNN's nonlinearity defaults to tanh
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(config.hidden * self.directions, task.classes)
        self.track_time = False
        self._embedded: torch.Tensor | None = None
        self._init_weights(task.input_shape[0])

    def _init_weights(self, length: int) -> None:
        if self.cell_type != "lstm":
            return
        for name, bias_ih in self.rnn.named_parameters():
            if name.startswith("bias_ih"):  # one per layer and direction, with its bias_hh twin
                bias_hh = getattr(self.rnn, name.replace("bias_ih", "bias_hh"))
                chrono_init(bias_ih, bias_hh, self.rnn.hidden_size, length)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # tokens: (B, T) int64
        embedded = self.embedding(tokens)  # (B, T, E)
        if self.track_time and embedded.requires_grad:
            embedded.retain_grad()  # its .grad will be dL/dx_t for every step at once
            self._embedded = embedded
        else:
            self._embedded = None
        _, final = self.rnn(self.dropout(embedded))  # final: (layers * D, B, H); LSTM: (h_n, c_n)
        h_n = final[0] if isinstance(final, tuple) else final
        last_layer = h_n[-self.directions :]  # (D, B, H): forward's after token T, backward's after 1
        hidden = torch.cat(tuple(last_layer), dim=1)  # (B, D * H)
        return self.fc(self.dropout(hidden))  # (B, classes)

    def time_gradient_norms(self) -> torch.Tensor | None:
        """(T,): ``||dL/dx_t||`` over batch and embedding dims, after backward of a tracked forward."""
        if self._embedded is None or self._embedded.grad is None:
            return None
        return torch.linalg.vector_norm(self._embedded.grad, dim=(0, 2))

    def layer_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        layers: dict[int, list[nn.Parameter]] = {}
        for name, p in self.rnn.named_parameters():
            match = _LAYER_OF.search(name)
            assert match is not None, name
            layers.setdefault(int(match.group(1)), []).append(p)
        recurrent = [(f"rnn.l{k}", layers[k]) for k in sorted(layers)]  # both directions together
        return [("embedding", parameters_of(self.embedding)), *recurrent, ("head", parameters_of(self.fc))]
