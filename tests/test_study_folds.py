"""A corpus given as folds runs inside one study: one report, each seed's number the mean over folds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from datasets import DatasetDict, concatenate_datasets

from mtaffect.data.sources import CorpusSource
from mtaffect.metrics import PREDICTED_COUNT
from mtaffect.study import StudyConfig, read_records, run_study
from mtaffect.study import fold_means as _fold_means

FOLDS = 2


@pytest.fixture(scope="module")
def fold_folders(tmp_path_factory):
    """A MUStARD-like corpus cut into 2 cross-validation folds, one ``save_to_disk`` folder each."""
    from mtaffect.data.corpora.synthetic import make_synthetic_corpus

    corpus = make_synthetic_corpus("synthetic_mustard", seed=3, size_scale=0.1, max_length=6)
    rows = concatenate_datasets([corpus[split] for split in ("train", "validation", "test")])
    fold_of = np.arange(rows.num_rows) % FOLDS
    root = tmp_path_factory.mktemp("folds")
    folders = []
    for k in range(FOLDS):
        rest = np.flatnonzero(fold_of != k)
        fold = DatasetDict({
            "train": rows.select(rest[4:]),
            "validation": rows.select(rest[:4]),
            "test": rows.select(np.flatnonzero(fold_of == k)),
        })
        fold.save_to_disk(str(root / f"fold{k}"))
        folders.append(str(root / f"fold{k}"))
    return folders


@pytest.fixture(scope="module")
def fold_study(fold_folders, tmp_path_factory):
    output = tmp_path_factory.mktemp("fold-study")
    config = StudyConfig.from_dict({
        "corpora": [
            {"name": "synthetic_meld", "synthetic": True, "options": {"size_scale": 0.08, "max_length": 6}},
            {"name": "mustard", "folds": fold_folders},
        ],
        "seeds": [0],
        "model": {"hidden_size": 8, "num_heads": 2},
        "training": {"num_train_epochs": 1, "per_device_train_batch_size": 16},
        "weak_loss_weights": [1.0],
        "cross_fit_folds": 2,
        "workers": 1,
        "output_dir": str(output),
    })
    events = []
    paths = run_study(config, progress=events.append)
    return paths, events


def test_folds_parse_and_expand(fold_folders):
    source = CorpusSource.parse({"name": "mustard", "path": "unused", "folds": 5}, where="x")
    assert [s.options for s in source.fold_sources()] == [{"fold": k} for k in range(5)]
    listed = CorpusSource.parse({"name": "mustard", "folds": fold_folders})
    assert [s.path for s in listed.fold_sources()] == fold_folders and listed.num_folds == FOLDS
    with pytest.raises(ValueError, match="at least 2 folds"):
        CorpusSource.parse({"name": "mustard", "path": "unused", "folds": 1})
    with pytest.raises(ValueError, match="cross-validates one corpus"):
        StudyConfig(corpora=[CorpusSource("a", folds=2), CorpusSource("b", folds=2)]).validate()


def test_a_fold_corpus_gives_one_report_with_the_fold_mean_per_seed(fold_study):
    paths, events = fold_study
    payload = json.loads(paths["json"].read_text())
    records = read_records(paths["results"])
    by_key = {}
    for record in records:
        by_key.setdefault((record["setting"], record["model"]), []).append(record.get("fold"))
    # The other corpus' single-task models and probes: once per seed; the fold corpus' and every union model: per fold.
    assert by_key[("single-task", "synthetic_meld/emotion")] == [None]
    assert by_key[("linear-probe", "synthetic_meld/sentiment")] == [None]
    assert sorted(by_key[("single-task", "mustard/sarcasm")]) == [0, 1]
    assert sorted(by_key[("multi-task", "union")]) == [0, 1]
    assert sorted(by_key[("multi-task-weak", "chosen per task")]) == [0, 1]
    assert sorted(by_key[("multi-task-gold", "chosen per task")]) == [0, 1]
    assert payload["metadata"]["cross-validated corpus"]["folds"] == FOLDS
    assert [e.step for e in events] == list(range(1, len(events) + 1)) and events[-1].total == len(events)
    assert any("[fold 1]" in e.detail for e in events)

    # One report; each seed's value is the mean of the fold records (counts: their sum).
    cells = {(r["setting"], r["corpus"], r["metric"]): r for r in payload["records"]}
    for setting, model in (("single-task", "mustard/sarcasm"), ("multi-task", "union"), ("multi-task-weak", "chosen per task")):
        per_fold = [
            next(v["value"] for v in r["results"] if v["corpus"] == "mustard" and v["metric"] == "sarcasm_weighted_f1")
            for r in records if (r["setting"], r["model"]) == (setting, model)
        ]
        assert len(per_fold) == FOLDS
        cell = cells[(setting, "mustard", "sarcasm_weighted_f1")]
        assert cell["n_seeds"] == 1 and cell["values"]["0"] == pytest.approx(sum(per_fold) / FOLDS)
    # MELD's numbers in a union model are fold means too (each fold's union model differs).
    meld = [next(v["value"] for v in r["results"] if v["metric"] == "emotion_weighted_f1")
            for r in records if (r["setting"], r["model"]) == ("multi-task", "union")]
    assert cells[("multi-task", "synthetic_meld", "emotion_weighted_f1")]["values"]["0"] == pytest.approx(np.mean(meld))
    counts = {(c["setting"], c["corpus"]): c["counts"] for c in payload["predicted_counts"] if c["task"] == "sarcasm"}
    assert sum(counts[("multi-task", "mustard")].values()) == sum(
        sum(v["value"] for v in r["results"] if v["corpus"] == "mustard" and f"_{PREDICTED_COUNT}_" in v["metric"])
        for r in records if (r["setting"], r["model"]) == ("multi-task", "union")
    )


def _record(setting, fold, predicted):
    results = [{"corpus": "mustard", "task": "sarcasm", "metric": "sarcasm_weighted_f1", "value": 0.5 + fold / 10}]
    results += [{"corpus": "mustard", "task": "sarcasm", "metric": f"sarcasm_{PREDICTED_COUNT}_{label}", "value": count}
                for label, count in predicted.items()]
    return {"record": "model", "seed": 0, "setting": setting, "model": "union", "fold": fold, "results": results}


def test_a_collapse_on_one_fold_is_reported_though_the_mean_hides_it():
    records = [_record("multi-task", 0, {"sarcastic": 5, "not_sarcastic": 6}),
               _record("multi-task", 1, {"sarcastic": 0, "not_sarcastic": 11})]
    results, collapses = _fold_means(0, records)
    values = {r.metric: r.value for r in results}
    assert values["sarcasm_weighted_f1"] == pytest.approx(0.55)
    assert values[f"sarcasm_{PREDICTED_COUNT}_sarcastic"] == 5  # summed: both folds' predictions
    assert [(c.corpus, c.label, c.rows) for c in collapses] == [("mustard (fold 1)", "not_sarcastic", 11)]
    assert "mustard (fold 1)" in collapses[0].message()
