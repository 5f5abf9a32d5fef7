"""The results page generator (``examples/real_corpora/make_results_page.py``) on small real studies.

``tests/data/results_page/{speaker-independent,5-fold}/`` are the outputs of two 3-seed
``mtaffect run`` studies shaped like the recipe's (MELD emotion + sentiment, EmoryNLP emotion,
MUStARD sarcasm; the second with MUStARD given as 3 folds), run on synthetic corpora saved
under those names. They are trimmed to what the page reads: ``report.json`` with the records
and deltas of the page's metrics (no predicted counts, no selected steps), ``results.jsonl``
with the multi-task-gold choice records only, ``study.json``, ``corpora.json`` and (first
study) ``machine.json``. The numbers asserted here are recomputed from the reports' per-seed
values with numpy and scipy, independently of ``mtaffect.statistics``.

The fine-tuned-encoder and context studies are derived from the speaker-independent one the
way ``mtaffect run`` writes theirs (the structure of the reports that ``tests/test_study_encoders.py``
and ``tests/test_context.py`` make): its per-seed numbers, moved, written again by
``mtaffect.report.write_report`` (so the deltas, intervals and verdicts are the report's), with
the config and choices such a study records (``model.pretrained_encoders`` and no probe; a
``context_grid`` with the K each task chose per seed).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "data" / "results_page"


def _load_page_module():
    path = REPO / "examples" / "real_corpora" / "make_results_page.py"
    spec = importlib.util.spec_from_file_location("make_results_page_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


page = _load_page_module()


#: The fixture studies under tests/data/results_page/ (the others are derived from the first).
RECORDED = ("speaker-independent", "5-fold")
ENCODER = {"name_or_path": "sentence-transformers/all-MiniLM-L6-v2", "finetune": "top-2", "max_length": 48, "pooling": "mean"}


@pytest.fixture()
def results_dir(tmp_path):
    """A docs/results/ with both fixture studies and the recorded fine-tuning results."""
    target = tmp_path / "results"
    for name in RECORDED:
        shutil.copytree(FIXTURE / name, target / name)
    shutil.copyfile(REPO / "docs" / "results" / "finetune.json", target / "finetune.json")
    return target


def _derive(folder: Path, results: list, metadata: dict, choices: list[dict]) -> None:
    """A study folder as ``mtaffect run`` leaves it: report.{json,md,png} by ``write_report``, study.json, results.jsonl."""
    from mtaffect.report import write_report

    write_report(results, folder, metadata=metadata)
    (folder / "study.json").write_text(json.dumps(metadata["config"], indent=1), encoding="utf-8")
    (folder / "results.jsonl").write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in choices),
                                          encoding="utf-8")


@pytest.fixture(scope="module")
def derived(tmp_path_factory):
    """The fine-tuned-encoder study and the context study, derived from the speaker-independent fixture."""
    from mtaffect.report import Result, results_from_report

    root = tmp_path_factory.mktemp("derived")
    source = _report("speaker-independent")
    gold = [json.loads(line) for line in (FIXTURE / "speaker-independent" / "results.jsonl").read_text().splitlines()]
    rng = np.random.default_rng(7)
    moved = lambda value: float(np.clip(value + rng.normal(0.01, 0.03), 0, 1))  # noqa: E731

    # An encoder inside every model: no probe, the recipe's cut schedule (top-2, 1 epoch, one λ), the published files.
    results = [Result(r.setting, r.seed, r.corpus, r.task, r.metric, moved(r.value))
               for r in results_from_report(source) if r.setting != "linear-probe"]
    meta = copy.deepcopy(source["metadata"])
    config = meta["config"]
    config["corpora"] = [dict(c, path=f"published/{c['name']}") for c in config["corpora"]]
    config["model"] = meta["model"] = {"hidden_size": 128, "fusion": "concat", "dropout": 0.1,
                                       "pretrained_encoders": {"text": ENCODER}}
    config["training"] = meta["training"] = {"num_train_epochs": 1, "learning_rate": 1e-3, "encoder_learning_rate": 1e-4}
    config.update(weak_loss_weights=[1.0], linear_probe=False, output_dir="study-finetuned-output")
    meta["settings"] = [s for s in meta["settings"] if s != "linear-probe"]
    one_weight = lambda value: json.loads(json.dumps(value, ensure_ascii=False).replace("λ=0.5", "λ=1.0"))  # noqa: E731
    meta["chosen on validation (per seed)"] = one_weight(meta["chosen on validation (per seed)"])
    for corpus in meta["corpora"].values():
        corpus["feature_set"] = "text"
    _derive(root / "fine-tuned", results, meta, one_weight(gold))

    # The same study with context settings: each (corpus, task) reads the K its validation chose, per seed.
    results = results_from_report(source)
    results += [Result(f"{r.setting} + context", r.seed, r.corpus, r.task, r.metric, moved(r.value))
                for r in results if r.setting in ("single-task", "multi-task")]
    meta = copy.deepcopy(source["metadata"])
    meta["config"].update(context_grid=[2, 4], output_dir="study-context-output")
    meta["settings"] = [*meta["settings"], "single-task + context", "multi-task + context"]
    tasks = list(meta["chosen on validation (per seed)"]["0"]["per task"])
    for seed, choice in meta["chosen on validation (per seed)"].items():
        choice["context"] = {setting: {task: f"context past={(2, 4)[(int(seed) + i + j) % 2]}" for j, task in enumerate(tasks)}
                             for i, setting in enumerate(("single-task + context", "multi-task + context"))}
    _derive(root / "context-study", results, meta, gold)
    shutil.copyfile(FIXTURE / "speaker-independent" / "corpora.json", root / "context-study" / "corpora.json")
    return root


@pytest.fixture()
def all_studies(results_dir, derived):
    """docs/results/ with the four studies (the context study in its own folder, beside context_gain.py's)."""
    for folder in ("fine-tuned", "context-study"):
        shutil.copytree(derived / folder, results_dir / folder)
    return results_dir


def _study_report(results_dir: Path, folder: str) -> dict:
    return json.loads((results_dir / folder / "report.json").read_text(encoding="utf-8"))


def _mean_std(values) -> str:
    values = list(values)
    return f"{100 * np.mean(values):.2f} ± {100 * np.std(values, ddof=1):.2f}"


def _delta_cell(a: dict[str, float], b: dict[str, float]) -> str:
    """A paired Δ cell, recomputed with numpy and scipy from the two settings' per-seed values."""
    diffs = np.array([a[s] - b[s] for s in sorted(a) if s in b])
    if np.all(diffs == 0):
        return f"0.00 on every seed ({len(diffs)})"
    mean = diffs.mean()
    half = stats.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / math.sqrt(len(diffs))
    interval = f"{100 * mean:+.2f} [{100 * (mean - half):+.2f}, {100 * (mean + half):+.2f}]"
    if mean - half > 0 or mean + half < 0:
        interval = f"**{interval}**"
    return f"{interval} {int((diffs > 0).sum())}/{len(diffs)}"


def _report(name: str) -> dict:
    return json.loads((FIXTURE / name / "report.json").read_text(encoding="utf-8"))


def _values(report: dict, corpus: str, task: str, metric: str, setting: str) -> dict[str, float]:
    record = next(r for r in report["records"]
                  if (r["corpus"], r["task"], r["metric"], r["setting"]) == (corpus, task, metric, setting))
    return record["values"]


def _section(text: str, start: str, end: str | None = None) -> str:
    part = text[text.index(start):]
    return part[: part.index(end)] if end else part


def _row(text: str, *cells: str) -> list[str]:
    """The cells of the first table row that starts with ``cells``."""
    prefix = "| " + " | ".join(cells) + " |"
    line = next(line for line in text.splitlines() if line.startswith(prefix))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_main_table_is_mean_and_std_over_seeds(results_dir):
    text = page.render_folder(results_dir)
    report = _report("speaker-independent")
    section = _section(text, "## Speaker-independent study", "## 5-fold study")
    results = _section(section, "### Results", "### Paired differences")
    header = _row(results, "corpus", "task", "metric")
    assert header[3:] == ["linear-probe", "single-task", "multi-task", "multi-task-weak", "multi-task-gold"]
    for corpus, task, metric in (("meld", "emotion", "emotion_weighted_f1"), ("emorynlp", "emotion", "emotion_accuracy"),
                                 ("mustard", "sarcasm", "sarcasm_weighted_f1")):
        row = _row(results, corpus, task, f"`{metric}`")
        for setting, cell in zip(header[3:], row[3:]):
            values = list(_values(report, corpus, task, metric, setting).values())
            assert len(values) == 3
            mean, std = np.mean(values), np.std(values, ddof=1)
            assert cell == f"{100 * mean:.2f} ± {100 * std:.2f}", (corpus, metric, setting)


def test_paired_deltas_carry_the_t_interval_and_seed_counts(results_dir):
    text = page.render_folder(results_dir)
    for name, title in (("speaker-independent", "## Speaker-independent study"), ("5-fold", "## 5-fold study")):
        report = _report(name)
        deltas = _section(_section(text, title), "### Paired differences", "### The paper's claims")
        header = _row(deltas, "corpus", "task", "metric")
        assert header[3:] == [f"{s} − {r}" for s, r in page.COMPARISONS]
        checked = 0
        for corpus, task, metric in (("meld", "emotion", "emotion_weighted_f1"), ("emorynlp", "emotion", "emotion_weighted_f1"),
                                     ("mustard", "sarcasm", "sarcasm_weighted_f1")):
            row = _row(deltas, corpus, task, f"`{metric}`")
            for (setting, reference), cell in zip(page.COMPARISONS, row[3:]):
                a, b = (_values(report, corpus, task, metric, s) for s in (setting, reference))
                diffs = np.array([a[s] - b[s] for s in sorted(a) if s in b])
                if np.all(diffs == 0):
                    assert cell == f"0.00 on every seed ({len(diffs)})"
                    continue
                mean = diffs.mean()
                half = stats.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / math.sqrt(len(diffs))
                interval = f"{100 * mean:+.2f} [{100 * (mean - half):+.2f}, {100 * (mean + half):+.2f}]"
                if mean - half > 0 or mean + half < 0:
                    interval = f"**{interval}**"
                assert cell == f"{interval} {int((diffs > 0).sum())}/{len(diffs)}", (name, corpus, setting, reference)
                checked += 1
        assert checked >= 5


def test_claims_collapses_and_choices_come_from_the_report(results_dir):
    text = page.render_folder(results_dir)
    summary = _section(text, "## The paper's claims, in short", "## Speaker-independent study")
    si, folds = _report("speaker-independent"), _report("5-fold")
    for a, b in zip(si["claims"], folds["claims"]):
        assert _row(summary, a["claim"], a["comparison"])[2:] == [f"**{a['verdict']}**", f"**{b['verdict']}**"]
    section = _section(text, "## 5-fold study")
    claims = _section(section, "### The paper's claims", "### Collapsed models")
    for claim in folds["claims"]:
        assert _row(claims, claim["claim"], claim["comparison"])[2:] == [f"**{claim['verdict']}**", claim["reason"]]
        for item in claim["evidence"]:
            assert f"    - {item}" in claims

    # A collapse on one fold only is listed with its fold (the fold mean hides it).
    collapses = _section(section, "### Collapsed models", "### λ chosen on validation")
    one_fold = [c for c in folds["collapses"] if c["corpus"].endswith(")")
                and not any(d["corpus"] == c["corpus"].split(" (")[0] and (d["setting"], d["seed"], d["task"], d["label"])
                            == (c["setting"], c["seed"], c["task"], c["label"]) for d in folds["collapses"])]
    assert one_fold, "the fixture should hold a collapse of one fold only"
    c = one_fold[0]
    fold = c["corpus"].split("(fold ")[1].rstrip(")")
    line = next(line for line in collapses.splitlines()
                if line.startswith(f"    - {c['setting']} · {c['corpus'].split(' (')[0]} {c['task']}: only `{c['label']}`"))
    assert f"seed {c['seed']} (fold {fold})" in line or f"{c['seed']} (fold {fold})" in line

    # λ per task per seed (per fold in the 5-fold study), weak from the report, gold from results.jsonl.
    choices = _section(section, "### λ chosen on validation", "![")
    chosen = folds["metadata"]["chosen on validation (per seed)"]["2"]["per fold"]
    weights = " · ".join(chosen[k]["per task"]["mustard/sarcasm"].split()[0].removeprefix("λ=") for k in sorted(chosen))
    header = _row(choices, "seed")
    row = _row(choices, "2")
    assert row[header.index("weak: mustard/sarcasm")] == weights and weights.count("·") == 2
    gold = [json.loads(line) for line in (FIXTURE / "5-fold" / "results.jsonl").read_text().splitlines()]
    gold = sorted((r for r in gold if r["seed"] == 2), key=lambda r: r["fold"])
    assert row[header.index("gold: meld/sentiment")] == " · ".join(
        r["chosen"]["per task"]["meld/sentiment"].split()[0].removeprefix("λ=") for r in gold)


def test_what_ran_names_sizes_protocol_config_and_wall_time(results_dir):
    text = page.render_folder(results_dir)
    si = _section(text, "## Speaker-independent study", "## 5-fold study")
    corpora = json.loads((FIXTURE / "5-fold" / "corpora.json").read_text())
    meld = corpora["meld-x"]["splits"]
    assert _row(si, "meld")[1:4] == ["emotion, sentiment", "`synthetic-cmu`", f"{meld['train']} / {meld['validation']} / {meld['test']}"]
    report = _report("speaker-independent")
    assert f"{report['metadata']['wall_time_seconds']:.0f} s" in si
    assert "2 CPU cores (AMD EPYC), no GPU" in si and "[study.json](results/speaker-independent/study.json)" in si
    for note in report["metadata"]["weak labels"]:
        assert f"    - {note}" in si
    folds = _section(text, "## 5-fold study")
    row = _row(folds, "mustard")
    fold0 = corpora["mustard-fold0-x"]["splits"]
    assert row[3] == f"{fold0['train']} / {fold0['validation']} / {fold0['test']} per fold"
    assert row[4].startswith("3 folds inside the study")
    assert "machine not recorded" in _section(folds, "### What ran", "### Results")
    assert f"{_report('5-fold')['metadata']['wall_time_seconds']:.0f} s" in folds


def test_same_runs_note_only_where_weak_and_gold_score_alike(results_dir):
    si = _report("speaker-independent")
    folds = _report("5-fold")
    pairs = lambda r: [d for d in r["deltas"] if (d["setting"], d["reference"]) == ("multi-task-weak", "multi-task-gold")]  # noqa: E731
    assert all(d["mean"] == 0 and d["std"] == 0 for d in pairs(si))
    assert not all(d["mean"] == 0 and d["std"] == 0 for d in pairs(folds))
    text = page.render_folder(results_dir)
    title = "multi-task-weak and multi-task-gold score the same here"
    assert title in _section(text, "## Speaker-independent study", "## 5-fold study")
    assert title not in _section(text, "## 5-fold study")
    # One weak number moved: the note goes, whatever the other tasks do.
    changed = copy.deepcopy(si)
    for d in changed["deltas"]:
        if (d["setting"], d["reference"], d["metric"]) == ("multi-task-weak", "multi-task-gold", "emotion_weighted_f1"):
            d.update(mean=0.01, std=0.005, low=-0.002, high=0.022, seeds_better=2)
            break
    (results_dir / "speaker-independent" / "report.json").write_text(json.dumps(changed), encoding="utf-8")
    assert title not in page.render_folder(results_dir)


def test_published_numbers_sit_beside_the_study_of_their_protocol(results_dir):
    text = page.render_folder(results_dir)
    published = _section(text, "## Published text-only numbers", "## Fine-tuning")
    entries = page.load_published()
    leaderboard = [e for e in entries if "LEADERBOARD.md" in e.get("url", "")]
    assert sorted((e["corpus"], e["value"], e["context"]) for e in leaderboard) == [
        ("emorynlp", 34.148, True), ("emorynlp", 34.414, False), ("meld", 62.638, False), ("meld", 63.535, True)
    ]
    assert all(e["fine_tuned"] and "053f22760589d35d9bc9d3e1429ce34664e54b86" in e["url"] for e in leaderboard)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in published.splitlines()
            if line.startswith("| mustard | sarcasm |")]
    assert len(rows) == 2
    folds = _report("5-fold")
    single = list(_values(folds, "mustard", "sarcasm", "sarcasm_weighted_f1", "single-task").values())
    five_fold = next(r for r in rows if "5-fold" in r[3])
    assert five_fold[5] == "not retrieved" and five_fold[6] == "5-fold study"
    assert five_fold[8] == f"{100 * np.mean(single):.2f} ± {100 * np.std(single, ddof=1):.2f}"
    emory = _row(published, "emorynlp", "emotion")
    assert emory[5] == "34.414" and "**fine-tuned**" in emory[2] and emory[6] == "Speaker-independent study"
    missing = sum(1 for e in entries if e.get("value") is None)
    assert f"{missing} published number(s) above could not be retrieved" in published
    # The fine-tuning section lists the fine-tuned MELD numbers beside examples/finetune_meld.py's.
    finetune = _section(text, "## Fine-tuning the text encoder inside the model", "## Reproduce")
    assert "| 62.638 | – | – |" in finetune and "| 63.46 | – | – |" in finetune


def test_script_copies_the_studies_and_writes_the_page(tmp_path, capsys):
    docs = tmp_path / "docs"
    work = tmp_path / "work"
    for name, folder in (("speaker-independent", "study-output"), ("5-fold", "study-5fold-output")):
        shutil.copytree(FIXTURE / name, work / folder)
        (work / folder / "corpora.json").unlink()  # run.sh's prepare.py writes it one folder up
    shutil.copyfile(FIXTURE / "5-fold" / "corpora.json", work / "corpora.json")
    page.main(["--docs", str(docs), "--study", f"speaker-independent={work / 'study-output'}",
               "--study", f"5-fold={work / 'study-5fold-output'}",
               "--finetune", str(REPO / "docs" / "results" / "finetune.json")])
    assert (docs / "results.md").read_text(encoding="utf-8") == page.render_folder(docs / "results")
    for name in RECORDED:
        assert {p.name for p in (docs / "results" / name).iterdir()} >= {"report.json", "results.jsonl", "study.json", "corpora.json"}
    # Rebuilding from the copies alone gives the same page.
    before = (docs / "results.md").read_text(encoding="utf-8")
    page.main(["--docs", str(docs)])
    assert (docs / "results.md").read_text(encoding="utf-8") == before

    with pytest.raises(SystemExit, match="no report.json here"):
        page.main(["--docs", str(docs), "--study", f"5-fold={tmp_path / 'nowhere'}"])
    with pytest.raises(SystemExit, match="no study folder"):
        page.main(["--docs", str(tmp_path / "empty-docs")])
    with pytest.raises(SystemExit):
        page.main(["--docs", str(docs), "--study", "4-fold=x"])
    assert "NAME=FOLDER" in capsys.readouterr().err


def test_published_file_is_checked(tmp_path):
    bad = tmp_path / "published.yaml"
    bad.write_text("- corpus: meld\n  task: emotion\n  metric: emotion_weighted_f1\n  model: m\n  source: s\n  value: '62'\n")
    with pytest.raises(ValueError, match="must be a number"):
        page.load_published(bad)
    bad.write_text("- corpus: meld\n  task: emotion\n  metric: emotion_weighted_f1\n  model: m\n  source: s\n  study: 4-fold\n")
    with pytest.raises(ValueError, match="study of"):
        page.load_published(bad)


def test_a_partial_study_says_so(results_dir):
    """A report merged by ``mtaffect report`` before the study ended: fewer seeds than the config, no config copy."""
    text = page.render_folder(results_dir)
    assert "A partial study" not in text
    folder = results_dir / "5-fold"
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    config = report["metadata"].pop("config")
    for key in ("model", "training", "sampling", "wall_time_seconds"):
        report["metadata"].pop(key)
    (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")
    (folder / "study.json").write_text(json.dumps(dict(config, seeds=[0, 1, 2, 3, 4])), encoding="utf-8")
    section = _section(page.render_folder(results_dir), "## 5-fold study")
    assert "This report holds 3 of the 5 seeds the study was started with (seeds 3, 4 had not finished" in section
    assert f"**Model** (`MTAffectConfig`): {json.dumps(config['model'], sort_keys=True)}" in section
    assert '"strategy": "temperature"' in section and "**Wall time**: not recorded" in section


def test_a_study_not_recorded_yet_is_named(results_dir):
    shutil.rmtree(results_dir / "5-fold")
    text = page.render_folder(results_dir)
    assert "in one study: **Speaker-independent study** (3 seeds)" in text
    assert "The 5-fold study (`examples/real_corpora/study-5fold.yaml`) is not recorded here yet." in text
    assert "## 5-fold study" not in text
    # Published numbers of a protocol whose study is missing get no number of ours.
    row = next(line for line in text.splitlines() if line.startswith("| mustard | sarcasm |") and "5-fold" in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[6] == "not run" and cells[7:11] == ["–"] * 4


def test_a_resumed_partial_report_keeps_the_planned_seeds_of_study_json(results_dir):
    """``mtaffect run --resume --seeds 0 1`` on a copy: its report and config say 2 seeds; study.json, as started, 5."""
    folder = results_dir / "speaker-independent"
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    report["metadata"]["seeds"] = report["metadata"]["config"]["seeds"] = [0, 1]
    report["metadata"]["wall_time_seconds"] = 0.7
    (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")
    started = json.loads((folder / "study.json").read_text(encoding="utf-8"))
    (folder / "study.json").write_text(json.dumps(dict(started, seeds=[0, 1, 2, 3, 4])), encoding="utf-8")
    section = _section(page.render_folder(results_dir), "## Speaker-independent study", "## 5-fold study")
    assert "This report holds 2 of the 5 seeds the study was started with (seeds 2, 3, 4" in section
    assert "0.7 s" not in section and "**Wall time**: not recorded" in section


def test_a_study_without_cross_fitting_or_gold_setting(results_dir):
    """The recipe's 5-fold study: one λ, no cross-fitting, so no multi-task-gold."""
    folder = results_dir / "5-fold"
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    report["metadata"]["config"]["cross_fit_folds"] = None
    report["settings"] = report["metadata"]["settings"] = [s for s in report["settings"] if s != "multi-task-gold"]
    report["records"] = [r for r in report["records"] if r["setting"] != "multi-task-gold"]
    report["deltas"] = [d for d in report["deltas"] if "multi-task-gold" not in (d["setting"], d["reference"])]
    (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")
    (folder / "results.jsonl").unlink()
    section = _section(page.render_folder(results_dir), "## 5-fold study", "## Published")
    assert "no cross-fitting (a corpus' own auxiliary labels stay gold)" in section
    assert "multi-task-gold" not in _section(section, "### Results", "### The paper's claims")
    assert "multi-task-gold runs the same grid" not in section
    assert "This study does no cross-fitting (`cross_fit_folds: null`)" in section
    assert _row(section, "seed")[1:] == [f"weak: {t}" for t in ("meld/emotion", "meld/sentiment", "emorynlp/emotion", "mustard/sarcasm")]


def test_the_page_names_the_headline_metrics_of_mtaffect_metrics(results_dir):
    """One place decides the headline metrics: the page says which of its rows they are, from
    ``mtaffect.metrics.headline_metrics`` (no one-vs-rest mean among them), and reads without a
    doubled word or a recorded note that says the opposite of what happened."""
    from mtaffect.metrics import headline_metrics, is_one_vs_rest

    text = page.render_folder(results_dir)
    for (corpus, task), metrics in page.SHOWN.items():
        labels = [m.label for m in headline_metrics(metrics, task=task)]
        assert labels and metrics[0] == headline_metrics(metrics, task=task)[0].key
        assert f"{corpus} {task}: {' and '.join(labels)}" in text
        assert not any(is_one_vs_rest(metric) for metric in metrics)
    assert "study study" not in text and "left without" not in text
    assert page._note_text("meld/sentiment: no teacher with the same feature set; left without sentiment labels "
                           "(gold auxiliary labels kept)") == (
        "meld/sentiment: no teacher with the same feature set, so no weak sentiment labels; its gold sentiment "
        "labels (auxiliary) are kept")


def test_context_section_shows_the_paired_gain_beside_published_pairs(results_dir):
    assert "## Conversational context" not in page.render_folder(results_dir)  # no summary, no section
    summary = {"meld": {"task": "emotion", "chosen_past": "2", "train_time_ratio": 1.5,
                        "by_past": {"0": {"test": 55.87, "test_std": 0.35, "validation": 51.53, "seeds": [0, 1]},
                                    "2": {"test": 56.29, "test_std": 0.37, "validation": 51.61, "seeds": [0, 1]},
                                    "4": {"test": 55.96, "test_std": 0.2, "validation": 50.64, "seeds": [0, 1]}},
                        "delta": {"mean": 0.43, "low": -0.01, "high": 0.86, "n": 5, "improved": 4}}}
    (results_dir / "context").mkdir()
    (results_dir / "context" / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    section = _section(page.render_folder(results_dir), "## Conversational context", "## Reproduce")
    assert ("| MELD emotion | `emotion_weighted_f1` | 0, 2, 4 | 55.87 ± 0.35 | K = 2: 56.29 ± 0.37 | "
            "+0.43 [-0.01, +0.86] | 4 of 5 | ×1.50 (runs at different times: noisy) |") in section
    assert "| MELD emotion | 2 | 51.61 | 56.29 ± 0.37 | 2 |" in section  # every setting, validation beside test
    published = [line for line in section.splitlines() if line.startswith("| MELD emotion | [RoBERTa")]
    assert len(published) == 1
    assert "| 62.638 |" in published[0] and "| 63.535 |" in published[0] and "| +0.90 |" in published[0]
    runs = [{"steps": 150, "train_seconds": 253.7, "train_examples": {"meld": 2400}, "scores": {"meld_emotion_weighted_f1": 47.2},
             "options": {"epochs": 1.0, "batch_size": 16, "max_length": 128, "context_past": 0}},
            {"steps": 150, "train_seconds": 731.9, "train_examples": {"meld": 2400}, "scores": {"meld_emotion_weighted_f1": 39.87},
             "options": {"epochs": 1.0, "batch_size": 16, "max_length": 128, "context_past": 2}}]
    (results_dir / "context" / "finetune.json").write_text(json.dumps(runs), encoding="utf-8")
    section = _section(page.render_folder(results_dir), "## Conversational context", "## Reproduce")
    assert "| K = 2 | 150 | 732 s | 39.87 | – |" in section and "first 2400 MELD train utterances" in section


def test_the_new_studies_are_named_but_not_shown_until_recorded(results_dir):
    text = page.render_folder(results_dir)
    for title, config in (("fine-tuned-encoder study", "study-finetuned.yaml"), ("context study", "study-context.yaml")):
        assert f"The {title} (`examples/real_corpora/{config}`) is not recorded here yet." in text
    assert "## Fine-tuned-encoder study" not in text and "## Context study" not in text
    assert "(where it ran)" not in text and "| Fine-tuned-encoder study |" not in text
    reproduce = _section(text, "## Reproduce")
    assert ("    --study fine-tuned=mtaffect-real-corpora/study-finetuned-output \\\n"
            "    --study context=mtaffect-real-corpora/study-context-output\n") in reproduce


def test_fine_tuned_study_has_no_probe_names_its_cut_schedule_and_sits_beside_published_fine_tuned(all_studies):
    text = page.render_folder(all_studies)
    report, si = _study_report(all_studies, "fine-tuned"), _report("speaker-independent")
    intro = text[: text.index("## The paper's claims, in short")]
    assert "in two studies: **Speaker-independent study** (3 seeds); **5-fold study** (3 seeds)" in intro
    assert "The **Fine-tuned-encoder study** (3 seeds) reads the published transcripts instead" in intro
    assert "fine-tuned-encoder study (`examples" not in intro and "Each compares the linear probe (where it ran)," in intro
    summary = _section(text, "## The paper's claims, in short", "## Speaker-independent study")
    header = _row(summary, "claim", "comparison")
    claim = report["claims"][0]
    assert _row(summary, claim["claim"], claim["comparison"])[header.index("Fine-tuned-encoder study")] == f"**{claim['verdict']}**"
    assert ("The fine-tuned-encoder study decides them on 3 seeds of a schedule cut to fit a CPU (1 epoch, λ candidates "
            "1.0, 2 cross-fitted teachers; see its section): a first look at a trained encoder.") in summary

    section = _section(text, "## Fine-tuned-encoder study", "## Context study")
    assert "[report.json](results/fine-tuned/report.json)" in section
    # No linear probe anywhere in its tables: there are no features for one.
    results = _section(section, "### Results", "### Paired differences")
    assert _row(results, "corpus", "task", "metric")[3:] == ["single-task", "multi-task", "multi-task-weak", "multi-task-gold"]
    assert "no `linear-probe`: the models read the text itself" in results and "`linear-probe` is a logistic" not in results
    assert "linear-probe" not in _section(section, "### Paired differences", "### Beside")
    row = _row(results, "meld", "emotion", "`emotion_weighted_f1`")
    assert row[4] == _mean_std(_values(report, "meld", "emotion", "emotion_weighted_f1", "multi-task").values())
    deltas = _section(section, "### Paired differences", "### Beside")
    assert _row(deltas, "corpus", "task", "metric")[3:] == [f"{s} − {r}" for s, r in page.COMPARISONS if r != "linear-probe"]
    assert _row(deltas, "mustard", "sarcasm", "`sarcasm_weighted_f1`")[3] == _delta_cell(
        *(_values(report, "mustard", "sarcasm", "sarcasm_weighted_f1", s) for s in ("multi-task", "single-task")))

    # What was cut, read from the config as run, beside the library's defaults and the frozen study's grid.
    cut = _section(section, "### What was cut to fit the CPU", "### Results")
    assert "[study.json](results/fine-tuned/study.json)" in cut
    assert _row(cut, "text encoder")[1:] == ["`sentence-transformers/all-MiniLM-L6-v2`",
                                             "frozen features `synthetic-cmu` (the Speaker-independent study)"]
    assert _row(cut, "text encoder fine-tuning (`finetune`)")[1:3] == ["`top-2`", "`full` (the library's default: every layer trains)"]
    assert _row(cut, "text input length (`max_length`, tokens)")[1] == "48"
    assert _row(cut, "epochs (`training.num_train_epochs`)")[1:3] == ["1", "3 (the library's default for a model whose encoder trains, `mtaffect.recipes.ENCODER_TRAINING_DEFAULTS`)"]
    assert _row(cut, "λ candidates (`weak_loss_weights`)")[1:3] == ["1.0", "0.5, 1.0 (the Speaker-independent study)"]
    assert _row(cut, "cross-fitted teachers (`cross_fit_folds`)")[1] == "2"
    assert _row(cut, "seeds")[1] == "3 (0, 1, 2)"

    # Beside the frozen-feature study and the published fine-tuned models that read one utterance.
    beside = _section(section, "### Beside frozen features and published fine-tuned models", "### The paper's claims")
    header = _row(beside, "model")
    assert header[1:] == ["MELD emotion `emotion_weighted_f1`", "MELD sentiment `sentiment_weighted_f1`",
                          "EmoryNLP emotion `emotion_weighted_f1`", "MUStARD sarcasm `sarcasm_weighted_f1`"]
    ours = _row(beside, "this study (encoder fine-tuned: `top-2`): multi-task-weak")
    frozen = _row(beside, "Speaker-independent study (frozen features): linear-probe")
    for (corpus, task, metric), mine, theirs in zip((("meld", "emotion", "emotion_weighted_f1"),
                                                     ("meld", "sentiment", "sentiment_weighted_f1"),
                                                     ("emorynlp", "emotion", "emotion_weighted_f1"),
                                                     ("mustard", "sarcasm", "sarcasm_weighted_f1")), ours[1:], frozen[1:]):
        assert mine == _mean_std(_values(report, corpus, task, metric, "multi-task-weak").values())
        assert theirs == _mean_std(_values(si, corpus, task, metric, "linear-probe").values())
    entries = page.load_published()
    utterance = next(e for e in entries if e.get("context") is False and e["corpus"] == "meld")
    published = _row(beside, f"published: [{utterance['model']}]({utterance['url']})")
    assert published[1:] == ["62.638", "–", "34.414", "–"]  # one row for the model published on MELD and EmoryNLP
    assert "| 63.46 |" in beside and "63.535" not in beside and "34.148" not in beside  # no context-aware model here
    assert "not a like-for-like comparison" in beside
    # One λ: the one each task chose, for weak and gold labels alike.
    choices = _section(section, "### λ chosen on validation", "![")
    assert _row(choices, "0")[1:] == ["1.0"] * 8 and "### Context chosen" not in section


def test_context_study_shows_its_settings_paired_deltas_chosen_k_and_published_pairs(all_studies):
    text = page.render_folder(all_studies)
    report = _study_report(all_studies, "context-study")
    intro = text[: text.index("## The paper's claims, in short")]
    assert "The **Context study** (3 seeds) is the speaker-independent study with two more settings" in intro
    summary = _section(text, "## The paper's claims, in short", "## Speaker-independent study")
    assert "The context study decides them on its context-free settings; no claim reads `single-task + context` or `multi-task + context`" in summary

    section = _section(text, "## Context study", "## Published text-only numbers")
    assert "[report.json](results/context-study/report.json)" in section and "(results/context-study/report.png)" in section
    results = _section(section, "### Results", "### Paired differences")
    header = _row(results, "corpus", "task", "metric")
    assert header[3:] == ["linear-probe", "single-task", "multi-task", "multi-task-weak", "multi-task-gold",
                          "single-task + context", "multi-task + context"]
    assert "K chosen per corpus × task on validation among 2, 4 (`context_grid`)" in results
    for corpus, task, metric in (("meld", "emotion", "emotion_weighted_f1"), ("mustard", "sarcasm", "sarcasm_accuracy")):
        row = _row(results, corpus, task, f"`{metric}`")
        for setting in ("single-task + context", "multi-task + context"):
            assert row[header.index(setting)] == _mean_std(_values(report, corpus, task, metric, setting).values())

    # The weak-supervision Δs as before; context's three paired Δs in their own table, with their intervals.
    deltas = _section(section, "### Paired differences", "### Beside")
    assert _row(deltas, "corpus", "task", "metric")[3:] == [f"{s} − {r}" for s, r in page.COMPARISONS]
    context = _section(deltas, "What conversational context adds")
    assert _row(context, "corpus", "task", "metric")[3:] == [
        "single-task + context − single-task", "multi-task + context − multi-task",
        "multi-task + context − single-task + context"]
    checked = 0
    for corpus, task, metric in (("meld", "emotion", "emotion_weighted_f1"), ("meld", "sentiment", "sentiment_weighted_f1"),
                                 ("emorynlp", "emotion", "emotion_weighted_f1"), ("mustard", "sarcasm", "sarcasm_weighted_f1")):
        row = _row(context, corpus, task, f"`{metric}`")
        for (setting, reference), cell in zip(page.CONTEXT_COMPARISONS, row[3:]):
            assert cell == _delta_cell(*(_values(report, corpus, task, metric, s) for s in (setting, reference))), (
                corpus, setting, reference)
            assert "[" in cell  # an interval: three seeds paired
            checked += 1
    assert checked == 12

    # The K each task chose per seed, as the report recorded it.
    choices = _section(section, "### Context chosen on validation", "![")
    assert _row(choices, "setting", "corpus/task")[2:] == ["seed 0", "seed 1", "seed 2"]
    chosen = report["metadata"]["chosen on validation (per seed)"]
    for setting in ("single-task + context", "multi-task + context"):
        for task in ("meld/emotion", "meld/sentiment", "emorynlp/emotion", "mustard/sarcasm"):
            expected = [f"K = {chosen[seed]['context'][setting][task].removeprefix('context past=')}" for seed in "012"]
            assert _row(choices, setting, task)[2:] == expected
    assert {"K = 2", "K = 4"} <= set(_row(choices, "single-task + context", "meld/emotion")[2:])

    # Beside the published models without and with context (EmoBERTa's 01-utt and all-utt-SPEAKER).
    beside = _section(section, "### Beside published models with and without context", "### The paper's claims")
    assert _row(beside, "model")[1:] == ["reads context", "MELD emotion `emotion_weighted_f1`",
                                         "EmoryNLP emotion `emotion_weighted_f1`"]
    entries = page.load_published()
    without = next(e for e in entries if e.get("context") is False)
    with_ = next(e for e in entries if e.get("context") is True)
    assert _row(beside, f"published: [{without['model']}]({without['url']})")[1:] == ["no", "62.638", "34.414"]
    assert _row(beside, f"published: [{with_['model']}]({with_['url']})")[1:] == ["yes", "63.535", "34.148"]
    ours = _row(beside, "this study: multi-task + context")
    assert ours[1] == "yes (K chosen on validation)"
    assert ours[2:] == [_mean_std(_values(report, c, "emotion", "emotion_weighted_f1", "multi-task + context").values())
                        for c in ("meld", "emorynlp")]
    assert _row(beside, "this study: single-task")[1] == "no" and "63.46" not in beside  # no context key: not a pair

    # The other studies render as they did without the new ones.
    for title, end in (("## Speaker-independent study", "## 5-fold study"), ("## 5-fold study", "## Fine-tuned-encoder study")):
        assert _section(text, title, end) == _section(page.render_folder(_without_new(all_studies)), title,
                                                      "## Published" if end != "## 5-fold study" else end)


def _without_new(results_dir: Path) -> Path:
    target = results_dir.parent / "without-new"
    if not target.exists():
        shutil.copytree(results_dir, target, ignore=shutil.ignore_patterns("fine-tuned", "context-study"))
    return target


def test_the_context_study_is_copied_beside_context_gains_records(results_dir, derived, tmp_path):
    """``--study context=...`` copies into docs/results/context-study/: docs/results/context/ holds
    benchmarks/context_gain.py's results.jsonl, which the study's own would overwrite."""
    docs = tmp_path / "docs"
    shutil.copytree(results_dir, docs / "results")
    (docs / "results" / "context").mkdir()
    (docs / "results" / "context" / "results.jsonl").write_text('{"context_gain": true}\n', encoding="utf-8")
    page.main(["--docs", str(docs), "--study", f"context={derived / 'context-study'}",
               "--study", f"fine-tuned={derived / 'fine-tuned'}"])
    assert (docs / "results" / "context" / "results.jsonl").read_text(encoding="utf-8") == '{"context_gain": true}\n'
    assert (docs / "results" / "context-study" / "report.json").read_bytes() == (derived / "context-study" / "report.json").read_bytes()
    text = (docs / "results.md").read_text(encoding="utf-8")
    assert text == page.render_folder(docs / "results")
    assert "## Context study" in text and "## Fine-tuned-encoder study" in text and "not recorded here yet" not in text
    assert page.load_study(docs / "results" / "context-study").title == "Context study"
