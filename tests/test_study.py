"""The study end to end on tiny synthetic corpora, and its config handling."""

from __future__ import annotations

import json

import pytest

from mtaffect.data.sources import CorpusSource
from mtaffect.study import StudyConfig, corpus_tasks, run_study
from mtaffect.teachers import choose_teacher

TINY = {
    "seeds": [0],
    "synthetic": {"seed": 0, "size_scale": 0.08, "max_length": 6},
    "model": {"hidden_size": 8, "num_heads": 2},
    "training": {"num_train_epochs": 1, "per_device_train_batch_size": 16},
    "weak_loss_weights": [0.5, 1.0],
    "cross_fit_folds": 2,
}


#: The runs that repeat the study (seeds in worker processes, a second seed to merge) on two
#: corpora: MOSEI (sentiment + emotion) and MUStARD (sarcasm), 3 probes + 6 models a seed
#: instead of TINY's 16. TINY itself (every corpus, every cell) runs once, in ``tiny_study``.
PAIR = {**TINY, "synthetic": {**TINY["synthetic"], "corpora": ["synthetic_mosei", "synthetic_mustard"]}}
#: 3 probes, 2 cross-fitted teachers (MOSEI's auxiliary emotion), 3 single-task, the control, 2 weak and 2 gold.
PAIR_STEPS = 13


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    output = tmp_path_factory.mktemp("study")
    config = StudyConfig.from_dict({**TINY, "output_dir": str(output)})
    events = []
    paths = run_study(config, progress=events.append)
    return paths, events


@pytest.fixture(scope="module")
def pair_study(tmp_path_factory):
    """PAIR's seed 0, in this process: the reference of the parallel and the merged runs."""
    output = tmp_path_factory.mktemp("pair-study")
    events = []
    paths = run_study(StudyConfig.from_dict({**PAIR, "output_dir": str(output)}), progress=events.append)
    assert [e.step for e in events] == list(range(1, PAIR_STEPS + 1))
    return paths, events


def test_study_writes_the_three_files_with_every_cell(tiny_study):
    paths, events = tiny_study
    payload = json.loads(paths["json"].read_text())
    records = payload["records"]
    cells = {(r["corpus"], r["task"], r["setting"]) for r in records}
    expected_pairs = {
        ("synthetic_mosei", "sentiment"),
        ("synthetic_mosei", "emotion"),
        ("synthetic_iemocap", "emotion"),
        ("synthetic_meld", "emotion"),
        ("synthetic_meld", "sentiment"),
        ("synthetic_mustard", "sarcasm"),
    }
    for corpus, task in expected_pairs:
        for setting in ("single-task", "multi-task", "multi-task-weak", "multi-task-gold"):
            assert (corpus, task, setting) in cells, (corpus, task, setting)
    assert {(r["corpus"], r["task"]) for r in records} == expected_pairs  # gold test labels only
    assert all(r["n_seeds"] == 1 and list(r["values"]) == ["0"] for r in records)
    metrics = {r["metric"] for r in records if r["task"] == "sentiment" and r["corpus"] == "synthetic_mosei"}
    assert {"sentiment_Has0_acc_2", "sentiment_Non0_acc_2", "sentiment_MAE", "sentiment_Mult_acc_7"} <= metrics
    chosen = payload["metadata"]["chosen on validation (per seed)"]["0"]
    # λ is chosen per (corpus, task) on that task's own validation score.
    grid = {"λ=0.5 mode=soft threshold=None", "λ=1.0 mode=soft threshold=None"}
    assert set(chosen["per task"]) == {f"{corpus}/{task}" for corpus, task in expected_pairs}
    assert set(chosen["per task"].values()) <= grid
    assert all(set(scores) == grid for scores in chosen["validation"].values())
    for key, point in chosen["per task"].items():
        assert chosen["validation"][key][point] == max(chosen["validation"][key].values()), key
    assert "synthetic_mustard/emotion: weak labels from the synthetic_mosei single-task model" in (
        payload["metadata"]["weak labels"]
    )
    table = paths["md"].read_text()
    assert "| synthetic_mustard | sarcasm | weighted F1 (`sarcasm_weighted_f1`) |" in table
    assert "| multi-task-weak − single-task |" in table.replace("| corpus | task | metric ", "|")
    assert payload["settings"] == ["linear-probe", "single-task", "multi-task", "multi-task-weak", "multi-task-gold"]
    # Every model's predicted-class counts on each test split (what shows a collapsed model).
    counts = {(c["setting"], c["corpus"], c["task"]): c["counts"] for c in payload["predicted_counts"]}
    mustard = counts[("multi-task-weak", "synthetic_mustard", "sarcasm")]
    assert set(mustard) == {"sarcastic", "not_sarcastic"}
    totals = {sum(c.values()) for (s, corpus, task), c in counts.items() if (corpus, task) == ("synthetic_mustard", "sarcasm")}
    assert len(totals) == 1 and totals.pop() > 0  # every model counted the same test rows
    assert "## Predicted classes" in table and "## The paper's claims" in table
    assert paths["png"].stat().st_size > 1000
    # Each task's test numbers come from its own best validation step, listed per setting.
    selected = chosen["selected steps"]
    assert set(selected["multi-task union"]) == {f"{corpus}/{task}" for corpus, task in expected_pairs}
    assert all(choice["step"] > 0 for choice in selected["multi-task union"].values())
    assert set(selected["linear-probe synthetic_meld/sentiment"]) == {"C"}
    # The corpora's gold auxiliary labels are replaced by their own cross-fitted teachers (own label space).
    notes = payload["metadata"]["weak labels"]
    for corpus, task in (("synthetic_meld", "sentiment"), ("synthetic_mosei", "emotion")):
        assert f"{corpus}/{task}: weak labels from 2 cross-fitted {corpus} {task} teachers" in " ".join(notes)
    # 6 probes and 2 x 2 cross-fit teachers (both once per study, before the seeds) + 6 single-task
    # + control + 2 weak candidates + 2 gold candidates = 21 steps, announced in order.
    assert [e.step for e in events] == list(range(1, 22))
    assert [e.setting for e in events[:11]] == ["linear-probe"] * 6 + ["cross-fit teacher"] * 4 + ["single-task"]
    assert events[-1].setting == "multi-task-gold" and events[-1].total == 21


def test_parallel_seeds_match_the_sequential_run(pair_study, tmp_path):
    """Seeds in worker processes give the numbers the in-process run gives for the same seed."""
    paths, _ = pair_study
    sequential = {
        (r["corpus"], r["metric"], r["setting"]): r["values"]["0"]
        for r in json.loads(paths["json"].read_text())["records"]
    }
    config = StudyConfig.from_dict({**PAIR, "seeds": [0, 1], "workers": 2, "output_dir": str(tmp_path)})
    events = []
    parallel_paths = run_study(config, progress=events.append)
    payload = json.loads(parallel_paths["json"].read_text())
    assert payload["metadata"]["workers"] == 2
    # The 3 probes and 2 cross-fitted teachers once per study, 8 models per seed.
    assert sorted(e.step for e in events) == list(range(1, 3 + 2 + 2 * 8 + 1))
    assert {e.seed for e in events} == {0, 1}
    # Whichever seed finishes first, the report lists them in the config's order.
    assert list(payload["metadata"]["chosen on validation (per seed)"]) == ["0", "1"]
    for record in payload["records"]:
        assert record["n_seeds"] == 2
        expected = sequential[(record["corpus"], record["metric"], record["setting"])]
        assert record["values"]["0"] == pytest.approx(expected, abs=1e-6), record


def test_report_command_merges_runs_of_different_seeds(pair_study, tmp_path, capsys):
    from mtaffect.cli.main import main

    paths, _ = pair_study
    run_study(StudyConfig.from_dict({**PAIR, "seeds": [1], "output_dir": str(tmp_path / "seed1")}))
    out = tmp_path / "all"
    assert main(["report", str(paths["json"].parent), str(tmp_path / "seed1" / "results.jsonl"),
                 "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    # The headline summary (≤ 100 columns), pointing at report.md for the full tables.
    assert "weighted F1" in printed and f"Full tables in {out / 'report.md'}" in printed
    assert max(len(line) for line in printed.splitlines() if str(tmp_path) not in line) <= 100
    merged = json.loads((out / "report.json").read_text())
    alone = {
        seed: {(r["corpus"], r["task"], r["metric"], r["setting"]): r["values"][str(seed)]
               for r in json.loads(report.read_text())["records"]}
        for seed, report in ((0, paths["json"]), (1, tmp_path / "seed1" / "report.json"))
    }
    assert merged["records"] and merged["metadata"]["seeds"] == [0, 1]
    for record in merged["records"]:
        key = (record["corpus"], record["task"], record["metric"], record["setting"])
        assert record["n_seeds"] == 2, key
        assert record["values"] == {"0": alone[0][key], "1": alone[1][key]}, key
        assert record["mean"] == pytest.approx((alone[0][key] + alone[1][key]) / 2), key
    assert list(merged["metadata"]["chosen on validation (per seed)"]) == ["0", "1"]
    assert (out / "report.md").is_file() and (out / "report.png").is_file() and (out / "results.jsonl").is_file()

    # Never over an existing report; never two different numbers for one seed.
    assert main(["report", str(tmp_path / "seed1"), "--output-dir", str(out)]) == 2
    assert "holds the output of an earlier `mtaffect report`" in capsys.readouterr().err
    lines = (tmp_path / "seed1" / "results.jsonl").read_text().splitlines()
    # One record per trained model (after the cross-fitted teachers' records, which hold no test numbers).
    index = next(i for i, line in enumerate(lines) if json.loads(line)["record"] == "model")
    first = json.loads(lines[index])
    first["results"][0]["value"] += 0.5
    altered = [*lines[:index], json.dumps(first), *lines[index + 1:]]
    (tmp_path / "altered.jsonl").write_text("\n".join(altered) + "\n")
    code = main(["report", str(tmp_path / "seed1"), str(tmp_path / "altered.jsonl"), "--output-dir", str(tmp_path / "x")])
    assert code == 2 and "disagree on" in capsys.readouterr().err
    assert not (tmp_path / "x" / "report.json").exists()


def test_teacher_is_never_the_target_and_shares_its_feature_set(tiny_family):
    config = StudyConfig()
    tasks = corpus_tasks(tiny_family, config)
    assert tasks["synthetic_mosei"] == ["sentiment", "emotion"]
    assert tasks["synthetic_meld"] == ["emotion", "sentiment"]
    assert choose_teacher("synthetic_mustard", "emotion", tiny_family, tasks) == "synthetic_mosei"
    assert choose_teacher("synthetic_mosei", "emotion", tiny_family, tasks) == "synthetic_meld"
    assert choose_teacher("synthetic_mosei", "sarcasm", tiny_family, tasks) == "synthetic_mustard"
    assert choose_teacher("synthetic_mustard", "sarcasm", tiny_family, tasks) is None


def test_gold_setting_only_when_some_auxiliary_label_can_be_replaced(tiny_family):
    from mtaffect.study import StudyPlan

    config = StudyConfig()
    assert StudyPlan.build(tiny_family, config).replaces_gold
    subset = {name: tiny_family[name] for name in ("synthetic_meld", "synthetic_mustard")}
    # MELD's auxiliary sentiment: its own cross-fitted teachers replace it, so gold and weak differ.
    plan = StudyPlan.build(subset, config)
    assert plan.replaces_gold and plan.cross_fit == [("synthetic_meld", "sentiment")]
    grid = len(config.weak_loss_weights)
    assert plan.models_per_seed == 3 + 3 + 1 + 2 * grid  # a probe per pair + the models (weak and gold grids)
    # Without cross-fitting no other sentiment corpus teaches it: gold == weak, not trained twice.
    plain = StudyPlan.build(subset, StudyConfig(cross_fit_folds=None))
    assert not plain.replaces_gold and not plain.cross_fit
    assert StudyPlan.build(subset, StudyConfig(linear_probe=False, cross_fit_folds=None)).models_per_seed == 3 + 1 + grid


def test_primary_task_override(tiny_family):
    config = StudyConfig(corpora=[CorpusSource("synthetic_mosei", primary_task="emotion")])
    assert corpus_tasks({"synthetic_mosei": tiny_family["synthetic_mosei"]}, config)["synthetic_mosei"] == [
        "emotion",
        "sentiment",
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"seeds": []}, "at least one seed"),
        ({"seeds": [1, 1]}, "duplicates"),
        ({"weak_loss_weights": [0.0]}, "must be positive"),
        ({"weak_label_modes": ["fuzzy"]}, "'soft' or 'hard'"),
        ({"tasks": ["humour"]}, "Unknown task 'humour'"),
        ({"epochs": 3}, r"unknown field\(s\) \['epochs'\]"),
        ({"corpora": [{"path": "x"}]}, "needs at least a 'name'"),
        ({"corpora": [{"name": "meld", "fold": 2}]}, r"unknown field\(s\) \['fold'\]"),
        ({"weak_thresholds": [1.5]}, "not in"),
        ({"workers": 0}, "'workers' must be >= 1"),
    ],
)
def test_bad_study_configs(payload, message):
    with pytest.raises(ValueError, match=message):
        StudyConfig.from_dict(payload)


def test_config_files(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("seeds: [3, 4]\ncorpora:\n  - name: meld\n    path: /data/meld\n    options: {}\nmodel:\n  hidden_size: 16\n")
    config = StudyConfig.from_file(path)
    assert config.seeds == [3, 4]
    assert config.corpora == [CorpusSource("meld", "/data/meld")]
    assert config.model["hidden_size"] == 16 and config.model["encoder_type"] == "transformer"
    broken = tmp_path / "broken.json"
    broken.write_text("{seeds: ")
    with pytest.raises(ValueError, match="broken.json: not valid json"):
        StudyConfig.from_file(broken)
    with pytest.raises(FileNotFoundError, match="study config file not found"):
        StudyConfig.from_file(tmp_path / "missing.yaml")


def test_cli_run_help_and_bad_flags(capsys):
    from mtaffect.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    assert "--output-dir" in capsys.readouterr().out
    assert main(["run", "--weak-loss-weights", "0"]) == 2
    assert "must be positive" in capsys.readouterr().err


def test_config_reader_is_shared_with_the_train_command(tmp_path):
    from mtaffect.cli.train import read_config

    path = tmp_path / "train.json"
    path.write_text('{"corpora": {"a": "x"}, "epochs": 1}')
    with pytest.raises(ValueError, match=r"train.json: unknown field\(s\) \['epochs'\]"):
        read_config(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="a training config is a mapping"):
        read_config(path)


@pytest.mark.slow
def test_default_run_reproduces_the_recorded_numbers(tmp_path, capsys):
    """The default `mtaffect run` is deterministic: a refactor must give the same report.json numbers.

    tests/data/default_run_numbers.json holds the numbers of the default run (recorded before the
    upper floors were refactored, re-recorded once label spaces, per-task selection and the linear
    probe changed the study on purpose, and again for cross-fitted teachers and the per-task λ; on the project's CPU machine: other CPUs may round differently).
    About 6 minutes on 2 cores (`pytest -m slow`). To re-record after a deliberate change:
    `python benchmarks/compare_reports.py --write-numbers tests/data/default_run_numbers.json REPORT`.
    """
    import importlib.util
    from pathlib import Path

    from mtaffect.cli.main import main

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("compare_reports", root / "benchmarks" / "compare_reports.py")
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    assert main(["run", "--quiet", "--output-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    recorded = json.loads((root / "tests" / "data" / "default_run_numbers.json").read_text())
    now = compare.numbers(json.loads((tmp_path / "report.json").read_text()))
    assert len(recorded["cells"]) == 305  # 5 settings (with the linear probe) x the corpora's metrics
    assert compare.differences(recorded, now) == []
