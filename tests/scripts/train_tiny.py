"""A tiny MultiTaskTrainer run shared by the DDP and resume tests.

Run as a script (``python``, ``accelerate launch`` or ``torchrun``) or call :func:`run`
in-process. Trains a hidden-size-8 model on two ~20-example synthetic corpora, evaluates
per corpus and writes what the tests compare into ``result_dir``: each rank's final
weights, the ids of each training batch with its epoch, and rank 0's metrics.
``hang_after_save=STEP`` stops making progress right after the checkpoint of STEP is
written, so a test can SIGKILL the process at a known point.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from transformers import TrainerCallback

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.data.corpora.synthetic import make_synthetic_family
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
from mtaffect.training import MultiTaskTrainer, MultiTaskTrainingArguments


class RecordingCollator:
    """Wraps the trainer's collator and records (epoch, ids) of every training batch."""

    def __init__(self, trainer: MultiTaskTrainer) -> None:
        self.trainer = trainer
        self.collator = trainer.data_collator
        self.batches: list[tuple[int, list[str]]] = []
        self.recording = True

    def __call__(self, rows):
        if self.recording:
            self.batches.append((self.trainer.train_batch_sampler.epoch, [str(row["id"]) for row in rows]))
        return self.collator(rows)


class HangAfterSave(TrainerCallback):
    def __init__(self, step: int, marker: Path) -> None:
        self.step, self.marker = step, marker

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            self.marker.write_text(str(state.global_step))
            time.sleep(600)  # the test kills us here


def run(
    output_dir: str,
    result_dir: str,
    max_steps: int = 12,
    save_steps: int = 0,
    batch_size: int = 4,
    sampling: str = "proportional",
    resume: bool = False,
    hang_after_save: int = 0,
) -> dict[str, Any]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-identical runs, and no thread oversubscription on shared cores
    try:
        family = make_synthetic_family(
            seed=0, size_scale=0.05, corpora=["synthetic_iemocap", "synthetic_mustard"], max_length=6
        )
        config = MTAffectConfig.from_corpora(family, hidden_size=8, encoder_type="mean", dropout=0.1)
        args = MultiTaskTrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=4,
            max_steps=max_steps,
            learning_rate=1e-2,
            logging_steps=2,
            save_strategy="steps" if save_steps else "no",
            save_steps=save_steps or 500,
            corpus_sampling=sampling,
            seed=0,
            dataloader_num_workers=0,
            disable_tqdm=True,
            use_cpu=True,
        )
        trainer = MultiTaskTrainer(
            model_init=lambda: MTAffectForMultiTaskAffect(config),
            args=args,
            train_dataset={name: corpus["train"] for name, corpus in family.items()},
            eval_dataset={name: corpus["validation"] for name, corpus in family.items()},
        )
        collator = RecordingCollator(trainer)
        trainer.data_collator = collator
        results = Path(result_dir)
        results.mkdir(parents=True, exist_ok=True)
        if hang_after_save:
            trainer.add_callback(HangAfterSave(hang_after_save, results / "checkpoint-written"))

        trainer.train(resume_from_checkpoint=True if resume else None)
        collator.recording = False
        metrics = trainer.evaluate()

        rank = trainer.args.process_index
        state = {name: tensor.detach().clone().contiguous() for name, tensor in trainer.model.state_dict().items()}
        save_file(state, str(results / f"weights-rank{rank}.safetensors"))
        (results / f"batches-rank{rank}.json").write_text(json.dumps(collator.batches))
        payload = {
            "metrics": metrics,
            "world_size": trainer.args.world_size,
            "global_step": trainer.state.global_step,
            "train_logs": [record for record in trainer.state.log_history if "loss" in record],
        }
        if trainer.is_world_process_zero():
            (results / "result.json").write_text(json.dumps(payload))
        if trainer.args.world_size > 1:
            trainer.end()
        return payload
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--result-dir", required=True)
    parser.add_argument("--max-steps", type=int, default=12)
    parser.add_argument("--save-steps", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--sampling", default="proportional")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--hang-after-save", type=int, default=0)
    options = parser.parse_args()
    run(**{key.replace("-", "_"): value for key, value in vars(options).items()})


if __name__ == "__main__":
    main()
