"""`mtaffect run` is append-only and resumable: killed mid-way, it resumes to the same report.

The default synthetic study is deterministic, so a run that is interrupted (a real SIGINT to
a real process) and resumed must produce the very numbers of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mtaffect.cli.main import main
from mtaffect.output_folder import MANIFEST_NAME
from mtaffect.study import CANDIDATE, StudyConfig, read_records, run_study

#: Two corpora, one seed, one epoch: 2 cross-fitted teachers (MOSEI's auxiliary emotion), 3 probes,
#: 3 single-task models, the control, 2 weak and 2 gold candidates.
SMALL = {
    "seeds": [0],
    "synthetic": {"seed": 0, "size_scale": 0.08, "max_length": 6, "corpora": ["synthetic_mosei", "synthetic_mustard"]},
    "model": {"hidden_size": 8, "num_heads": 2},
    "training": {"num_train_epochs": 1, "per_device_train_batch_size": 16},
    "weak_loss_weights": [0.5, 1.0],
    "cross_fit_folds": 2,
    "workers": 1,
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    output = tmp_path_factory.mktemp("uninterrupted")
    events = []
    paths = run_study(StudyConfig.from_dict({**SMALL, "output_dir": str(output)}), progress=events.append)
    return paths, events


def _config_file(folder: Path, **changes) -> Path:
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump({**SMALL, **changes}))
    return path


def _start(config: Path, output: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mtaffect.cli.main", "run", "--config", str(config), "--output-dir", str(output), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def _interrupt_after(process: subprocess.Popen, results: Path, records: int, timeout: float = 600) -> tuple[str, str]:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) once ``records`` are recorded."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if results.is_file() and len(read_records(results)) >= records:
            break
        time.sleep(0.2)
    assert process.poll() is None, "the study ended before it could be interrupted"
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    return out, err


def _comparable(report: Path) -> dict:
    payload = json.loads(report.read_text())
    payload["metadata"].pop("wall_time_seconds")
    payload["metadata"].pop("model seconds per setting")  # timings, not numbers
    return payload


def test_a_killed_study_resumes_to_the_same_report(uninterrupted, tmp_path, capsys):
    paths, events = uninterrupted
    assert [e.step for e in events] == list(range(1, 14)) and events[-1].total == 13  # 2 teachers, 3 probes, 8 models
    assert events[0].eta is None and all(e.eta is not None and e.eta >= 0 for e in events[1:])

    output = tmp_path / "run"
    config = _config_file(tmp_path)
    process = _start(config, output)
    out, err = _interrupt_after(process, output / "results.jsonl", records=4)  # past the 3 (fast) probes
    assert process.returncode == 130, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Run the same command with --resume to continue." in lines[0], err
    before = read_records(output / "results.jsonl")
    assert 4 <= len(before) < 11 and all(r["setting"] == "single-task" or r["setting"] for r in before)

    # What is recorded can be reported already.
    assert main(["report", str(output), "--output-dir", str(tmp_path / "partial")]) == 0
    partial = json.loads((tmp_path / "partial" / "report.json").read_text())
    assert {r["setting"] for r in partial["records"]} <= {"linear-probe", "single-task", "multi-task"}
    capsys.readouterr()

    # Without --resume the folder is refused (it holds a study), with it the rest is trained.
    assert main(["run", "--config", str(config), "--output-dir", str(output)]) == 2
    assert "pass --resume to continue it" in capsys.readouterr().err
    assert main(["run", "--config", str(config), "--output-dir", str(output), "--resume", "--quiet"]) == 0
    records = read_records(output / "results.jsonl")
    assert records[: len(before)] == before  # append-only
    keys = [(r["seed"], r["setting"], r["model"]) for r in records]
    assert len(keys) == len(set(keys)) == 13  # 3 probes + 8 models + the two chosen composites, each once
    assert sum(r["setting"] == CANDIDATE for r in records) == 2
    assert _comparable(output / "report.json") == _comparable(paths["json"])
    assert not (output / "teachers").exists()
    manifest = json.loads((output / MANIFEST_NAME).read_text())
    assert {"results.jsonl", "study.json", "report.json", "report.md", "report.png"} <= set(manifest["files"])

    # A finished study resumed again trains nothing and reports the same.
    assert main(["run", "--config", str(config), "--output-dir", str(output), "--resume", "--quiet"]) == 0
    assert len(read_records(output / "results.jsonl")) == 13
    assert _comparable(output / "report.json") == _comparable(paths["json"])


def test_a_changed_config_refuses_to_resume(uninterrupted, capsys):
    paths, _ = uninterrupted
    folder = paths["json"].parent
    before = {name: (folder / name).read_bytes() for name in ("results.jsonl", "report.json", "report.md")}
    config = _config_file(folder.parent, output_dir=str(folder), training={"num_train_epochs": 2})
    assert main(["run", "--config", str(config), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "recorded by a study with another config" in err and "num_train_epochs" in err and "Traceback" not in err
    assert main(["run", "--config", str(config), "--output-dir", str(folder), "--resume", "--epochs", "3"]) == 2
    assert "'num_train_epochs': 1" in capsys.readouterr().err
    assert {name: (folder / name).read_bytes() for name in before} == before
    # More seeds are not another study: only the new seed would be trained (checked by its config).
    assert StudyConfig.from_dict({**SMALL, "seeds": [0, 1]}).fingerprint() == StudyConfig.from_dict(SMALL).fingerprint()


def test_the_users_report_md_is_never_overwritten(tmp_path, capsys):
    output = tmp_path / "mine"
    output.mkdir()
    (output / "report.md").write_text("# my notes on the study")
    config = _config_file(tmp_path)
    for extra in ([], ["--overwrite"], ["--resume"]):
        assert main(["run", "--config", str(config), "--output-dir", str(output), *extra]) == 2
        err = capsys.readouterr().err
        assert "report.md would be overwritten but mtaffect did not write it" in err, err
    assert (output / "report.md").read_text() == "# my notes on the study"
    assert sorted(p.name for p in output.iterdir()) == ["report.md"]


def test_an_interrupted_overwrite_leaves_the_earlier_study_whole(uninterrupted, tmp_path):
    paths, _ = uninterrupted
    folder = paths["json"].parent
    (folder / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    process = _start(_config_file(tmp_path), folder, "--overwrite")
    scratch = folder.parent / f".{folder.name}.mtaffect-study"
    out, err = _interrupt_after(process, scratch / "results.jsonl", records=1)
    assert process.returncode == 130 and "Traceback" not in err, err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before  # file by file
    assert str(scratch / "results.jsonl") in err  # --resume continues the replacement there


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_with_one_line(tmp_path):
    # Three seeds' jobs on two workers: most are still waiting when Ctrl-C comes.
    config = _config_file(tmp_path, seeds=[0, 1, 2], workers=2)
    output = tmp_path / "parallel"
    process = _start(config, output)
    out, err = _interrupt_after(process, output / "results.jsonl", records=1)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    # Exactly the one line: no resource tracker's "leaked semaphore" warning (workers exit normally).
    assert "leaked" not in err and "resource_tracker" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mtaffect run: interrupted;"), err
    assert lines[0].endswith("--resume to continue."), err
    records = read_records(output / "results.jsonl")  # every line whole (a broken one is named)
    keys = [(r["seed"], r["setting"], r["model"]) for r in records]
    assert len(keys) == len(set(keys)) and len(records) < 3 * 3 + 3 * 10  # each once; jobs were left
    deadline = time.time() + 15  # the resource tracker outlives the command a moment (a zombie until reaped)
    while time.time() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    with pytest.raises(ProcessLookupError):  # no worker is left running
        os.killpg(process.pid, 0)


@pytest.mark.slow
def test_ctrl_c_on_the_ray_backend_then_resume_on_the_local_one(ray_cluster, uninterrupted, tmp_path):
    """A SIGINT to a Ray driver leaves results.jsonl whole; the local backend finishes the study to the same report.

    Slow (a driver process of its own: ~35 s on 2 shared cores); the fast suite has the local
    Ctrl-C test above and the Ray node-loss test (tests/test_study.py).
    """
    cluster, _ = ray_cluster
    paths, _ = uninterrupted
    output = tmp_path / "ray"
    config = _config_file(tmp_path)
    process = _start(config, output, "--address", cluster.address)
    out, err = _interrupt_after(process, output / "results.jsonl", records=4)
    assert process.returncode == 130, err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].endswith("Run the same command with --resume to continue."), err
    before = read_records(output / "results.jsonl")  # every line whole: read_records would name a broken one
    assert 4 <= len(before) < 13
    assert main(["run", "--config", str(config), "--output-dir", str(output), "--resume", "--quiet",
                 "--backend", "local"]) == 0
    records = read_records(output / "results.jsonl")
    assert records[: len(before)] == before
    keys = [(r["seed"], r["setting"], r["model"]) for r in records]
    assert len(keys) == len(set(keys)) == 13
    ours, theirs = _comparable(output / "report.json"), _comparable(paths["json"])
    ours["metadata"].pop("backend"), theirs["metadata"].pop("backend")
    assert ours == theirs
