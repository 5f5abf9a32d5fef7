"""Two CPU processes (gloo) under ``accelerate launch``: distinct data per rank, identical weights.

``accelerate launch --cpu --num_processes 2`` starts ONE process in accelerate 1.15 (its
``--cpu`` path is the single-process launcher unless MPI is configured); CPU DDP without
MPI is ``ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2``, which
runs torch's elastic launcher and makes every process use the CPU with gloo.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

SCRIPT = Path(__file__).parent / "scripts" / "train_tiny.py"
# 20 + 16 training examples, batch 4: 9 global batches an epoch -> 4 per rank (one dropped).
MAX_STEPS, BATCHES_PER_RANK = 6, 4

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="torch.distributed with gloo is unavailable"
)


def _free_port() -> int:
    # Other test sessions share this machine: never rely on the default port 29500.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_cpu_processes_see_distinct_batches_and_agree_on_weights(tmp_path):
    results = tmp_path / "results"
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_ip", "127.0.0.1", "--main_process_port", str(_free_port()),
        str(SCRIPT), "--output-dir", str(tmp_path / "out"), "--result-dir", str(results),
        "--max-steps", str(MAX_STEPS),
    ]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=420)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    result = json.loads((results / "result.json").read_text())
    assert result["world_size"] == 2
    assert result["global_step"] == MAX_STEPS

    # Each rank trained on its own batches: per epoch, no example on both ranks, and the
    # ranks ran the same number of batches.
    per_epoch: dict[int, list[set[str]]] = defaultdict(lambda: [set(), set()])
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for rank in (0, 1):
        batches = json.loads((results / f"batches-rank{rank}.json").read_text())
        for epoch, ids in batches:
            per_epoch[epoch][rank].update(ids)
            counts[epoch][rank] += 1
    assert counts[0] == [BATCHES_PER_RANK, BATCHES_PER_RANK]
    for epoch, (first, second) in per_epoch.items():
        assert first and second and not first & second, f"ranks overlap in epoch {epoch}: {first & second}"

    weights = [load_file(str(results / f"weights-rank{rank}.safetensors")) for rank in (0, 1)]
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), f"{name} differs between ranks"

    # Per-corpus evaluation gathered across the ranks.
    metrics = result["metrics"]
    assert "eval_synthetic_iemocap_emotion_weighted_f1" in metrics
    assert "eval_synthetic_mustard_sarcasm_weighted_f1" in metrics
    assert "eval_combined_score" in metrics
    # Task losses were reduced over both ranks and logged.
    assert any("loss_emotion/iemocap" in record for record in result["train_logs"])
