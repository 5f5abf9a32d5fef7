"""Report aggregation: means, stds, paired Δs with t-intervals, the claims, collapse, the three files."""

from __future__ import annotations

import json
import math

import pytest

from mtaffect.report import (
    Result,
    aggregate,
    append_results,
    build_report,
    figure_panels,
    markdown_report,
    read_results,
    terminal_summary,
    write_report,
)
from mtaffect.statistics import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_TESTABLE,
    SUPPORTED,
    Unit,
    assess_gain,
    assess_stability,
    assess_weak_vs_gold,
    paired_delta,
    t_interval,
)

#: t(0.975, 2), read from a t-table (two-sided 95%, 2 degrees of freedom).
T_975_DF2 = 4.302652729911275


def _results():
    values = {
        "single-task": {"sentiment_MAE": [1.0, 0.8, 0.9], "sentiment_Has0_acc_2": [0.60, 0.70, 0.65]},
        "multi-task-weak": {"sentiment_MAE": [0.9, 0.85, 0.7], "sentiment_Has0_acc_2": [0.70, 0.68, 0.75]},
    }
    return [
        Result(setting, seed, "mosei", "sentiment", metric, v)
        for setting, metrics in values.items()
        for metric, seq in metrics.items()
        for seed, v in enumerate(seq)
    ]


def test_aggregate_mean_std():
    cells = {(c.setting, c.metric): c for c in aggregate(_results())}
    cell = cells[("single-task", "sentiment_MAE")]
    assert cell.n_seeds == 3
    assert cell.mean == pytest.approx(0.9)
    assert cell.std == pytest.approx(0.1)  # sample std of 1.0, 0.8, 0.9


def test_paired_interval_matches_a_hand_computation():
    cells = {(c.setting, c.metric): c for c in aggregate(_results())}
    acc = paired_delta(cells[("multi-task-weak", "sentiment_Has0_acc_2")].values,
                       cells[("single-task", "sentiment_Has0_acc_2")].values)
    # diffs +0.10, -0.02, +0.10: mean 0.06, sd sqrt((0.04² + 0.08² + 0.04²) / 2) = sqrt(0.0048),
    # standard error sd / sqrt(3) = 0.04, half-width t(0.975, 2) * 0.04.
    assert acc.mean == pytest.approx(0.06)
    assert acc.std == pytest.approx(math.sqrt(0.0048))
    assert (acc.low, acc.high) == pytest.approx((0.06 - T_975_DF2 * 0.04, 0.06 + T_975_DF2 * 0.04))
    assert (acc.n, acc.improved, acc.direction) == (3, 2, "unclear")
    mae = paired_delta(cells[("multi-task-weak", "sentiment_MAE")].values,
                       cells[("single-task", "sentiment_MAE")].values, greater_is_better=False)
    # diffs -0.1, +0.05, -0.2: two seeds better (lower MAE); oriented, improvements are positive.
    assert mae.mean == pytest.approx(-0.25 / 3)
    assert mae.improved == 2
    assert mae.oriented() == pytest.approx((0.25 / 3, -mae.high, -mae.low))


def test_paired_delta_pairs_only_common_seeds_and_needs_two():
    d = paired_delta({0: 0.5, 1: 0.7, 2: 0.9}, {1: 0.6, 2: 0.6, 5: 0.1})
    assert d.n == 2 and d.mean == pytest.approx(0.2)  # seeds 1 and 2: +0.1, +0.3
    single = paired_delta({0: 0.5}, {0: 0.4})
    assert single.n == 1 and math.isnan(single.low) and single.direction == "n/a"
    assert single.format() == "+0.100 [n=1]"
    assert all(math.isnan(v) for v in t_interval([]))


def _unit(values, task="emotion", corpus="c", greater=True):
    return Unit(corpus, task, f"{task}_weighted_f1", "weighted F1", greater,
                {s: dict(enumerate(v)) for s, v in values.items()})


def test_gain_verdicts_follow_the_intervals():
    clear_gain = {"single-task": [0.50, 0.52, 0.51], "multi-task": [0.60, 0.63, 0.61]}
    noisy = {"single-task": [0.50, 0.52, 0.51], "multi-task": [0.55, 0.47, 0.53]}
    clear_loss = {"single-task": [0.60, 0.63, 0.61], "multi-task": [0.50, 0.52, 0.51]}
    both = [_unit(clear_gain, "emotion"), _unit(clear_gain, "sarcasm")]
    assert assess_gain(both, "multi-task").verdict == SUPPORTED
    one_unclear = assess_gain([_unit(clear_gain, "emotion"), _unit(noisy, "sarcasm")], "multi-task")
    assert one_unclear.verdict == INCONCLUSIVE and "sarcasm" in one_unclear.reason
    lost = assess_gain([_unit(clear_gain, "emotion"), _unit(clear_loss, "sarcasm", corpus="m")], "multi-task")
    assert lost.verdict == CONTRADICTED and "m sarcasm" in lost.reason
    # Lower-is-better metrics: a lower MAE is the gain.
    mae = _unit({"single-task": [0.9, 0.92, 0.91], "multi-task": [0.7, 0.72, 0.70]}, "sentiment", greater=False)
    assert assess_gain([mae], "multi-task").verdict == SUPPORTED
    assert assess_gain([_unit({"single-task": [0.5], "multi-task": [0.6]})], "multi-task").verdict == NOT_TESTABLE


def test_stability_verdicts_follow_the_intervals():
    steadier = [_unit({"single-task": [0.40, 0.60, 0.50], "multi-task": [0.50, 0.51, 0.505]}, t) for t in
                ("emotion", "sentiment", "sarcasm")]
    assert assess_stability(steadier, "multi-task").verdict == SUPPORTED
    wobblier = [_unit({"single-task": [0.50, 0.51, 0.505], "multi-task": [0.40, 0.60, 0.50]}, t) for t in
                ("emotion", "sentiment", "sarcasm")]
    assert assess_stability(wobblier, "multi-task").verdict == CONTRADICTED
    mixed = [steadier[0], wobblier[1]]
    assert assess_stability(mixed, "multi-task").verdict == INCONCLUSIVE
    assert assess_stability(steadier[:1], "multi-task").verdict == NOT_TESTABLE  # one pair is no interval


def test_weak_vs_gold_verdicts_follow_the_intervals():
    as_good = _unit({"multi-task-weak": [0.601, 0.612, 0.598], "multi-task-gold": [0.600, 0.610, 0.600]})
    assert assess_weak_vs_gold([as_good]).verdict == SUPPORTED
    worse = _unit({"multi-task-weak": [0.55, 0.56, 0.55], "multi-task-gold": [0.60, 0.61, 0.60]})
    assert assess_weak_vs_gold([as_good, worse]).verdict == CONTRADICTED
    noisy = _unit({"multi-task-weak": [0.57, 0.63, 0.58], "multi-task-gold": [0.60, 0.60, 0.60]})
    assert assess_weak_vs_gold([noisy]).verdict == INCONCLUSIVE
    same_runs = _unit({"multi-task-weak": [0.6, 0.61, 0.6], "multi-task-gold": [0.6, 0.61, 0.6]})
    verdict = assess_weak_vs_gold([same_runs])
    assert verdict.verdict == NOT_TESTABLE and "same runs" in verdict.reason
    assert assess_weak_vs_gold([_unit({"multi-task-weak": [0.6, 0.6]})]).verdict == NOT_TESTABLE
    # The margin is the line: 2 points worse passes a 3-point margin.
    two_worse = _unit({"multi-task-weak": [0.58, 0.59, 0.58], "multi-task-gold": [0.60, 0.61, 0.60]})
    assert assess_weak_vs_gold([two_worse], margin=0.03).verdict == SUPPORTED
    assert assess_weak_vs_gold([two_worse], margin=0.01).verdict == CONTRADICTED


def _study_results(collapse: bool = False):
    """A three-seed study on two corpora, every setting, with predicted-class counts."""
    base = {"single-task": 0.50, "multi-task": 0.60, "multi-task-weak": 0.58, "multi-task-gold": 0.58}
    wobble = [0.0, 0.01, -0.01]
    results = []
    for setting, value in base.items():
        for seed, w in enumerate(wobble):
            results.append(Result(setting, seed, "a_very_long_corpus_name_indeed", "emotion",
                                  "emotion_weighted_f1", value + w))
            results.append(Result(setting, seed, "a_very_long_corpus_name_indeed", "emotion",
                                  "emotion_accuracy", value + w + 0.05))
            results.append(Result(setting, seed, "a_very_long_corpus_name_indeed", "emotion",
                                  "emotion_anger_acc", 0.9))
            for metric in ("sarcasm_weighted_f1", "sarcasm_accuracy"):  # identical: one panel
                results.append(Result(setting, seed, "mustard", "sarcasm", metric, value + 2 * w))
            sarcastic = 0.0 if collapse and setting == "multi-task-weak" and seed == 2 else 40.0
            results.append(Result(setting, seed, "mustard", "sarcasm", "sarcasm_predicted_sarcastic", sarcastic))
            results.append(Result(setting, seed, "mustard", "sarcasm", "sarcasm_predicted_not_sarcastic",
                                  100.0 - sarcastic))
    return results


def test_write_report_files(tmp_path):
    paths = write_report(_study_results(), tmp_path, metadata={"seeds": [0, 1, 2]})
    payload = json.loads(paths["json"].read_text())
    assert payload["metadata"]["seeds"] == [0, 1, 2]
    assert payload["settings"] == ["single-task", "multi-task", "multi-task-weak", "multi-task-gold"]
    # Counts are not scores: no record, but kept per model.
    assert not any("predicted" in r["metric"] for r in payload["records"])
    assert payload["predicted_counts"][0]["counts"] == {"sarcastic": 40.0, "not_sarcastic": 60.0}
    delta = next(d for d in payload["deltas"] if d["metric"] == "emotion_weighted_f1"
                 and d["setting"] == "multi-task" and d["reference"] == "single-task")
    assert delta["mean"] == pytest.approx(0.10) and delta["n_seeds"] == 3 and delta["seeds_better"] == 3
    assert delta["low"] == pytest.approx(0.10) and delta["high"] == pytest.approx(0.10)  # same wobble: sd 0
    claims = {(c["claim"], c["comparison"]): c["verdict"] for c in payload["claims"]}
    assert claims[("multi-task gain", "multi-task vs single-task")] == SUPPORTED
    assert claims[("weak ≈ gold", "multi-task-weak vs multi-task-gold")] == NOT_TESTABLE  # the same runs
    table = paths["md"].read_text()
    assert table.index("## The paper's claims") < table.index("## Headline metrics") < table.index("## Every metric")
    assert "| mustard | sarcasm | weighted F1 (`sarcasm_weighted_f1`) | 0.500 ± 0.020 |" in table
    assert "| multi-task − single-task |" in table.replace("| corpus | task | metric ", "|")
    assert "+0.100 [+0.100, +0.100] (3/3)" in table
    # Every metric, headline first: the per-class accuracy comes after the summaries.
    every = table[table.index("## Every metric"):]
    assert every.index("`emotion_weighted_f1`") < every.index("`emotion_accuracy`") < every.index("`emotion_anger_acc`")
    assert "Class collapse" not in table
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_model_that_predicts_one_class_is_flagged(tmp_path):
    paths = write_report(_study_results(collapse=True), tmp_path)
    table = paths["md"].read_text()
    assert ("**Warning — class collapse**: multi-task-weak seed 2 predicts only 'not_sarcastic' on mustard sarcasm "
            "(100/100 test rows)") in table
    assert json.loads(paths["json"].read_text())["collapses"] == [
        {"setting": "multi-task-weak", "seed": 2, "corpus": "mustard", "task": "sarcasm", "label": "not_sarcastic",
         "rows": 100}
    ]
    assert "WARNING: multi-task-weak seed 2 predicts only" in terminal_summary(build_report(_study_results(True)))


def test_terminal_summary_fits_100_columns_and_shows_headlines_only():
    text = terminal_summary(build_report(_study_results()))
    assert max(len(line) for line in text.splitlines()) <= 100
    table = text.split("Means")[0]
    assert "weighted F1" in text and "emotion_anger_acc" not in text and "one-vs-rest" not in text
    # Single-label emotion: weighted F1 and accuracy; sarcasm: weighted F1 only (its accuracy is in report.md).
    assert [line.split()[2] for line in table.splitlines()[1:] if line.strip()] == ["weighted", "accuracy", "weighted"]
    assert "multi-task gain (multi-task vs single-task): SUPPORTED" in text


def test_figure_panels_have_no_duplicates():
    panels = figure_panels(build_report(_study_results()))
    titles = [(p.row.corpus, p.title) for p in panels]
    # Sarcasm accuracy equals its weighted F1 here, and only weighted F1 is a headline anyway;
    # gold = weak (the same numbers) is drawn once, named with weak.
    assert titles == [("a_very_long_corpus_name_indeed", "weighted F1"), ("a_very_long_corpus_name_indeed", "accuracy"),
                      ("mustard", "weighted F1")]
    assert panels[0].settings == ["single-task", "multi-task", "multi-task-weak"]
    assert panels[0].aliases["multi-task-weak"] == ["multi-task-gold"]


def test_a_setting_with_one_value_is_drawn_over_its_own_tick():
    """The linear probe is deterministic (the same number every seed): one dot on its tick."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import PathCollection
    from matplotlib.colors import to_hex

    from mtaffect.report import report_figure

    probe = [Result("linear-probe", seed, "mustard", "sarcasm", "sarcasm_weighted_f1", 0.55) for seed in range(3)]
    report = build_report(probe + _study_results())
    figure = report_figure(report)
    try:
        (panel,) = [p for p in figure_panels(report) if p.row.corpus == "mustard"]
        axes = next(a for a in figure.axes if a.get_title().startswith("mustard · sarcasm"))
        assert panel.settings[0] == "linear-probe"
        ticks = dict(zip([t.get_text() for t in axes.get_xticklabels()], axes.get_xticks()))
        assert ticks["probe\n(1 value)"] == 0 and ticks["single"] == 1

        def dots(color: str) -> list[tuple[float, float]]:
            return [tuple(point) for c in axes.collections if isinstance(c, PathCollection)  # the scatters
                    and to_hex(c.get_facecolor()[0]) == color for point in c.get_offsets()]

        assert dots("#8c8c8c") == [(0.0, 0.55)]  # one dot, on the probe's tick
        single = dots("#4c72b0")
        assert len(single) == 3 and all(0.8 <= x <= 1.2 for x, _ in single)  # three seeds, jittered round theirs
        assert sorted(y for _, y in single) == pytest.approx([0.48, 0.50, 0.52])
        low, high = axes.get_xlim()
        assert low < -0.3 and high > len(panel.settings) - 1 + 0.3  # every mean line inside the panel
    finally:
        plt.close(figure)


def test_duplicate_seed_is_an_error():
    with pytest.raises(ValueError, match="seed 0"):
        aggregate([Result("single-task", 0, "c", "t", "m", 1.0)] * 2)


def test_results_jsonl_round_trip(tmp_path):
    path = tmp_path / "results.jsonl"
    append_results(path, _results()[:3])
    append_results(path, _results()[3:])
    assert read_results(path) == _results()


def test_weak_vs_gold_is_decided_on_primary_tasks():
    # MELD: emotion primary, sentiment auxiliary. Weak sentiment labels lose on sentiment itself
    # (trained on a teacher's labels, not gold), which is not the claim; emotion is as good.
    emotion = _unit({"multi-task-weak": [0.601, 0.612, 0.598], "multi-task-gold": [0.600, 0.610, 0.600]},
                    "emotion", corpus="meld")
    sentiment = _unit({"multi-task-weak": [0.55, 0.56, 0.55], "multi-task-gold": [0.70, 0.71, 0.70]},
                      "sentiment", corpus="meld")
    assert assess_weak_vs_gold([emotion, sentiment]).verdict == CONTRADICTED
    assert assess_weak_vs_gold([emotion, sentiment], primary_tasks={"meld": "emotion"}).verdict == SUPPORTED
    from mtaffect.report import primary_tasks_of

    assert primary_tasks_of({"corpora": {"meld": {"primary_task": "emotion", "tasks": ["emotion"]}}}) == {
        "meld": "emotion"}
    assert primary_tasks_of(None) == {}


def test_single_task_below_the_linear_probe_is_said_where():
    results = _study_results()
    for seed in range(3):  # the probe beats single-task on the emotion corpus' weighted F1 (0.55 vs 0.50), not on sarcasm
        results.append(Result("linear-probe", seed, "a_very_long_corpus_name_indeed", "emotion", "emotion_weighted_f1", 0.55))
        results.append(Result("linear-probe", seed, "a_very_long_corpus_name_indeed", "emotion", "emotion_accuracy", 0.40))
        results.append(Result("linear-probe", seed, "mustard", "sarcasm", "sarcasm_weighted_f1", 0.45))
    report = build_report(results)
    assert [(c.corpus, c.label, round(c.single, 3), c.probe, c.beyond_spread) for c in report.below_probe] == [
        ("a_very_long_corpus_name_indeed", "weighted F1", 0.5, 0.55, True)]
    text = " ".join(terminal_summary(report).split())
    assert "WARNING: single-task scores below the linear probe on a_very_long_corpus_name_indeed emotion weighted" in text
    assert "Warning — weak baseline" in markdown_report(report)
    assert build_report(_study_results()).below_probe == []  # no probe, nothing to say
    # Below the probe by less than single-task's spread over seeds (0.01): said, as a note.
    close = [*_study_results(), *(Result("linear-probe", seed, "mustard", "sarcasm", "sarcasm_weighted_f1", 0.505)
                                   for seed in range(3))]
    (cell,) = build_report(close).below_probe
    assert (cell.corpus, cell.beyond_spread, cell.kind) == ("mustard", False, "NOTE")
    assert "NOTE: single-task scores below the linear probe on mustard" in " ".join(terminal_summary(
        build_report(close)).split()) and "Note — baseline" in markdown_report(build_report(close))
