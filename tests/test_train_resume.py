"""`mtaffect train` stopped by a real Ctrl-C resumes with `--resume` from its last checkpoint.

The interrupted run is a real process sent SIGINT (as a terminal sends it) once its first
checkpoint is on disk; the resumed run must train only the steps after its last checkpoint
(not restart from step 0) and end with the weights of an uninterrupted run, and the files the
user keeps in the output folder survive both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from mtaffect.cli.main import main
from mtaffect.training import MultiTaskTrainer

# Long enough that a Ctrl-C sent at the first checkpoint lands before the end, however fast the machine.
MAX_STEPS, SAVE_STEPS = 400, 20
CONFIG = f"""\
corpora: {{m: synthetic_mustard}}
synthetic: {{size_scale: 0.1}}
model: {{hidden_size: 8, num_heads: 2}}
training:
  max_steps: {MAX_STEPS}
  per_device_train_batch_size: 4
  eval_strategy: 'no'
  load_best_model_at_end: false
  save_strategy: steps
  save_steps: {SAVE_STEPS}
  logging_strategy: steps
  logging_steps: {SAVE_STEPS}
  disable_tqdm: true
"""


def _checkpoints(folder):
    return sorted(int(p.name.split("-")[1]) for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file())


def test_ctrl_c_then_resume_continues_from_the_checkpoint(tmp_path, monkeypatch):
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG)
    reference = tmp_path / "reference"
    assert main(["train", "--config", str(config), "--output-dir", str(reference)]) == 0

    out = tmp_path / "model"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    command = ["train", "--config", str(config), "--output-dir", str(out), "--overwrite"]
    process = subprocess.Popen(
        [sys.executable, "-m", "mtaffect.cli.main", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
        # A shell's background job (CI run with `&` / nohup) inherits SIGINT ignored, and Python then
        # installs no KeyboardInterrupt handler: give the command the terminal's default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    scratch = tmp_path / ".model.mtaffect-training"
    deadline = time.monotonic() + 120
    while not _checkpoints(scratch) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "training ended before its first checkpoint could be interrupted"
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert f"interrupted; checkpoints are kept in {scratch}. Run the same command with --resume" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # nothing written into the folder yet
    saved = _checkpoints(scratch)
    assert saved and saved[-1] < MAX_STEPS, saved
    # A save cut short by the Ctrl-C (a checkpoint without trainer_state.json) is not resumed from.
    partial = scratch / f"checkpoint-{saved[-1] + SAVE_STEPS}"
    partial.mkdir(exist_ok=True)
    (partial / "config.json").write_text((scratch / f"checkpoint-{saved[-1]}" / "config.json").read_text())

    steps = []
    original = MultiTaskTrainer.training_step
    monkeypatch.setattr(MultiTaskTrainer, "training_step", lambda self, *a, **k: steps.append(1) or original(self, *a, **k))
    assert main([*command, "--resume"]) == 0
    assert len(steps) == MAX_STEPS - saved[-1]  # from the checkpoint, not from step 0
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == MAX_STEPS
    logged = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert logged == list(range(SAVE_STEPS, MAX_STEPS + 1, SAVE_STEPS))  # each step logged once, in order
    resumed, uninterrupted = load_file(out / "model.safetensors"), load_file(reference / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[key], uninterrupted[key]) for key in resumed)
    assert (out / "notes.txt").read_text() == "mine"
    assert not scratch.exists()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
