"""A 24-block transformer (about 150 layers, about 300 parameter tensors) recorded with the Recorder:
what a user's big model looks like on the dashboard. Tiny widths, so it trains in seconds on a CPU.

    python tests/big_model.py OUT.jsonl [--steps N] [--residual]

Without residual connections (the default here) the early blocks' gradients vanish, so the worst
layers are worth finding; with ``--residual`` the flow is healthy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from vgp_tui import GradientProbe, Recorder

BLOCKS = 24
WIDTH = 16
VOCAB = 32
CONTEXT = 12


class Block(nn.Module):
    def __init__(self, residual: bool) -> None:
        super().__init__()
        self.residual = residual
        self.ln_1 = nn.LayerNorm(WIDTH)
        self.attn = nn.MultiheadAttention(WIDTH, 2, batch_first=True)
        self.ln_2 = nn.LayerNorm(WIDTH)
        self.mlp = nn.Sequential(nn.Linear(WIDTH, 4 * WIDTH), nn.GELU(), nn.Linear(4 * WIDTH, WIDTH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        a = self.attn(h, h, h, need_weights=False)[0]
        x = x + a if self.residual else a
        m = self.mlp(self.ln_2(x))
        return x + m if self.residual else m


class Transformer(nn.Module):
    def __init__(self, residual: bool = False) -> None:
        super().__init__()
        self.wte = nn.Embedding(VOCAB, WIDTH)
        self.wpe = nn.Embedding(CONTEXT, WIDTH)
        self.h = nn.ModuleList(Block(residual) for _ in range(BLOCKS))
        self.ln_f = nn.LayerNorm(WIDTH)
        self.lm_head = nn.Linear(WIDTH, VOCAB)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1]))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def record(path: str | Path, steps: int = 40, residual: bool = False, seed: int = 0) -> GradientProbe:
    """Trains the transformer ``steps`` steps on a copy task, recording every step to ``path``."""
    torch.manual_seed(seed)
    model = Transformer(residual)
    probe = GradientProbe(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    with Recorder(path, probe, preset="transformer-24", lr=3e-3,
                  remedies={"skip": residual}) as recorder:
        for _ in range(steps):
            tokens = torch.randint(0, VOCAB, (8, CONTEXT), generator=g)
            logits = model(tokens)
            loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), tokens[:, :-1].reshape(-1))
            loss.backward()
            recorder.step(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return probe


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--residual", action="store_true")
    args = parser.parse_args()
    probe = record(args.out, args.steps, args.residual)
    print(f"wrote {args.out}: {probe.num_layers} layers, {len(probe.params)} parameter tensors", file=sys.stderr)
