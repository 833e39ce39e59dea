"""GradientProbe: per-layer gradient norms, measured with as few kernels as possible, kept on the device.

Called after ``backward()`` and before clipping and the optimizer step. It has two ways to measure,
with the same results (the norms of the same gradient values, to float rounding):

* **Flat gradient buffer** (what the trainer uses, :meth:`GradientProbe.use_flat_grads`). Before the
  first backward every probed parameter's ``.grad`` is made a view into one contiguous 2-D buffer,
  each layer occupying whole rows of it (zero padding at the end of a layer). Backward then
  accumulates into the buffer in place, and a step's measurement (:meth:`GradientProbe.sample`) is
  ONE kernel whatever the number of parameter tensors: the norm of every row. Squaring the row norms,
  folding them into layers (one ``index_add``) and taking the total and the square roots waits for
  :meth:`GradientProbe.fold`, which does it for all the steps of a flush at once. Clipping is one
  ``mul_`` on the buffer, its total the norm of the row norms. This is the layout PyTorch's
  DistributedDataParallel uses with ``gradient_as_bucket_view=True``. The price is that the gradients
  must be zeroed in place (:meth:`GradientProbe.zero_grad`, a single ``zero_()``), not set to
  ``None``: that would drop the views, and the next backward would allocate gradients outside the
  buffer (the probe notices, measures them the per-tensor way, and its ``zero_grad`` restores them).
* **Per tensor** (any model, no set-up): one ``torch._foreach_norm`` over the gradients (as
  ``clip_grad_norm_`` does) folded into layers with one ``index_add``.

Either way the total norm comes from the same numbers, so clipping costs no second pass over the
gradients, and nothing is copied to the host: the trainer keeps each step's sample on the device and
copies a whole batch of steps at once, so there is no ``.item()`` per layer and, on CUDA, no
host-device synchronisation per step. NaN and Inf are kept as they are (a layer with a NaN gradient
shows NaN, the total too). Norms are taken, and their squares summed, in float64 on every device and
whatever the gradients' dtype (:data:`MEASURING_DTYPE`): in float32 the squares of a vanishing layer's
elements below about 1e-19 are subnormal or 0, and the layer would read 0 where autograd says 1e-27;
a layer norm above about 1e19 would read Inf; bfloat16 or float16 would lose digits, or overflow, in
their own. The recorded norms are float32. On CUDA ``_foreach_norm`` converts each element as it
reads it (no copy); the flat buffer is converted into a kept float64 scratch. docs/benchmarks.md has
the measurements behind these choices.

**Wrapped and distributed models.** ``GradientProbe(model)`` looks through ``torch.compile``'s
``OptimizedModule`` and ``DistributedDataParallel`` (and ``DataParallel``) to the user's own module, so
layer names are those of the plain model (``_orig_mod.`` and ``module.`` never appear). Under DDP the
gradients are already averaged over ranks after backward, so any rank's norms are the whole batch's.
Parameters that are ``DTensor`` s (FSDP2's ``fully_shard``, tensor parallelism) make the probe
**sharded** (:attr:`GradientProbe.sharded`): each rank holds a piece of each gradient, so it measures
the squared norms of its local shards (:meth:`GradientProbe.partial_squares`, one ``_foreach_norm`` as
usual) and the pieces are summed over the ranks with ONE ``all_reduce`` of the stacked squares
(:meth:`GradientProbe.all_reduce`), which the Recorder batches over the steps of a flush. A shard
replicated over a mesh dimension is counted once (its square is divided by that dimension's size), a
plain parameter in a sharded model is taken as replicated on every rank, and a gradient with a pending
(``Partial``) placement is first redistributed (a collective of its own, the slow path). Every
collective needs every rank: with a sharded probe, :meth:`GradientProbe.measure` must be called on
all ranks together.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from vgp_tui.engine.naming import block_of

LayerGroups = Sequence[tuple[str, Sequence[nn.Parameter]]]


NO_GRADIENT = (
    "no probed parameter has a gradient: measure after loss.backward() and before the gradients are zeroed, "
    "with a GradientProbe of the model that is trained"
)


NO_GRADIENT_SINCE_ZEROED = (
    "no gradient was written since the gradients were zeroed: measure after loss.backward(), and zero the "
    "gradients after optimizer.step() or before the forward, not between backward() and the measurement"
)


class NoGradientError(RuntimeError):
    """A measurement found no gradient at all: called before ``backward()``, after the gradients were set
    to None, or with a probe of another model. Zeros would read as a gradient that vanished."""


class Sample(NamedTuple):
    """One step's measurement as :meth:`GradientProbe.sample` takes it."""

    values: torch.Tensor
    """Norms of the flat buffer's rows, or (``folded``) the ``[total, layers...]`` norms themselves."""
    folded: bool


_ROW_COST = 64
"""What one more row of the flat buffer costs, in padded elements, when choosing the row length."""

_PACK_MAX = 8192
"""Largest gradient (elements) that the per-tensor path on a CPU copies into its packed block: below it
the copy costs less than a norm call of its own (about 1 us; docs/benchmarks.md, section 6)."""


_SCRATCH_MAX = 1 << 20
"""Most elements (8 MB of float64) of the scratch block that a float32 flat buffer is measured in,
rows at a time; a buffer whose rows are longer is converted by the norm itself."""

MEASURING_DTYPE = torch.float64
"""The dtype of every norm and square the probe computes, on every device. Measured in float32, a
31-layer sigmoid MLP's first six layers read exactly 0 where autograd says 4e-27 to 1e-22: their
gradient elements' squares underflow (below about 1e-19 they are subnormal and lose digits). On a CPU
a subnormal float32 square also costs about 100 times a normal one (docs/benchmarks.md, section 6)."""


class _Packing(NamedTuple):
    """How the per-tensor path measures on a CPU, where ``_foreach_norm`` is a loop of one norm per
    tensor: the small gradients are copied into one block laid out as the flat buffer is (each layer
    whole rows, zero padding at its end) by ONE ``_foreach_copy_``, whose row norms are ONE kernel;
    the large ones are measured one by one. The block is of the measuring dtype (float64), so the
    copy is also the conversion.

    The block is made once and kept: a fresh one each step would be a third of a megabyte from
    malloc every step, which glibc may hand back to the system at the free and fault in again at
    the next step (docs/benchmarks.md, section 6: from 1.04 to 1.16 times the step, by the state of
    the allocator)."""

    packed: tuple[int, ...]
    """The parameters copied into the block, in the order of ``views``."""
    views: tuple[torch.Tensor, ...]
    """Where in the block each of them goes (its own shape); the padding between stays zero."""
    rows: torch.Tensor
    """The block, ``(rows, row length)``."""
    singles: tuple[int, ...]
    """The parameters measured on their own (``_foreach_norm``): those too large to copy."""
    index: torch.Tensor
    """The layer of each norm: the block's rows, then the singles."""


_HIDDEN_NAMES = frozenset({"_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module"})
"""Module names that wrappers insert (torch.compile, FSDP1, activation checkpointing): not the user's."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The user's own module inside ``torch.compile`` and ``(Distributed)DataParallel`` wrappers."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif type(model).__name__ == "OptimizedModule" and isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod  # checked by name: importing torch._dynamo just to look costs seconds
        else:
            return model


def layer_name(qualified: str) -> str:
    """A module's name without the parts wrappers insert (``block._orig_mod.0`` is ``block.0``)."""
    return ".".join(part for part in qualified.split(".") if part not in _HIDDEN_NAMES)


def default_layer_groups(model: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    """One layer per module that owns trainable parameters directly, in registration order.

    Models in ``vgp_tui.models`` define ``layer_groups()`` (to merge a layer with its batch norm, say);
    this is the fallback for anyone else's model. Compiled or DDP-wrapped models are named as the
    module inside (see :func:`unwrap_model`).

    A weight that two modules share (a language model's embedding tied to its output head: GPT-2's
    ``wte`` and ``lm_head``) is the layer of the last of them, the output side. Its gradient, the sum
    of both uses, is mostly the head's (every position's logits against the sparse rows of the tokens
    seen): read as the first layer it was the head's gradient taken for the input side's, and a
    diagnosis found "healthy flow" where every block got a thousandth of it.
    """
    model = unwrap_model(model)
    groups = []
    for name, module in model.named_modules():
        params = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if params:
            groups.append((layer_name(name) or type(module).__name__, params))
    return _owned_once(groups)


def block_layer_groups(model: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    """One layer per block (:func:`vgp_tui.engine.naming.block_of`: ``h.3`` holds every parameter of
    ``h.3.attn`` and ``h.3.mlp``), for ``GradientProbe(model, groups=block_layer_groups(model))``.

    The dashboard already merges a big model's layers by block to fit the screen, and can show each
    layer on its own row; recording by block instead keeps the file and the per-step work small for a
    model of hundreds of parameter tensors, at the price of the detail inside a block.
    """
    merged: dict[str, list[nn.Parameter]] = {}
    for name, params in default_layer_groups(model):
        merged.setdefault(block_of(name), []).extend(params)
    return list(merged.items())


def _parameter_list(name: str, params: object, source: str) -> list[nn.Parameter]:
    """Layer ``name``'s parameters as a list (a module's ``.parameters()`` is read once), each checked.

    A tensor given for the list would be read row by row, and its rows, computed from it, never get a
    ``.grad``: the mistake would surface only at the first step, as "no gradient"."""
    module = isinstance(params, nn.Module) and not isinstance(params, nn.ParameterList)
    if module or isinstance(params, (torch.Tensor, str, bytes)) or not isinstance(params, Iterable):
        raise TypeError(f"{source} must give layer {name!r} a list of parameters, not a {type(params).__name__}: "
                        f"({name!r}, [tensor]) or ({name!r}, list(module.parameters()))")
    listed = list(params)
    for p in listed:
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"{source} must give layer {name!r} a list of parameters, not a list holding a "
                            f"{type(p).__name__}: ({name!r}, list(module.parameters()))")
        # (A frozen parameter is taken: unfrozen later, as a fine-tuning schedule does, it is measured.)
        if not p.is_leaf:
            raise ValueError(f"{source} must give layer {name!r} the parameters themselves, not a tensor computed "
                             f"from them (it gets no .grad): ({name!r}, list(module.parameters()))")
    return listed


def _owned_once(groups: LayerGroups) -> list[tuple[str, list[nn.Parameter]]]:
    """``groups`` with every parameter in the last layer that lists it, and layers left empty dropped.

    A tied weight (a language model's embedding and output head, GPT-2's ``wte`` and ``lm_head``) is
    registered by two modules but is one tensor with one gradient, the sum of both uses: counted in
    both layers it would enter the total norm twice, and clipping would scale by the wrong total
    (``clip_grad_norm_`` counts it once). The last, the output side, for the reason
    :func:`default_layer_groups` gives: the same rule for the model's layers and for a user's groups."""
    last_owner = {id(p): i for i, (_, params) in enumerate(groups) for p in params}
    owned = [(name, [p for p in params if last_owner[id(p)] == i]) for i, (name, params) in enumerate(groups)]
    return [(name, params) for name, params in owned if params]


def _dtensor_type() -> Any:
    """The DTensor class if torch.distributed.tensor was imported (no DTensor can exist otherwise)."""
    module = sys.modules.get("torch.distributed.tensor")
    return getattr(module, "DTensor", None)


def choose_row_length(layer_sizes: Sequence[int]) -> int:
    """Row length of the flat buffer: few rows and little padding (each layer fills whole rows).

    Tries powers of two and the layer sizes themselves (and their halves and quarters), and keeps the
    one with the fewest padded elements plus ``_ROW_COST`` per row. For the deep-sigmoid MLP (20
    layers of 4 160 parameters) that is 2 080: 40 rows, 5 % padding.
    """
    candidates = {2**k for k in range(5, 25)}
    for n in layer_sizes:
        candidates.update(max(1, math.ceil(n / d)) for d in (1, 2, 4))
    biggest = max(layer_sizes)

    def cost(c: int) -> int:
        rows = sum(math.ceil(n / c) for n in layer_sizes)
        return rows * c + rows * _ROW_COST

    return min((c for c in candidates if c <= max(biggest, 32)), key=lambda c: (cost(c), c))


class GradientProbe:
    """Measures per-layer and total gradient norms of a model's parameters.

    Args:
        model: the network; its ``layer_groups()`` is used when it has one.
        groups: explicit ``[(layer name, [parameters])]``, input side first, instead of the model's.
    """

    clips_gradients: bool = True
    """Whether :meth:`clip` scales the gradients (False where a framework clips and the probe only
    observes: ``vgp_tui.integrations.ObservedClipProbe``)."""

    def __init__(self, model: nn.Module | None = None, groups: LayerGroups | None = None) -> None:
        if model is not None:
            if not isinstance(model, nn.Module):
                raise TypeError(f"GradientProbe takes the model (an nn.Module), not {type(model).__name__}; "
                                "to choose the layers yourself pass groups=[(name, [parameters]), ...]")
        self.module: nn.Module | None = model
        """The model as given (a DDP or compiled wrapper included): what its user calls, so a hook on it
        runs in eager Python; None for a probe made from groups alone."""
        if model is not None:
            model = unwrap_model(model)
        given = groups is not None
        if groups is None:
            if model is None:
                raise ValueError("GradientProbe needs a model or layer groups")
            layer_groups = getattr(model, "layer_groups", None)
            groups = layer_groups() if callable(layer_groups) else default_layer_groups(model)
        source = "groups" if given else f"{type(model).__name__}.layer_groups()"
        groups = [(name, _parameter_list(name, params, source)) for name, params in groups]
        owned = _owned_once(groups)
        if given:
            # The user's own groups: a parameter listed twice is counted in its last group only (as a
            # tied weight is), which they may not expect of a list they wrote: said once, here.
            owner: dict[int, str] = {}
            repeated = next(((owner[id(p)], name) for name, params in groups for p in params
                             if owner.setdefault(id(p), name) != name), None)
            if repeated is not None:
                warnings.warn(f"GradientProbe: a parameter of layer '{repeated[0]}' is also in layer "
                              f"'{repeated[1]}': it is counted in the last layer that lists it only (one "
                              "tensor, one gradient)", RuntimeWarning, stacklevel=2)
        groups = owned
        self.layer_names: tuple[str, ...] = tuple(name for name, _ in groups)
        self.params: list[nn.Parameter] = [p for _, params in groups for p in params]
        if not self.params:
            raise ValueError("the model has no trainable parameters to probe")
        probed = {id(p) for p in self.params}
        self.unprobed: tuple[nn.Parameter, ...] = tuple(
            p for p in (model.parameters() if model is not None else ()) if p.requires_grad and id(p) not in probed
        )
        """The model's trainable parameters outside every layer (empty for a probe made from groups
        alone): :meth:`Recorder.zero_grad` clears their gradients too."""
        self._layer_of_param = [i for i, (_, params) in enumerate(groups) for _ in params]
        device = self.params[0].device
        on_cpu = all(p.device.type == "cpu" for p in self.params)
        self._layer_index = torch.tensor(self._layer_of_param, device=device)
        self._zeros = torch.zeros(len(self.layer_names), device=device, dtype=MEASURING_DTYPE)
        dtensor = _dtensor_type()
        self._dtensor = dtensor if dtensor is not None and any(isinstance(p, dtensor) for p in self.params) else None
        self.sharded: bool = self._dtensor is not None
        """True where parameters are DTensors (FSDP2, tensor parallel): measuring needs every rank."""
        self.group: Any = None
        """The process group the squared norms are summed over (None: the default group)."""
        self._group_size = 1
        self._weights: tuple[Any, torch.Tensor | None] = ((), None)
        self._meshes: dict[int, Any] = {}  # the gradients' device meshes by id (the weights' cache key)
        self._placements_without_partial: set[Any] = set()
        if self.sharded:
            self._init_sharding()
        self._packing: _Packing | None = None
        self._packing_checked = not on_cpu  # CUDA fuses _foreach_norm
        self._flat: torch.Tensor | None = None
        """(rows, row length) gradient buffer that every ``p.grad`` views, once :meth:`use_flat_grads` ran."""
        self._zeroed_version = -1
        """The flat buffer's version counter right after :meth:`zero_grad` zeroed it: unchanged, no
        backward has written a gradient since (a backward accumulates into it in place)."""
        self._views: tuple[torch.Tensor, ...] = ()
        self._row_layer: torch.Tensor | None = None
        self._scratch: torch.Tensor | None = None
        """float64 rows that the flat buffer is copied into to be measured (:meth:`_flat_row_norms`)."""

    @property
    def num_layers(self) -> int:
        return len(self.layer_names)

    # -- the flat gradient buffer -----------------------------------------------------------------
    def use_flat_grads(self) -> bool:
        """Make every probed parameter's ``.grad`` a view into one contiguous buffer; True if done.

        Call it before the first backward (existing gradients are copied in). From then on zero the
        gradients with :meth:`zero_grad` (in place), never ``optimizer.zero_grad(set_to_none=True)``.
        Returns False, changing nothing, where a flat buffer cannot hold the gradients: parameters on
        several devices or of several dtypes, or sparse gradients.
        """
        params = self.params
        first = params[0]
        if (
            self.sharded  # FSDP2 and DTensor own their gradients' storage
            or any(p.device != first.device or p.dtype != first.dtype for p in params)
            or any(p.grad is not None and (p.grad.is_sparse or p.grad.layout != torch.strided) for p in params)
            or not first.dtype.is_floating_point
        ):
            return False
        sizes = [0] * self.num_layers
        for p, layer in zip(params, self._layer_of_param):
            sizes[layer] += p.numel()
        row = choose_row_length([max(n, 1) for n in sizes])
        rows_of = [max(1, math.ceil(n / row)) for n in sizes]
        flat = torch.zeros(sum(rows_of), row, dtype=first.dtype, device=first.device)
        line = flat.view(-1)
        starts = [0]
        for n in rows_of:
            starts.append(starts[-1] + n)
        offset = [start * row for start in starts[:-1]]
        views = []
        with torch.no_grad():
            for p, layer in zip(params, self._layer_of_param):
                n = p.numel()
                view = line[offset[layer] : offset[layer] + n].view(p.shape)
                offset[layer] += n
                if p.grad is not None:
                    view.copy_(p.grad)
                p.grad = view
                views.append(view)
        self._flat = flat
        self._scratch = None  # (sized for this buffer when first measured)
        self._views = tuple(views)
        self._row_layer = torch.tensor(
            [layer for layer, n in enumerate(rows_of) for _ in range(n)], device=first.device
        )
        return True

    @property
    def flat_active(self) -> bool:
        """True while every probed gradient is a view into the flat buffer (the fast path)."""
        # A few microseconds for 40 parameters (reading p.grad dominates); checked every step, because
        # anyone may have set a gradient to None or replaced it since.
        return self._flat is not None and all(p.grad is v for p, v in zip(self.params, self._views))

    def zero_grad(self) -> bool:
        """Zero the gradients in place with one ``zero_()`` on the flat buffer; False if there is none.

        Gradients that someone replaced (set to ``None``, say) are pointed back into the buffer, so
        the fast path resumes at the next backward.
        """
        flat = self._flat
        if flat is None:
            return False
        if not self.flat_active:
            for p, view in zip(self.params, self._views):
                if p.grad is not view:
                    p.grad = view
        flat.zero_()
        self._zeroed_version = flat._version
        return True

    def _written_flat(self) -> torch.Tensor:
        """The flat buffer, once a backward has written into it since :meth:`zero_grad`. Zeroed and
        measured before any backward (``zero_grad()`` called between ``backward()`` and the
        measurement), every norm was an exact 0, which the diagnosis read as a vanishing gradient."""
        flat = self._flat
        assert flat is not None
        if flat._version == self._zeroed_version:  # (a counter read on the host: no kernel, no sync)
            raise NoGradientError(NO_GRADIENT_SINCE_ZEROED)
        return flat

    def _flat_row_norms(self) -> torch.Tensor:
        """The float64 norm of every row of the flat buffer.

        The buffer is first copied into a float64 scratch block kept for the purpose (rows at a time,
        at most :data:`_SCRATCH_MAX` elements). The norm's own conversion allocated twice the buffer
        every step: on a CPU the allocator may hand that back to the system and fault it in again (a
        plain loop of the deep-sigmoid MLP with the Recorder's flat buffer: 1.111 times the step
        without it, 1.096 with the scratch; docs/benchmarks.md, section 6), and on a GPU it is twice
        the gradient's memory again, at the peak of the step (CUDA converts as it reduces only from
        half precision to float32).
        """
        flat = self._written_flat()
        dtype = MEASURING_DTYPE
        if flat.dtype == dtype or flat.shape[1] > _SCRATCH_MAX:
            return torch.linalg.vector_norm(flat, dim=1, dtype=dtype)
        scratch = self._scratch
        if scratch is None:
            rows = min(flat.shape[0], _SCRATCH_MAX // flat.shape[1])
            scratch = self._scratch = torch.empty(rows, flat.shape[1], dtype=dtype, device=flat.device)
        if len(scratch) == len(flat):
            return torch.linalg.vector_norm(scratch.copy_(flat), dim=1)
        step = len(scratch)
        return torch.cat([torch.linalg.vector_norm(scratch[: len(part)].copy_(part), dim=1)
                          for part in flat.split(step)])

    # -- measuring --------------------------------------------------------------------------------
    def grads(self) -> list[torch.Tensor]:
        """The gradients that exist now (a parameter unused in this step has none)."""
        return [p.grad for p in self.params if p.grad is not None]

    def sample(self) -> Sample:
        """This step's measurement in its cheapest form, to be turned into norms by :meth:`fold`.

        With the flat buffer that is the norm of each buffer row: ONE kernel per step, however many
        parameter tensors the model has; squaring and folding rows into layers waits for :meth:`fold`,
        which does it for a whole batch of steps at once. Otherwise the norms themselves (the
        per-tensor path). Either way a device tensor, nothing copied to the host.
        """
        if self._flat is not None and self.flat_active:
            return Sample(self._flat_row_norms(), False)
        return Sample(self.measure_packed(), True)

    def total_of(self, sample: Sample) -> torch.Tensor:
        """The total norm (a 0-d float32 device tensor) from one sample: what clipping needs per step."""
        if sample.folded:
            return sample.values[0]
        total = torch.linalg.vector_norm(sample.values)  # the norm of the row norms
        return total if total.dtype == torch.float32 else total.float()

    def fold(self, samples: Sequence[Sample], totals: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """``(steps, 1 + layers)`` float32: ``[total, layer 1, ..., layer L]`` norms for each sample.

        ``totals``: where clipping already computed a step's total with :meth:`total_of`, that exact
        value is reported, so "clipped" and the reported total can never disagree by a rounding.
        """
        if all(not s.folded for s in samples):
            squares = torch.stack([s.values for s in samples]).square_()  # (steps, rows)
            layer = squares.new_zeros(len(samples), self.num_layers).index_add_(1, self._row_layer, squares)  # type: ignore[arg-type]
            packed = torch.cat([layer.sum(1, keepdim=True), layer], dim=1).sqrt_()
            if packed.dtype != torch.float32:
                packed = packed.float()
        else:
            packed = torch.stack([s.values if s.folded else self.fold([s])[0] for s in samples])
        if totals is not None and any(t is not None for t in totals):
            if all(t is not None for t in totals):
                packed[:, 0] = torch.stack(totals)  # type: ignore[arg-type]
            else:
                for i, t in enumerate(totals):
                    if t is not None:
                        packed[i, 0] = t
        return packed

    def partial_squares(self, unscale: torch.Tensor | None = None) -> torch.Tensor:
        """``(layers,)`` float64 device tensor: this rank's share of each layer's squared gradient norm.

        Unsharded, that is the squared norms themselves; sharded, the squares of this rank's shards,
        which :meth:`all_reduce` (on every rank) sums into the whole gradient's. No collective here.
        ``unscale``: a loss scale the gradients still carry, divided out of the norms before they are
        squared (a bfloat16 loop's scale grows without end: squared, the scaled norms would overflow).
        """
        if self.sharded:
            return self._sharded_squares(unscale)
        norms, index = self.partial_norms(unscale)
        return self._zeros.index_add(0, index, norms.square_())  # (norms: a fresh tensor of this step's)

    def partial_norms(self, unscale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(norms, layer index)``: the norms of this step's gradient in pieces, and the layer of each
        piece (unsharded probes only). The least work a step can do: :meth:`fold_squares` turns the norms
        of many steps into squared layer norms at once, as :meth:`partial_squares` does for one.
        ``unscale``: a loss scale the gradients still carry, divided out of the norms (float64) before
        anyone squares them.

        The pieces are the flat buffer's rows, else the gradient tensors (on a CPU the small ones copied
        into one float64 block and measured by its rows, :class:`_Packing`; one ``_foreach_norm``
        elsewhere). The index is the same tensor object from step to step as long as the same gradients
        exist, so a caller can batch the steps that share it.
        """
        norms, index = self._piece_norms()
        if unscale is not None:
            norms.div_(unscale)  # (a fresh tensor of this step's)
        return norms, index

    def _piece_norms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`partial_norms` before any unscaling."""
        assert not self.sharded, "a sharded probe measures with partial_squares"
        if self._flat is not None and self.flat_active:
            return self._flat_row_norms(), self._row_layer  # type: ignore[return-value]
        grads = [p.grad for p in self.params]
        if any(g is None for g in grads):
            present = [i for i, g in enumerate(grads) if g is not None]
            if not present:
                raise NoGradientError(NO_GRADIENT)
            grads = [grads[i] for i in present]
            norms = torch._foreach_norm(grads, 2, dtype=MEASURING_DTYPE)  # type: ignore[arg-type]
            return torch.stack(norms), self._layer_index[present]
        if self._packing_plan(grads) is not None:  # type: ignore[arg-type]
            return self._packed_norms(grads)  # type: ignore[arg-type]  # a CPU: two kernels, not one a tensor
        norms = torch._foreach_norm(grads, 2, dtype=MEASURING_DTYPE)  # type: ignore[arg-type]  # one fused call
        return torch.stack(norms), self._layer_index

    def fold_squares(self, norms: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """``(steps, layers)`` float64 squared layer norms from ``(steps, pieces)`` norms that
        :meth:`partial_norms` returned with this ``index``: the same numbers as :meth:`partial_squares`."""
        squares = norms.square_()  # (a fresh tensor: the caller's stack of the steps)
        return squares.new_zeros(len(norms), self.num_layers).index_add_(1, index, squares)

    def _sharded_squares(self, unscale: torch.Tensor | None) -> torch.Tensor:
        """:meth:`partial_squares` of DTensor gradients: the local shards' squares, weighted so that a
        shard replicated on several ranks counts once in the sum over ranks."""
        grads = [p.grad for p in self.params]
        present: list[int] | None = None
        if any(g is None for g in grads):
            present = [i for i, g in enumerate(grads) if g is not None]
            if not present:
                raise NoGradientError(NO_GRADIENT)
            index = self._layer_index[present]
            grads = [grads[i] for i in present]
        else:
            index = self._layer_index
        grads, weights = self._local_shards(grads, present)  # type: ignore[arg-type]
        norms = torch._foreach_norm(grads, 2, dtype=MEASURING_DTYPE)  # type: ignore[arg-type]  # one fused call
        squares = torch.stack(norms)
        if unscale is not None:
            squares.div_(unscale)
        squares.square_()
        if weights is not None:
            squares.mul_(weights)
        return self._zeros.index_add(0, index, squares)

    def _packing_plan(self, grads: list[torch.Tensor]) -> _Packing | None:
        """The CPU plan for measuring every gradient (made at the first step that has them all), or None
        where packing gains nothing: off the CPU, gradients that are not dense, fewer than two small ones."""
        if self._packing_checked:
            return self._packing
        self._packing_checked = True
        if any(g.layout != torch.strided for g in grads):
            return None
        params = self.params
        small = [p.numel() <= _PACK_MAX and p.dtype == params[0].dtype for p in params]
        if sum(small) < 2:
            return None
        # The block holds the measuring dtype (float64): the copy converts on the way in, for about 5 us
        # more than a float32 copy, where a float32 block's norm in float64 converted the whole block
        # again, into a fresh allocation, for 35 (docs/benchmarks.md, section 6).
        dtype = MEASURING_DTYPE
        sizes = [0] * self.num_layers
        for p, layer, small_one in zip(params, self._layer_of_param, small):
            sizes[layer] += p.numel() if small_one else 0
        row = choose_row_length([n for n in sizes if n] or [1])
        rows_of = [math.ceil(n / row) for n in sizes]
        block = torch.zeros(sum(rows_of), row, dtype=dtype, device=params[0].device)
        line = block.view(-1)
        packed, views = [], []
        offset = 0
        for layer in range(self.num_layers):  # a layer's parameters may be anywhere in self.params
            start = offset
            for i, (owner, small_one) in enumerate(zip(self._layer_of_param, small)):
                if small_one and owner == layer:
                    n = params[i].numel()
                    packed.append(i)
                    views.append(line[offset : offset + n].view(params[i].shape))
                    offset += n
            offset = start + rows_of[layer] * row  # the rest of the layer's last row: zeros, for good
        singles = tuple(i for i, small_one in enumerate(small) if not small_one)
        layers = [layer for layer, rows in enumerate(rows_of) for _ in range(rows)]
        layers += [self._layer_of_param[i] for i in singles]
        self._packing = _Packing(tuple(packed), tuple(views), block, singles, torch.tensor(layers, device=params[0].device))
        return self._packing

    def _packed_norms(self, grads: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(norms, their layers) of every gradient by the CPU plan: the block's row norms, then the singles'.

        (Measured in a training loop, docs/benchmarks.md section 6: ``_foreach_copy_`` into the kept
        block costs less than a fresh ``_flatten_dense_tensors`` even when malloc keeps the latter's
        memory, and less than ``torch.cat(..., out=)``, whose per-tensor views are made in Python.)"""
        plan = self._packing
        assert plan is not None
        torch._foreach_copy_(plan.views, [grads[i] for i in plan.packed])
        norms = torch.linalg.vector_norm(plan.rows, dim=1)  # (float64 already: nothing is converted)
        if plan.singles:
            large = torch._foreach_norm([grads[i] for i in plan.singles], 2, dtype=MEASURING_DTYPE)
            norms = torch.cat([norms, torch.stack(large)])
        return norms, plan.index

    def all_reduce(self, squares: torch.Tensor) -> torch.Tensor:
        """Sum ``squares`` (any shape, from :meth:`partial_squares`) over the ranks, in place; returns it.

        One ``all_reduce``, to be called on every rank at once; nothing happens for an unsharded probe.
        Stacking several steps' squares first makes it one collective for all of them.
        """
        if self.sharded:
            import torch.distributed as dist

            dist.all_reduce(squares, group=self.group)
        return squares

    @staticmethod
    def norms_of(squares: torch.Tensor) -> torch.Tensor:
        """``[..., total, layer 1, ..., layer L]`` norms from ``[..., layers]`` (whole-gradient) squares."""
        return torch.cat([squares.sum(-1, keepdim=True), squares], dim=-1).sqrt_()

    def measure_packed(self) -> torch.Tensor:
        """``[total, layer 1, ..., layer L]`` gradient norms as one float32 device tensor.

        With a sharded probe this is a collective (one ``all_reduce``): call it on every rank.
        """
        if self._flat is not None and self.flat_active:
            return self.fold([self.sample()])[0]
        norms = self.norms_of(self.all_reduce(self.partial_squares()))
        return norms.float()  # (square roots of the float64 squares)

    def measure(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(layer_norms, total_norm)`` as device tensors: shape (layers,) and a scalar.

        A parameter without a gradient counts as zero (while another has one: none at all raises
        :class:`NoGradientError`); a layer whose gradient is NaN or Inf shows NaN or Inf (the moment of
        explosion is the lesson, so it is never dropped).
        """
        packed = self.measure_packed()
        return packed[1:], packed[0]

    def clip(self, total_norm: torch.Tensor, max_norm: float) -> torch.Tensor:
        """Scale the gradients so their total norm is at most ``max_norm``; returns "did it clip".

        Same rule as ``torch.nn.utils.clip_grad_norm_`` (scale by max_norm / (total + 1e-6) when that is
        below 1), but reusing ``total_norm`` from :meth:`measure` instead of a second pass. Stays on the
        device: the scale is a tensor, never a Python float. With the flat buffer it is one ``mul_``.
        """
        scale = (max_norm / (total_norm + 1e-6)).clamp(max=1.0)
        if self._flat is not None and self.flat_active:
            self._flat.mul_(scale.to(self._flat.dtype))
        else:
            grads = self.grads()
            if self.sharded:  # each rank scales its own shards; plain tensors are their own local part
                grads = [g.to_local() if isinstance(g, self._dtensor) else g for g in grads]
            for dtype in {g.dtype for g in grads}:  # one fused call per dtype (usually one)
                torch._foreach_mul_([g for g in grads if g.dtype == dtype], scale.to(dtype))
        return total_norm > max_norm

    # -- sharded (DTensor) parameters -------------------------------------------------------------
    def _init_sharding(self) -> None:
        import torch.distributed as dist

        meshes = {id(p.device_mesh): p.device_mesh for p in self.params if isinstance(p, self._dtensor)}
        world = dist.get_world_size()
        if len(meshes) == 1:
            (mesh,) = meshes.values()
            if mesh.ndim == 1:
                self.group = mesh.get_group()
                self._group_size = mesh.size()
                return
        if any(mesh.size() != world for mesh in meshes.values()):
            raise ValueError(
                "GradientProbe: the parameters are DTensors on device meshes that do not span every rank; "
                "pass groups= with the parameters of one mesh"
            )
        self._group_size = world  # the default group: every rank holds a piece of every mesh

    def _local_shards(
        self, grads: list[torch.Tensor], present: list[int] | None
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Each gradient's local tensor, and the weight of its square in the sum over ranks."""
        dtensor = self._dtensor
        local: list[torch.Tensor] = []
        key: list[Any] = [present is None or tuple(present)]
        meshes = self._meshes
        unreduced = self._placements_without_partial
        # Without autograd, to_local() is the shard itself: no graph node per gradient (about 2 us each).
        with torch.no_grad():
            for g in grads:
                if isinstance(g, dtensor):
                    placements = g.placements
                    if placements not in unreduced:
                        if any(pl.is_partial() for pl in placements):
                            from torch.distributed.tensor import Replicate

                            g = g.redistribute(g.device_mesh, [Replicate() if pl.is_partial() else pl for pl in placements])
                            placements = g.placements
                        else:
                            unreduced.add(placements)
                    mesh = g.device_mesh
                    if id(mesh) not in meshes:
                        meshes[id(mesh)] = mesh  # (kept: its id stays its own)
                    key.append((id(mesh), placements))
                    local.append(g.to_local())
                else:
                    key.append(None)
                    local.append(g)
        cached_key, weights = self._weights
        if cached_key != tuple(key):  # built once: placements do not change from step to step
            values = []
            for entry in key[1:]:
                if entry is None:
                    values.append(1.0 / self._group_size)  # a plain tensor: a full copy on every rank
                else:
                    mesh_id, placements = entry
                    shape = meshes[mesh_id].shape
                    copies = math.prod(n for n, pl in zip(shape, placements) if pl.is_replicate())
                    values.append(1.0 / copies)
            weights = None if all(v == 1.0 for v in values) else torch.tensor(values, dtype=MEASURING_DTYPE, device=self._zeros.device)
            self._weights = (tuple(key), weights)
        return local, weights
