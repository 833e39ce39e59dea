"""Lightning and Hugging Face ``Trainer`` loops that ``recorder_paths.py`` times block by block.

A framework's trainer owns its loop: nothing outside it can call one step. So each loop here runs its
trainer's ``fit``/``train`` in a thread of its own, held at the end of every block by a callback (the
gate). The benchmark's ``step()`` only counts the steps a block asks for; ``end_block()`` lets the
thread take that many steps, flush the Recorder on the training thread (as every other path's block
ends), and stop at the gate again. ``time.process_time()`` counts every thread of the process and the
benchmark's thread sleeps while it waits, so a block's times are those of the trainer's own steps; the
trainer's set-up runs in the constructor, before any timing.

Both trainers train the deep-sigmoid MLP on the same batches as the plain loop (each step a batch of
the setup's data, drawn by the loop's own generator), with the framework's defaults otherwise: no
clipping in Lightning (``gradient_clip_val=None``), ``max_grad_norm=1.0`` in the Hugging Face
``Trainer``. Loggers, progress bars and checkpoints are off on both sides of the comparison.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import torch

import common as po

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is built in code: nothing to download
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FRAMEWORKS = ("lightning", "huggingface")
TITLES = {"lightning": "Lightning Trainer", "huggingface": "Hugging Face Trainer"}


class StepGate:
    """Holds a trainer's thread at the end of a block of steps until the benchmark asks for the next."""

    def __init__(self) -> None:
        self._go = threading.Event()
        self._finished = threading.Event()
        self._remaining = 0
        self.stopping = False
        self.error: BaseException | None = None

    # -- the benchmark's thread
    def run(self, steps: int) -> None:
        """Let the trainer take ``steps`` steps and return when they (and the block's end) are done."""
        if steps <= 0:
            return
        self._remaining = steps
        self._finished.clear()
        self._go.set()
        self._finished.wait()
        if self.error is not None:
            raise RuntimeError(f"the trainer's thread failed: {self.error!r}") from self.error

    def stop(self) -> None:
        self.stopping = True
        self._go.set()

    def failed(self, error: BaseException) -> None:
        self.error = error
        self._finished.set()

    # -- the trainer's thread
    def wait_for_first_block(self, ready: threading.Event) -> None:
        ready.set()
        self._go.wait()

    def step_ended(self, end_block: Any) -> bool:
        """At the end of a step: False once the trainer should stop."""
        self._remaining -= 1
        if self._remaining == 0:
            end_block()
            self._go.clear()
            self._finished.set()
            self._go.wait()
        return not self.stopping


class Batches(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    """Endless batches of the setup's data, drawn as ``PlainLoop.batch`` draws them."""

    def __init__(self, loop: po.PlainLoop, as_dict: bool) -> None:
        self.loop = loop
        self.as_dict = as_dict

    def __iter__(self) -> Iterator[Any]:
        while True:
            x, y = self.loop.batch()
            yield {"x": x, "labels": y} if self.as_dict else (x, y)


class FrameworkLoop(po.PlainLoop):
    """One framework's training, with or without vgp-tui's callback, run a block at a time."""

    def __init__(self, setup: po.Setup, framework: str, *, record: bool, workdir: str) -> None:
        super().__init__(setup)
        self.framework = framework
        self.gate = StepGate()
        self.pending = 0
        self.callback: Any = None
        title = TITLES[framework]
        self.label = f"{title} + VgpTuiCallback" if record else f"{title} (no Recorder)"
        self.group = "vgp" if record else "plain"
        file = tempfile.NamedTemporaryFile(dir=workdir, suffix=".jsonl", delete=False).name if record else ""
        start = _lightning if framework == "lightning" else _huggingface
        ready = threading.Event()
        self.thread = threading.Thread(target=self._train, args=(start, file, workdir, ready), daemon=True)
        self.thread.start()
        ready.wait()
        if self.gate.error is not None:
            raise RuntimeError(f"{title} did not start: {self.gate.error!r}") from self.gate.error

    def _train(self, start: Any, file: str, workdir: str, ready: threading.Event) -> None:
        try:
            start(self, file, workdir, ready)
            if not self.gate.stopping:  # (else the benchmark would wait for steps that never come)
                raise RuntimeError("the trainer stopped before the benchmark asked it to")
        except BaseException as error:  # noqa: BLE001 - handed to the benchmark's thread
            self.gate.failed(error)
            ready.set()

    def end_block_on_trainer_thread(self) -> None:
        recorder = getattr(self.callback, "recorder", None)
        if recorder is not None:
            recorder.flush()

    def step(self) -> None:
        self.count += 1
        self.pending += 1

    def end_block(self) -> None:
        steps, self.pending = self.pending, 0
        self.gate.run(steps)

    def close(self) -> None:
        self.gate.stop()
        self.thread.join(timeout=60)


def _lightning(loop: FrameworkLoop, file: str, workdir: str, ready: threading.Event) -> None:
    import lightning.pytorch as pl

    from vgp_tui.integrations.lightning import VgpTuiCallback

    setup = loop.setup

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = loop.model

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            return po.loss_of(setup, self.model(x), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return loop.optimizer

    class Gate(pl.Callback):
        def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            loop.gate.wait_for_first_block(ready)

        def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args: Any) -> None:
            if not loop.gate.step_ended(loop.end_block_on_trainer_thread):
                trainer.should_stop = True

    callbacks: list[pl.Callback] = []
    if file:
        loop.callback = VgpTuiCallback(file, flush_seconds=1e9)
        callbacks.append(loop.callback)
    device = torch.device(setup.device)
    on_gpu = device.type == "cuda"
    trainer = pl.Trainer(
        accelerator="gpu" if on_gpu else "cpu", devices=[device.index or 0] if on_gpu else 1, max_steps=10**9, max_epochs=-1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        callbacks=[*callbacks, Gate()], default_root_dir=workdir,
    )
    trainer.fit(Module(), torch.utils.data.DataLoader(Batches(loop, as_dict=False), batch_size=None))


def _huggingface(loop: FrameworkLoop, file: str, workdir: str, ready: threading.Event) -> None:
    import transformers

    from vgp_tui.integrations.huggingface import VgpTuiCallback

    setup = loop.setup

    class Model(torch.nn.Module):
        """The MLP in the Trainer's shape: keyword inputs, the loss in a dict."""

        def __init__(self) -> None:
            super().__init__()
            self.model = loop.model

        def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"loss": po.loss_of(setup, self.model(x), labels)}

    class Gate(transformers.TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            loop.gate.wait_for_first_block(ready)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not loop.gate.step_ended(loop.end_block_on_trainer_thread):
                control.should_training_stop = True

    callbacks: list[Any] = []
    if file:
        loop.callback = VgpTuiCallback(file, flush_seconds=1e9)
        callbacks.append(loop.callback)
    optimizer = str(setup.remedies["optimizer"])
    args = transformers.TrainingArguments(
        output_dir=os.path.join(workdir, "hf"), max_steps=10**9, per_device_train_batch_size=1,
        learning_rate=float(setup.remedies["lr"]), optim="sgd" if optimizer == "sgd" else "adamw_torch",
        weight_decay=0.0, lr_scheduler_type="constant", save_strategy="no", report_to=[],
        use_cpu=not setup.device.startswith("cuda"),  # (on CUDA the Trainer takes the first GPU)
        disable_tqdm=True, dataloader_num_workers=0, remove_unused_columns=False, seed=setup.scenario.seed,
        dataloader_pin_memory=False,  # the batches are made on the device already: CUDA tensors cannot be pinned
    )
    trainer = transformers.Trainer(
        model=Model(), args=args, train_dataset=Batches(loop, as_dict=True),
        data_collator=lambda items: items[0],  # each item is a whole batch already
        callbacks=[*callbacks, Gate()],
    )
    trainer.train()
