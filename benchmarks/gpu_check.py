#!/usr/bin/env python
"""On a CUDA machine: prove the probe never synchronises with the host per step, and time it there.

    python benchmarks/gpu_check.py              # about five minutes on one GPU
    python benchmarks/gpu_check.py --quick      # the sync check and a short timing run

1. Sync check. For the deep-sigmoid and resnet-cifar10 models, after a warm-up, runs
   ``Trainer.step()`` ``--sync-steps`` times under ``torch.cuda.set_sync_debug_mode("error")``, with
   clipping off and then on, and with the activation statistics sampled every 10th step: any
   host-device synchronisation in a step (an ``.item()``, a ``.tolist()``, a ``nonzero``, a copy to the
   host) raises there and the check fails. ``Trainer.flush()`` is left outside the "error" region
   on purpose: it copies all pending steps to the host in one transfer, which is one synchronisation
   per flush by design, not per step.
2. Timing. Runs ``probe_overhead.py`` on the GPU (same variants, rounds and ratios as on the CPU;
   the ResNet at the preset's width 0.25 and batch 64).
3. The Recorder on users' training paths (``recorder_cuda.py``): plain, clipping, the flat buffer,
   float16 with a GradScaler (a forced overflow included), bfloat16, ``torch.compile`` (inductor),
   DDP and FSDP2 in a one-process NCCL group: no sync inside ``recorder.step``, and the recorded
   norms equal float64 autograd's.
4. The Recorder's cost on the GPU and where it goes: ``recorder_paths.py --device cuda`` (plain, DDP
   and AMP, each with ``optimizer.zero_grad()`` and with ``recorder.zero_grad()``, FSDP2, and the
   Lightning and Hugging Face Trainers where those are installed; compiled is left out: inductor
   compiles for minutes) and ``recorder_profile.py --device cuda`` (each phase's time
   to launch, the operators per ``recorder.step`` and per flush, torch.profiler's table).

Without CUDA it says so and exits with status 2. Exit status 1 if the sync check fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import probe_overhead  # noqa: E402  (the sibling script, for the timing run)
import recorder_cuda  # noqa: E402
import recorder_paths  # noqa: E402
import recorder_profile  # noqa: E402
from common import Setup, deep_sigmoid, resnet  # noqa: E402

from vgp_tui.engine.trainer import Trainer  # noqa: E402


def sync_check(setup: Setup, steps: int, clip: float | None) -> str | None:
    """None if ``steps`` trainer steps ran without a host-device sync, else what synchronised."""
    remedies = dict(setup.remedies)
    remedies["clip"] = clip
    trainer = Trainer(setup.scenario, remedies, setup.data, setup.device, 1, setup.scenario.seed)
    for _ in range(3):  # warm-up: lazy CUDA initialisation may synchronise once
        trainer.step()
    trainer.flush()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(steps):
            trainer.step()
    except RuntimeError as exc:
        return f"step {trainer.step_count + 1}: {exc}"
    finally:
        torch.cuda.set_sync_debug_mode("default")
    events = trainer.flush()  # the one intended sync: every pending step in one transfer
    if len(events) != steps:
        return f"flush returned {len(events)} events for {steps} steps"
    if not trainer.flat_grads:
        return "the trainer did not use the flat gradient buffer"
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="GPU: no host-device sync per step, and the probe's overhead there.")
    p.add_argument("--quick", action="store_true", help="a short timing run")
    p.add_argument("--sync-steps", type=int, default=25, help="steps run under sync debug mode 'error'")
    p.add_argument("--device", default="cuda")
    p.add_argument("--no-timing", action="store_true", help="only the sync check")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check.py needs a CUDA device: torch.cuda.is_available() is False here. Nothing was run.",
              file=sys.stderr)
        return 2
    started = time.perf_counter()
    print(f"GPU check on {torch.cuda.get_device_name(args.device)}, torch {torch.__version__}, "
          f"CUDA {torch.version.cuda}")
    setups = [deep_sigmoid(args.device, False), resnet(args.device, False, 0.25, 64)]
    failures = []
    print(f"\n1. no host-device sync in {args.sync_steps} Trainer.step() calls "
          "(torch.cuda.set_sync_debug_mode('error'); flush outside):")
    for setup in setups:
        for clip in (None, 1.0):
            problem = sync_check(setup, args.sync_steps, clip)
            what = f"{setup.key}, clip {'off' if clip is None else clip}"
            print(f"   {what:<32} {'OK' if problem is None else 'FAILED: ' + problem}")
            if problem is not None:
                failures.append(what)
    print("\n3. the Recorder on training paths: no sync in recorder.step, norms equal float64 autograd:")
    failures += [f"Recorder {path}" for path in recorder_cuda.main()]
    if not args.no_timing:
        print("\n2. overhead on the GPU (benchmarks/probe_overhead.py):")
        timing = ["--device", args.device, "--resnet-width", "0.25", "--resnet-batch", "64"]
        timing += ["--quick", "--rounds", "5"] if args.quick else ["--rounds", "20"]
        probe_overhead.main(timing)
        print("\n4. the Recorder's cost on the GPU (benchmarks/recorder_paths.py), and where it goes "
              "(benchmarks/recorder_profile.py):")
        frameworks = [name for name, package in recorder_paths.FRAMEWORKS.items() if importlib.util.find_spec(package)]
        paths = ["--device", args.device, "--paths", ",".join(["plain", "ddp", "fsdp2", "amp", *frameworks]),
                 "--replicas", "1"]
        try:  # measurements only: a failure here must not hide the verdict of the checks above
            recorder_paths.main(paths + (["--quick"] if args.quick else ["--rounds", "10"]))
            recorder_profile.main(["--device", args.device] + (["--quick"] if args.quick else []))
        except Exception as exc:  # noqa: BLE001
            print(f"   section 4 stopped: {type(exc).__name__}: {exc}")
    print(f"\ngpu_check took {time.perf_counter() - started:.0f} s; sync check "
          f"{'FAILED for ' + ', '.join(failures) if failures else 'passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
