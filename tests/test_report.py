"""Report aggregation: means, stds, paired deltas and the three files."""

from __future__ import annotations

import json

import pytest

from mtaffect.report import (
    Result,
    aggregate,
    append_results,
    delta,
    markdown_table,
    read_results,
    write_report,
)

PRIMARY = {"sentiment": [("MAE", False), ("Has0_acc_2", True)]}


def _results():
    values = {
        "single-task": {"MAE": [1.0, 0.8, 0.9], "Has0_acc_2": [0.60, 0.70, 0.65]},
        "multi-task-weak": {"MAE": [0.9, 0.85, 0.7], "Has0_acc_2": [0.70, 0.68, 0.75]},
    }
    return [
        Result(setting, seed, "mosei", "sentiment", metric, v)
        for setting, metrics in values.items()
        for metric, seq in metrics.items()
        for seed, v in enumerate(seq)
    ]


def test_aggregate_mean_std():
    cells = {(c.setting, c.metric): c for c in aggregate(_results())}
    cell = cells[("single-task", "MAE")]
    assert cell.n_seeds == 3
    assert cell.mean == pytest.approx(0.9)
    assert cell.std == pytest.approx(0.1)  # sample std of 1.0, 0.8, 0.9


def test_paired_delta_counts_improvements_by_direction():
    cells = {(c.setting, c.metric): c for c in aggregate(_results())}
    mae = delta(cells[("multi-task-weak", "MAE")], cells[("single-task", "MAE")], greater_is_better=False)
    # per-seed diffs: -0.1, +0.05, -0.2 -> mean -0.0833..., two seeds better (lower)
    assert mae.mean == pytest.approx(-0.25 / 3)
    assert (mae.improved, mae.n_paired) == (2, 3)
    acc = delta(cells[("multi-task-weak", "Has0_acc_2")], cells[("single-task", "Has0_acc_2")], True)
    # diffs: +0.10, -0.02, +0.10
    assert acc.mean == pytest.approx(0.06)
    assert acc.improved == 2


def test_duplicate_seed_is_an_error():
    with pytest.raises(ValueError, match="seed 0"):
        aggregate([Result("single-task", 0, "c", "t", "m", 1.0)] * 2)


def test_write_report_files(tmp_path):
    paths = write_report(_results(), tmp_path, PRIMARY, metadata={"seeds": [0, 1, 2]})
    payload = json.loads(paths["json"].read_text())
    assert payload["metadata"]["seeds"] == [0, 1, 2]
    assert len(payload["records"]) == 4
    assert all(r["n_seeds"] == 3 for r in payload["records"])
    record = next(r for r in payload["records"] if r["setting"] == "single-task" and r["metric"] == "MAE")
    assert record["values"] == {"0": 1.0, "1": 0.8, "2": 0.9}
    table = paths["md"].read_text()
    assert "| mosei | sentiment | MAE (↓) | 0.900 ± 0.100 |" in table
    assert "(2/3 seeds better)" in table
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_marks_missing_settings():
    table = markdown_table(aggregate(_results()), PRIMARY)
    assert "multi-task-gold" not in table  # a setting that never ran gets no column


def test_results_jsonl_round_trip(tmp_path):
    path = tmp_path / "results.jsonl"
    append_results(path, _results()[:3])
    append_results(path, _results()[3:])
    assert read_results(path) == _results()
