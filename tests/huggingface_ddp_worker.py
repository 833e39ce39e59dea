"""Run by tests/test_huggingface.py under ``torchrun --nproc-per-node 2`` (gloo, CPU): the Hugging Face
Trainer in DistributedDataParallel, with vgp-tui's callback; rank 0 writes the recording and the
Trainer's own log of the averaged gradient's norm beside it.

    python -m torch.distributed.run --nproc-per-node 2 tests/huggingface_ddp_worker.py OUT
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing may be downloaded: the model is built in code
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402
import transformers  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_huggingface import ACCUMULATE, CLIP, LR, Tiny, _tiny_data  # noqa: E402

from vgp_tui.integrations.huggingface import VgpTuiCallback  # noqa: E402


def main(out: Path) -> None:
    args = transformers.TrainingArguments(
        output_dir=str(out / "trainer"), per_device_train_batch_size=2, gradient_accumulation_steps=ACCUMULATE,
        max_grad_norm=CLIP, learning_rate=LR, optim="sgd", lr_scheduler_type="constant", weight_decay=0.0,
        num_train_epochs=1, logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True, dataloader_num_workers=0, seed=3, ddp_backend="gloo",
    )
    trainer = transformers.Trainer(model=Tiny(), args=args, train_dataset=_tiny_data(),
                                   callbacks=[VgpTuiCallback(out / "run.jsonl", flush_seconds=0.0)])
    trainer.train()
    if trainer.args.process_index == 0:
        logged = [e["grad_norm"] for e in trainer.state.log_history if "grad_norm" in e and "train_runtime" not in e]
        (out / "logged.json").write_text(json.dumps(logged))
    # Both ranks leave together: gloo aborted a rank that tore down while the other still worked
    # (plain DDP, no vgp-tui: 5 of 24 runs of the README's torchrun example on a loaded machine).
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
