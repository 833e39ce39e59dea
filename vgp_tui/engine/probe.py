"""GradientProbe: per-layer gradient norms, measured with fused kernels and kept on the device.

Called after ``backward()`` and before clipping and the optimizer step, it computes every parameter's
gradient norm with one ``torch._foreach_norm`` (as ``clip_grad_norm_`` does), folds them into
per-layer norms with one ``index_add_``, and the total norm from the same numbers, so clipping costs
no second pass over the gradients. Nothing is copied to the host here: the trainer stacks the results
and copies a whole batch of steps at once, so there is no ``.item()`` per layer and, on CUDA, no
host-device synchronisation per step. NaN and Inf are kept as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

LayerGroups = Sequence[tuple[str, Sequence[nn.Parameter]]]


def default_layer_groups(model: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    """One layer per module that owns trainable parameters directly, in registration order.

    Models in ``vgp_tui.models`` define ``layer_groups()`` (to merge a layer with its batch norm, say);
    this is the fallback for anyone else's model.
    """
    groups = []
    for name, module in model.named_modules():
        params = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if params:
            groups.append((name or type(module).__name__, params))
    return groups


class GradientProbe:
    """Measures per-layer and total gradient norms of a model's parameters.

    Args:
        model: the network; its ``layer_groups()`` is used when it has one.
        groups: explicit ``[(layer name, [parameters])]``, input side first, instead of the model's.
    """

    def __init__(self, model: nn.Module | None = None, groups: LayerGroups | None = None) -> None:
        if groups is None:
            if model is None:
                raise ValueError("GradientProbe needs a model or layer groups")
            layer_groups = getattr(model, "layer_groups", None)
            groups = layer_groups() if callable(layer_groups) else default_layer_groups(model)
        self.layer_names: tuple[str, ...] = tuple(name for name, _ in groups)
        self.params: list[nn.Parameter] = [p for _, params in groups for p in params]
        if not self.params:
            raise ValueError("the model has no trainable parameters to probe")
        layer_of_param = [i for i, (_, params) in enumerate(groups) for _ in params]
        device = self.params[0].device
        self._layer_index = torch.tensor(layer_of_param, device=device)
        self._zeros = torch.zeros(len(self.layer_names), device=device)

    @property
    def num_layers(self) -> int:
        return len(self.layer_names)

    def grads(self) -> list[torch.Tensor]:
        """The gradients that exist now (a parameter unused in this step has none)."""
        return [p.grad for p in self.params if p.grad is not None]

    def measure(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(layer_norms, total_norm)`` as device tensors: shape (layers,) and a scalar.

        A parameter without a gradient counts as zero; a layer whose gradient is NaN or Inf shows
        NaN or Inf (the moment of explosion is the lesson, so it is never dropped).
        """
        params = self.params
        grads = [p.grad for p in params]
        if any(g is None for g in grads):
            present = [i for i, g in enumerate(grads) if g is not None]
            if not present:
                return self._zeros.clone(), self._zeros.sum()
            index = self._layer_index[present]
            grads = [grads[i] for i in present]
        else:
            index = self._layer_index
        norms = torch._foreach_norm(grads)  # type: ignore[arg-type]  # one fused pass
        squares = torch.stack(norms).float().square()
        layer = self._zeros.index_add(0, index, squares).sqrt()
        total = squares.sum().sqrt()
        return layer, total

    def clip(self, total_norm: torch.Tensor, max_norm: float) -> torch.Tensor:
        """Scale the gradients so their total norm is at most ``max_norm``; returns "did it clip".

        Same rule as ``torch.nn.utils.clip_grad_norm_`` (scale by max_norm / (total + 1e-6) when that is
        below 1), but reusing ``total_norm`` from :meth:`measure` instead of a second pass. Stays on the
        device: the scale is a tensor, never a Python float.
        """
        scale = (max_norm / (total_norm + 1e-6)).clamp(max=1.0)
        grads = self.grads()
        if grads:
            torch._foreach_mul_(grads, scale.to(grads[0].dtype))
        return total_norm > max_norm
