"""A run killed (SIGKILL) after a checkpoint and resumed equals an uninterrupted run."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SCRIPT = Path(__file__).parent / "scripts" / "train_tiny.py"

# Two corpora of 20 and 16 training examples, batch size 4: 5 + 4 = 9 batches an epoch.
# Killing after the checkpoint of step 10 resumes one batch into the second epoch, so the
# resumed run must re-create epoch 1's order (not epoch 0's) and skip one batch of it.
MAX_STEPS, SAVE_STEPS, KILL_AFTER = 14, 5, 10


def _load_tiny():
    spec = importlib.util.spec_from_file_location("train_tiny", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _without_timings(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not k.endswith(("_runtime", "_per_second", "preparation_time"))}


def test_killed_and_resumed_equals_uninterrupted(tmp_path):
    tiny = _load_tiny()
    reference = tiny.run(
        str(tmp_path / "reference"), str(tmp_path / "reference-results"), max_steps=MAX_STEPS, save_steps=SAVE_STEPS
    )

    output_dir, killed_results = tmp_path / "interrupted", tmp_path / "killed-results"
    marker = killed_results / "checkpoint-written"
    log = (tmp_path / "killed.log").open("w")
    command = [
        sys.executable, str(SCRIPT), "--output-dir", str(output_dir), "--result-dir", str(killed_results),
        "--max-steps", str(MAX_STEPS), "--save-steps", str(SAVE_STEPS), "--hang-after-save", str(KILL_AFTER),
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            if process.poll() is not None:
                pytest.fail(f"training exited ({process.returncode}) before checkpoint {KILL_AFTER}:\n"
                            + (tmp_path / "killed.log").read_text()[-3000:])
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint after 300 s")
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        log.close()
    assert process.returncode == -signal.SIGKILL
    assert (output_dir / f"checkpoint-{KILL_AFTER}").is_dir()
    assert not (killed_results / "result.json").exists(), "the killed run must not have finished"

    resumed = tiny.run(
        str(output_dir), str(tmp_path / "resumed-results"), max_steps=MAX_STEPS, save_steps=SAVE_STEPS, resume=True
    )
    assert resumed["global_step"] == reference["global_step"] == MAX_STEPS

    # The resumed run trained on exactly the batches the reference trained on after step 10.
    reference_batches = json.loads((tmp_path / "reference-results" / "batches-rank0.json").read_text())
    resumed_batches = json.loads((tmp_path / "resumed-results" / "batches-rank0.json").read_text())
    trained_after_kill = MAX_STEPS - KILL_AFTER
    assert resumed_batches[:trained_after_kill] == reference_batches[KILL_AFTER:MAX_STEPS]
    assert resumed_batches[0][0] == 1, "the first resumed batch belongs to epoch 1"

    expected = load_file(str(tmp_path / "reference-results" / "weights-rank0.safetensors"))
    actual = load_file(str(tmp_path / "resumed-results" / "weights-rank0.safetensors"))
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), f"{name} differs after resume"
    assert _without_timings(resumed["metrics"]) == _without_timings(reference["metrics"])
    reference_logs = {r["step"]: r["loss"] for r in reference["train_logs"] if r["step"] > KILL_AFTER}
    resumed_logs = {r["step"]: r["loss"] for r in resumed["train_logs"] if r["step"] > KILL_AFTER}
    assert resumed_logs == reference_logs
