"""Generate ``docs/results.md`` from the real-corpus studies' reports.

    python examples/real_corpora/make_results_page.py \\
        --study speaker-independent=WORK_DIR/study-output \\
        --study 5-fold=WORK_DIR/study-5fold-output \\
        --study fine-tuned=WORK_DIR/study-finetuned-output \\
        --study context=WORK_DIR/study-context-output --docs docs

copies each study's ``report.json``, ``report.md``, ``report.png``, ``results.jsonl``,
``study.json`` (and ``machine.json``, ``corpora.json`` when present; ``corpora.json`` is also
looked for one folder up, where ``prepare.py`` writes it) into ``docs/results/<study>/`` (the
context study into ``docs/results/context-study/``: ``docs/results/context/`` holds
``benchmarks/context_gain.py``'s files) and writes ``docs/results.md`` from those copies,
``docs/results/finetune.json`` (``examples/finetune_meld.py``'s numbers, ``--finetune FILE``
copies a new one) and ``published.yaml`` (published numbers with their sources), and
``docs/results/context/summary.json`` (``benchmarks/context_gain.py``'s paired comparison of
single-task models with and without conversational context, when present). Without ``--study``
(``--docs docs`` only) the page is regenerated from the copies already in ``docs/results/``; a
study not copied yet is named as such.

Each study gets the same section, generic over the settings and paired comparisons its report
holds (the known ones first, in the report's order): the fine-tuned-encoder study (an encoder
inside the model, no linear probe) also says what its config cut to fit a CPU and sits beside
the frozen-feature study and the published fine-tuned models; a study with context settings
(``context_grid``) also shows the K each task chose on validation and the published models
with and without context.

Every number on the page comes from those files; nothing is typed by hand, and no statistic
is computed here: means and stds over seeds, the paired per-seed differences with their 95%
t-intervals, the claims' verdicts and the collapse warnings are the report's
(``mtaffect.report`` / ``mtaffect.statistics``). ``tests/test_docs.py`` checks that
``docs/results.md`` is exactly what this script makes from ``docs/results/``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PUBLISHED = HERE / "published.yaml"
#: The studies the page shows, in order: folder under docs/results/ -> (title, config file).
STUDIES: dict[str, tuple[str, str]] = {
    "speaker-independent": ("Speaker-independent study", "examples/real_corpora/study.yaml"),
    "5-fold": ("5-fold study", "examples/real_corpora/study-5fold.yaml"),
    "fine-tuned": ("Fine-tuned-encoder study", "examples/real_corpora/study-finetuned.yaml"),
    "context": ("Context study", "examples/real_corpora/study-context.yaml"),
}
#: A study's folder under docs/results/ where it is not the study's name: docs/results/context/ holds
#: benchmarks/context_gain.py's results.jsonl, which the context study's own would overwrite.
FOLDERS: dict[str, str] = {"context": "context-study"}
#: What sets each study apart (the page's words; the numbers are the reports').
PROTOCOLS: dict[str, str] = {
    "speaker-independent": "MUStARD on its speaker-independent split: the *Friends* utterances are the test set, "
    "the other shows train and validation.",
    "5-fold": "MUStARD on its speaker-dependent 5-fold cross-validation (`split_indices.p`), run inside the one "
    "study: every model that reads MUStARD is trained once per fold and each seed's number is the mean over "
    "the folds.",
    "fine-tuned": "The speaker-independent study's corpora and MUStARD protocol (*Friends* = test), read as published "
    "(text only, no feature files): all-MiniLM-L6-v2 sits inside every model, teachers included "
    "(`model.pretrained_encoders`), and is fine-tuned with it on the transcripts. No linear probe: it reads "
    "features, which these corpora do not have.",
    "context": "The speaker-independent study (same features, MUStARD's *Friends* = test) with conversational "
    "context as a setting: every single-task and multi-task model is trained again reading the pooled features "
    "of the utterance's K preceding turns as well, one candidate per K of the config's `context_grid`; for each "
    "corpus × task the K its validation split prefers is reported as `single-task + context` / `multi-task + "
    "context` and paired by seed with the context-free models of the same study. The teachers read no context, "
    "so multi-task-weak and multi-task-gold are context-free.",
}
#: What the intro says of a study beside the frozen-feature ones (those not named here differ in protocol only).
INTRO: dict[str, str] = {
    "fine-tuned": "reads the published transcripts instead and fine-tunes all-MiniLM-L6-v2 inside every model, on "
    "a schedule cut to fit a CPU (its section says what was cut) and with no linear probe (there are no features "
    "for one)",
    "context": "is the speaker-independent study with two more settings, the single-task and multi-task models "
    "trained again reading the utterance's preceding turns too (how many: chosen on validation)",
}
#: How the page names the corpora in prose and table headers.
NAMES = {"meld": "MELD", "emorynlp": "EmoryNLP", "mustard": "MUStARD"}
#: A study's files copied into docs/results/<study>/ (report.json is required).
COPIED = ("report.json", "report.md", "report.png", "results.jsonl", "study.json", "machine.json", "corpora.json")
FINETUNE = "finetune.json"
#: benchmarks/context_gain.py's summary (with and without conversational context), under docs/results/.
CONTEXT_SUMMARY = "context/summary.json"
#: examples/finetune_meld.py's runs without and with --context-past (a list of its results), under docs/results/.
CONTEXT_FINETUNE = "context/finetune.json"
#: The scores of examples/finetune_meld.py's results (finetune.json) the page shows, in order.
FINETUNE_SCORES: tuple[tuple[str, str, str], ...] = (
    ("meld", "emotion", "emotion_weighted_f1"),
    ("meld", "sentiment", "sentiment_weighted_f1"),
    ("mustard", "sarcasm", "sarcasm_weighted_f1"),
)
#: The settings in the order the page shows them (as ``mtaffect.report`` orders them); a report's others follow.
SETTINGS = ("linear-probe", "single-task", "multi-task", "multi-task-weak", "multi-task-gold")
CONTEXT_SETTINGS = ("single-task + context", "multi-task + context")
#: The paired comparisons the Δ table shows, (setting, reference), as the report names them.
COMPARISONS: tuple[tuple[str, str], ...] = (
    ("multi-task", "single-task"),
    ("multi-task-weak", "single-task"),
    ("multi-task-gold", "single-task"),
    ("multi-task-weak", "multi-task-gold"),
    ("single-task", "linear-probe"),
)
#: What context adds (a study with a context_grid), shown in a table of their own under the Δ table.
CONTEXT_COMPARISONS: tuple[tuple[str, str], ...] = (
    ("single-task + context", "single-task"),
    ("multi-task + context", "multi-task"),
    ("multi-task + context", "single-task + context"),
)
#: (corpus, task) -> metrics shown, the first one is the headline (what the field reports).
SHOWN: dict[tuple[str, str], tuple[str, ...]] = {
    ("meld", "emotion"): ("emotion_weighted_f1", "emotion_accuracy", "emotion_macro_f1"),
    ("meld", "sentiment"): ("sentiment_weighted_f1", "sentiment_accuracy", "sentiment_macro_f1"),
    ("emorynlp", "emotion"): ("emotion_weighted_f1", "emotion_accuracy", "emotion_macro_f1"),
    ("mustard", "sarcasm"): (
        "sarcasm_weighted_f1",
        "sarcasm_weighted_precision",
        "sarcasm_weighted_recall",
        "sarcasm_accuracy",
    ),
}
GENERATED_NOTE = (
    "<!-- Generated by examples/real_corpora/make_results_page.py from docs/results/<study>/ "
    "(report.json, results.jsonl, study.json, machine.json, corpora.json), docs/results/finetune.json, "
    "docs/results/context/{summary,finetune}.json and "
    "examples/real_corpora/published.yaml. Do not edit by hand. -->"
)
_GRID_POINT = re.compile(r"λ=(?P<weight>\S+) mode=(?P<mode>\S+) threshold=(?P<threshold>\S+)")

Cell = tuple[str, str, str, str]  # corpus, task, metric, setting


class Study:
    """One study's copied files, as the page reads them (a plain class: the script is also loaded by path).

    Args:
        name: the study's folder under docs/results/ (a key of ``STUDIES``).
        report: its report.json.
        machine: its machine.json (``record_machine.py``), if recorded.
        corpora: prepare.py's corpora.json (converted folder -> sizes, protocol, extractor).
        config: its study.json, the config as run.
        gold_choices: seed -> fold ("" without folds) -> task -> the grid point multi-task-gold chose.
    """

    def __init__(
        self,
        name: str,
        report: dict[str, Any],
        machine: dict[str, Any] | None = None,
        corpora: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        gold_choices: dict[str, dict[str, dict[str, str]]] | None = None,
    ) -> None:
        self.name, self.report, self.machine = name, report, machine
        self.corpora, self.config, self.gold_choices = corpora, config, gold_choices

    @property
    def title(self) -> str:
        return STUDIES.get(self.name, (self.name, ""))[0]

    @property
    def config_file(self) -> str:
        return STUDIES.get(self.name, ("", ""))[1]

    @property
    def meta(self) -> dict[str, Any]:
        return self.report.get("metadata", {})

    @property
    def run_config(self) -> dict[str, Any]:
        """The config as run: the report's copy, else study.json (a report merged by ``mtaffect report`` has none)."""
        return self.meta.get("config") or self.config or {}

    @property
    def records(self) -> dict[Cell, Mapping[str, Any]]:
        return {(r["corpus"], r["task"], r["metric"], r["setting"]): r for r in self.report.get("records", [])}

    @property
    def deltas(self) -> dict[tuple[str, str, str, str, str], Mapping[str, Any]]:
        return {
            (d["corpus"], d["task"], d["metric"], d["setting"], d["reference"]): d for d in self.report.get("deltas", [])
        }

    @property
    def settings(self) -> list[str]:
        """The settings the report holds: the known ones in the page's order, then any other in the report's."""
        ran = self.report.get("settings") or self.meta.get("settings") or []
        known = (*SETTINGS, *CONTEXT_SETTINGS)
        return [s for s in known if s in ran] + [s for s in ran if s not in known]

    @property
    def comparisons(self) -> list[tuple[str, str]]:
        """The (setting, reference) pairs the report's deltas hold: the known ones first, in the page's order."""
        paired = list(dict.fromkeys((d["setting"], d["reference"]) for d in self.report.get("deltas", [])))
        known = (*COMPARISONS, *CONTEXT_COMPARISONS)
        return [c for c in known if c in paired] + [c for c in paired if c not in known]

    @property
    def encoders(self) -> dict[str, Any]:
        """The pretrained encoders inside the model (``model.pretrained_encoders``): none for frozen features."""
        model = self.meta.get("model") or self.run_config.get("model") or {}
        return dict(model.get("pretrained_encoders") or {})

    @property
    def seeds(self) -> list[int]:
        return list(self.meta.get("seeds", []))

    def link(self, file: str) -> str:
        return f"results/{study_folder(self.name)}/{file}"


def study_folder(name: str) -> str:
    """A study's folder under docs/results/."""
    return FOLDERS.get(name, name)


# ---- formatting --------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.2f}"


def _signed(value: float) -> str:
    return f"{100 * value:+.2f}"


def _cell_text(record: Mapping[str, Any] | None, seeds: int) -> str:
    """``mean ± std`` over seeds in %, as the report computed them (n noted when seeds are missing)."""
    if not record or record.get("mean") is None or not math.isfinite(record["mean"]):
        return "–"
    text = f"{_pct(record['mean'])} ± {_pct(record.get('std'))}"
    if record.get("n_seeds", seeds) != seeds:
        text += f" (n={record['n_seeds']})"
    return text


def _same_runs(delta: Mapping[str, Any]) -> bool:
    return delta.get("n_seeds", 0) > 0 and delta.get("mean") == 0.0 and delta.get("std") == 0.0


def _delta_text(delta: Mapping[str, Any] | None) -> str:
    """``+1.23 [−0.40, +2.86] 4/5``: mean paired Δ in points, its 95% interval, seeds better / paired."""
    if not delta or delta.get("mean") is None or not math.isfinite(delta["mean"]):
        return "–"
    n, better = delta.get("n_seeds", 0), delta.get("seeds_better", 0)
    if _same_runs(delta):
        return f"0.00 on every seed ({n})"
    low, high = delta.get("low"), delta.get("high")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{_signed(delta['mean'])} (no interval, n={n})"
    text = f"{_signed(delta['mean'])} [{_signed(low)}, {_signed(high)}]"
    if low > 0 or high < 0:  # the interval excludes 0: the seeds agree on the sign
        text = f"**{text}**"
    return f"{text} {better}/{n}"


def _json_inline(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _grid_point(text: str) -> dict[str, str]:
    match = _GRID_POINT.fullmatch(text.strip())
    return match.groupdict() if match else {"weight": text, "mode": "", "threshold": ""}


def _seconds(value: float) -> str:
    return f"{value:.0f} s ({value / 60:.1f} min)" if value < 7200 else f"{value:.0f} s ({value / 3600:.2f} h)"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


# ---- one study -----------------------------------------------------------------------------------


def _folders(source: Mapping[str, Any]) -> list[str]:
    """The converted folders a config corpus entry read (one, or one per fold)."""
    if source.get("folds"):
        return [Path(f).name for f in source["folds"] if isinstance(f, str)]
    return [Path(source["path"]).name] if source.get("path") else []


def _what_ran(study: Study) -> list[str]:
    meta, config = study.meta, study.run_config
    sources = {c["name"]: c for c in config.get("corpora", [])}
    folded = meta.get("cross-validated corpus") or {}
    rows = []
    for name, info in meta.get("corpora", {}).items():
        entries = [(study.corpora or {}).get(f) for f in _folders(sources.get(name, {}))]
        entries = [e for e in entries if e]
        tasks = [info.get("primary_task")] + [t for t in info.get("tasks", []) if t != info.get("primary_task")]
        notes = []
        if entries:
            sizes = {" / ".join(str(e.get("splits", {}).get(s, "?")) for s in ("train", "validation", "test")) for e in entries}
            size_text = " or ".join(sorted(sizes))
            first = entries[0]
            protocol = first.get("notes", {}).get("protocol")
            if protocol == "speaker_independent":
                notes.append(f"speaker-independent protocol: {first['notes'].get('test_show', '?')} = test")
            validation = first.get("notes", {}).get("validation")
            if validation:
                notes.append(f"validation = {validation['fraction']:.0%} of train, stratified")
            if first.get("extractor"):
                notes.append(f"pooling: {first['extractor']}")
        else:
            size_text = f"{info.get('train_size', '?')} / ? / ?"
        if folded.get("corpus") == name:
            size_text = f"{size_text} per fold"
            notes.insert(0, f"{folded.get('folds')} folds inside the study (a seed's number: the mean over folds)")
        rows.append([name, ", ".join(t for t in tasks if t), f"`{info.get('feature_set', '?')}`", size_text,
                     "; ".join(notes) or "–"])
    lines = ["### What ran", ""]
    lines += _table(["corpus", "gold tasks (primary first)", "feature set", "train / validation / test", "notes"], rows)
    lines.append("")
    lines += [
        f"- **Config**: `{study.config_file}` (as run: [study.json]({study.link('study.json')})); "
        f"seeds {', '.join(map(str, study.seeds))}; settings {', '.join(study.settings)}",
        f"- **Model** (`MTAffectConfig`): {_json_inline(meta.get('model') or config.get('model', {}))}",
        f"- **Training** (`MultiTaskTrainingArguments`): {_json_inline(meta.get('training') or config.get('training', {}))}; "
        "each model kept at its best step on validation",
        f"- **Sampling**: {_json_inline(meta.get('sampling') or _sampling(config))}",
        f"- **Weak labels**: λ candidates {_json_inline(config.get('weak_loss_weights'))}, modes "
        f"{_json_inline(config.get('weak_label_modes'))}, confidence thresholds "
        f"{_json_inline(config.get('weak_thresholds'))} (null = none), "
        + (f"{config['cross_fit_folds']} cross-fitted teachers for a corpus' own auxiliary task"
           if config.get("cross_fit_folds") else "no cross-fitting (a corpus' own auxiliary labels stay gold)")
        + "; λ chosen per corpus × task on that task's validation score (table below). What each corpus was given:",
    ]
    lines += [f"    - {_note_text(note)}" for note in meta.get("weak labels", [])]
    lines.append(_wall_time(study))
    cost = meta.get("model seconds per setting")
    if cost:
        lines.append(
            "- **Training time per setting** (models trained over all seeds and folds: total, mean per model): "
            + "; ".join(f"{setting} {c.get('models')} models: {c.get('seconds'):.0f} s, {c.get('mean'):.0f} s each"
                        for setting, c in cost.items())
        )
    lines.append("")
    return lines


def _sampling(config: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling entry of a report's metadata, from the config (a report merged by ``mtaffect report`` has none)."""
    keys = {"corpus_sampling": "strategy", "sampling_temperature": "temperature", "batch_composition": "batch_composition"}
    return {name: config[key] for key, name in keys.items() if key in config}


def _missing_seeds(study: Study) -> tuple[list[int], list[int]]:
    """(planned, missing): the seeds the study was started with (study.json) and those its report lacks.

    A report made before the study ended (``mtaffect run --resume --seeds ...`` or ``mtaffect
    report`` on the seeds finished so far) holds fewer seeds than the study.json it started with.
    """
    planned = (study.config or {}).get("seeds") or study.run_config.get("seeds") or []
    return planned, [s for s in planned if s not in study.seeds]


def _partial(study: Study) -> list[str]:
    """A warning when the report holds fewer seeds than the study was started with."""
    planned, missing = _missing_seeds(study)
    if not missing:
        return []
    return [
        "!!! warning \"A partial study\"",
        f"    This report holds {len(study.seeds)} of the {len(planned)} seeds the study was started with (seeds "
        f"{', '.join(map(str, missing))} had not finished when it was made from the models recorded so far): "
        "every mean, interval and verdict below is over those seeds only.",
        "",
    ]


def _wall_time(study: Study) -> str:
    meta, machine = study.meta, study.machine
    machine_text = "machine not recorded"
    if machine:
        machine_text = (
            f"{machine.get('cpu_count')} CPU cores ({machine.get('cpu_model') or 'unknown model'}), "
            f"{machine.get('gpu') or 'no GPU'}, torch {machine.get('torch')}, "
            f"{study.run_config.get('torch_threads', '?')} torch thread(s) per process"
        )
        load = machine.get("load_average_1_5_15_min")
        if load:
            machine_text += (f"; cores shared with other jobs (load average when machine.json was recorded: {load[0]} / {load[1]} / "
                             f"{load[2]} over 1 / 5 / 15 min)")
    workers = meta.get("workers", 1)
    order = "one seed after another" if workers == 1 else f"{workers} seeds in parallel processes"
    wall = meta.get("wall_time_seconds")
    if _missing_seeds(study)[1]:
        wall = None  # the run that wrote a partial report trained nothing: its wall time is not the study's
    trained = sum(float(v.get("seconds", 0)) for v in (meta.get("model seconds per setting") or {}).values())
    if wall is not None and trained and wall * max(1, workers) < 0.1 * trained:
        # Written by a `--resume` that found every model recorded (seeds trained by several runs):
        # its wall time is not the study's.
        return (f"- **Wall time**: the report was written by a resumed run that trained nothing ({_seconds(wall)}); "
                f"the models took {_seconds(trained)} in all (training time per setting below); {machine_text}.")
    if wall is None:
        return f"- **Wall time**: not recorded (see the training time per setting); {machine_text}."
    return (f"- **Wall time** of the study (all {len(study.seeds)} seeds, {order}, teachers included, feature "
            f"extraction not): {_seconds(wall)} on {machine_text}.")


def _headline_sentence() -> str:
    """Which of the shown metrics are headlines, from ``mtaffect.metrics.headline_metrics`` (the one
    place report.md, ``mtaffect run``, ``mtaffect evaluate`` and the model card read)."""
    from mtaffect.metrics import headline_metrics

    parts = []
    for (corpus, task), metrics in SHOWN.items():
        labels = [metric.label for metric in headline_metrics(metrics, task=task)]
        parts.append(f"{corpus} {task}: {' and '.join(labels)}")
    return ("The headline metrics, the ones each corpus' literature reports, come first: " + "; ".join(parts)
            + "; the rest are context.")


def _note_text(note: str) -> str:
    """A recorded weak-label note, in today's words (studies recorded before the wording was fixed said a
    corpus with no teacher was "left without X labels (gold auxiliary labels kept)": it keeps its gold X labels)."""
    old = re.fullmatch(r"(?P<what>\S+): no teacher with the same feature set; left without (?P<task>\w+) labels "
                       r"\(gold auxiliary labels kept\)", note)
    if old:
        return (f"{old['what']}: no teacher with the same feature set, so no weak {old['task']} labels; "
                f"its gold {old['task']} labels (auxiliary) are kept")
    return note


def _results_table(study: Study) -> list[str]:
    records, settings, n = study.records, study.settings, len(study.seeds)
    rows = []
    for (corpus, task), metrics in SHOWN.items():
        for metric in metrics:
            if any((corpus, task, metric, s) in records for s in settings):
                rows.append([corpus, task, f"`{metric}`"] + [_cell_text(records.get((corpus, task, metric, s)), n)
                                                              for s in settings])
    lines = [
        "### Results",
        "",
        f"Test-split scores in %, **mean ± std over the {n} seeds**"
        + (" (each seed's number: the mean over the folds)" if study.meta.get("cross-validated corpus") else "")
        + _probe_sentence(study) + _headline_sentence() + _context_sentence(study),
        "",
    ]
    lines += _table(["corpus", "task", "metric", *settings], rows)
    lines.append("")
    return lines


def _probe_sentence(study: Study) -> str:
    """What the linear probe is, or why the study has none (an encoder inside the model reads no features)."""
    if "linear-probe" in study.settings:
        return ("; `linear-probe` is a logistic regression on the same features (regularisation chosen on "
                "validation), the baseline every trained setting has to beat. ")
    if study.encoders:
        return ("; no `linear-probe`: the models read the text itself, and there are no features for a probe to "
                "read. ")
    return "; no `linear-probe` (the config ran none). "


def _context_sentence(study: Study) -> str:
    """What the context settings are, where the study has them."""
    present = [s for s in CONTEXT_SETTINGS if s in study.settings]
    if not present:
        return ""
    grid = study.run_config.get("context_grid") or []
    return (f" {' and '.join(f'`{s}`' for s in present)}: the same models reading the utterance's K preceding "
            "turns as well, K chosen per corpus × task on validation"
            + (f" among {', '.join(map(str, grid))} (`context_grid`)" if grid else "")
            + "; the K each chose: below.")


def _delta_rows(study: Study, comparisons: Sequence[tuple[str, str]]) -> list[list[str]]:
    """One row per corpus × task shown (its headline metric) with a Δ for any of ``comparisons``."""
    deltas, rows = study.deltas, []
    for (corpus, task), metrics in SHOWN.items():
        metric = metrics[0]
        cells = [_delta_text(deltas.get((corpus, task, metric, *c))) for c in comparisons]
        if any(cell != "–" for cell in cells):
            rows.append([corpus, task, f"`{metric}`", *cells])
    return rows


def _delta_table(study: Study) -> list[str]:
    deltas, present = study.deltas, study.comparisons
    main = [c for c in present if c in COMPARISONS]
    context = [c for c in present if c in CONTEXT_COMPARISONS]
    others = [c for c in present if c not in main and c not in context]
    confidence = next(iter(deltas.values()), {}).get("confidence", 0.95)
    lines = [
        "### Paired differences",
        "",
        "Per seed, the setting's score minus the reference's on the same seed; the mean of those differences in "
        f"percentage points, its **{confidence:.0%} t-interval** in brackets (bold: the interval excludes 0) and "
        "the seeds on which the setting beat the reference / the seeds paired.",
        "",
    ]
    lines += _table(["corpus", "task", "metric", *(f"{s} − {r}" for s, r in main)], _delta_rows(study, main))
    lines.append("")
    if context:
        lines += [
            "What conversational context adds, on the same seeds: each model with context minus the same model "
            "without, and the multi-task model with context minus the single-task model with context:",
            "",
        ]
        lines += _table(["corpus", "task", "metric", *(f"{s} − {r}" for s, r in context)], _delta_rows(study, context))
        lines.append("")
    if others:
        lines += ["Other pairs the report compares:", ""]
        lines += _table(["corpus", "task", "metric", *(f"{s} − {r}" for s, r in others)], _delta_rows(study, others))
        lines.append("")
    same = _weak_gold_same(study)
    if same is not None:
        lines += same
    return lines


def _weak_gold_same(study: Study) -> list[str] | None:
    """A note when multi-task-weak and multi-task-gold are the same runs on every corpus × task shown."""
    pairs = [
        d for key, d in study.deltas.items()
        if key[3:] == ("multi-task-weak", "multi-task-gold") and (key[0], key[1]) in SHOWN
    ]
    if not pairs or not all(_same_runs(d) for d in pairs):
        return None
    return [
        "!!! note \"multi-task-weak and multi-task-gold score the same here\"",
        "    On every task and every seed the two settings score exactly the same: the weak labels that replaced "
        "gold auxiliary ones changed no test prediction that counts, so this study cannot test claim 3 (weak ≈ gold).",
        "",
    ]


def _claims(study: Study) -> list[str]:
    lines = ["### The paper's claims", ""]
    claims = study.report.get("claims", [])
    if not claims:
        return lines + ["The report decides no claim.", ""]
    lines += _table(["claim", "comparison", "verdict", "why"],
                    [[c["claim"], c.get("comparison") or "–", f"**{c['verdict']}**", c.get("reason", "")] for c in claims])
    lines.append("")
    if "multi-task-gold" not in study.settings and not study.run_config.get("cross_fit_folds"):
        lines += [
            "This study does no cross-fitting (`cross_fit_folds: null`): no corpus' gold auxiliary labels were "
            "replaced, so it runs no multi-task-gold and leaves weak ≈ gold to a study that does.",
            "",
        ]
    for claim in claims:
        if claim.get("evidence"):
            lines.append(f"??? info \"Evidence: {claim['claim']}, {claim.get('comparison') or '–'}\"")
            lines += [f"    - {item}" for item in claim["evidence"]]
            lines.append("")
    return lines


_FOLD = re.compile(r"^(?P<corpus>.+) \(fold (?P<fold>\d+)\)$")


def _collapses(study: Study) -> list[str]:
    """The report's collapse warnings, one line per setting × corpus × task × class.

    A study with folds reports a collapse of the fold mean (the summed counts: every fold
    collapsed) and of each fold on its own (the mean would hide it); both are kept apart here.
    """
    collapses = study.report.get("collapses", [])
    lines = ["### Collapsed models", ""]
    if not collapses:
        return lines + ["No model predicted a single class for every test row of a task.", ""]
    grouped: dict[tuple[str, str, str, str], dict[int, set[str]]] = {}
    for c in collapses:
        match = _FOLD.match(c["corpus"])
        corpus, where = (match["corpus"], f"fold {match['fold']}") if match else (c["corpus"], "")
        seeds = grouped.setdefault((c["setting"], corpus, c["task"], c["label"]), {})
        seeds.setdefault(int(c["seed"]), set()).add(where)
    folded = bool(study.meta.get("cross-validated corpus"))
    lines += [
        "!!! warning \"Models that predict one class only\"",
        "    Each of these predicted the same class for every test row of the task: its scores there are those of "
        "a constant guess."
        + (" With folds, *every fold* means the fold mean collapsed (all folds predicted that class); otherwise "
           "the folds listed collapsed, which the fold mean hides." if folded else ""),
        "",
    ]
    for (setting, corpus, task, label), seeds in sorted(grouped.items()):
        by_where: dict[str, list[int]] = {}
        for seed, wheres in sorted(seeds.items()):
            folds = sorted(wheres - {""})
            where = "every fold" if "" in wheres and folds else ", ".join(folds)
            by_where.setdefault(where, []).append(seed)
        parts = [
            ("seed " if len(s) == 1 else "seeds ") + ", ".join(map(str, s)) + (f" ({where})" if where else "")
            for where, s in by_where.items()
        ]
        lines.append(f"    - {setting} · {corpus} {task}: only `{label}` on {'; '.join(parts)}")
    lines.append("")
    return lines


def _choices(study: Study) -> list[str]:
    """The per-task grid points validation chose: multi-task-weak (report) and multi-task-gold (results.jsonl)."""
    config = study.run_config
    chosen = study.meta.get("chosen on validation (per seed)", {})
    weak: dict[str, dict[str, dict[str, str]]] = {}  # seed -> fold -> task -> point
    for seed, choice in chosen.items():
        if "per fold" in choice:
            weak[seed] = {fold: c.get("per task", {}) for fold, c in choice["per fold"].items()}
        elif "per task" in choice:
            weak[seed] = {"": choice["per task"]}
    tasks = list(dict.fromkeys(t for folds in weak.values() for per_task in folds.values() for t in per_task))
    lines = ["### λ chosen on validation", ""]
    if not tasks:
        return lines + ["The report records no per-task choice.", ""]
    several = len(config.get("weak_label_modes") or []) > 1 or len(config.get("weak_thresholds") or []) > 1

    def text(per_fold: Mapping[str, Mapping[str, str]] | None, task: str) -> str:
        if not per_fold:
            return "–"
        points = [_grid_point(per_task[task]) for _, per_task in sorted(per_fold.items()) if task in per_task]
        if not points:
            return "–"
        shown = [p["weight"] + (f" {p['mode']} t={p['threshold']}" if several else "") for p in points]
        return " · ".join(shown)

    folded = any(list(folds) != [""] for folds in weak.values())
    lines.append(
        "For each corpus × task, the λ whose model scored best on that task's validation split"
        + (" (per fold, folds 0, 1, … in order)" if folded else "")
        + ("" if several else
           f"; mode {', '.join(config.get('weak_label_modes') or ['?'])}, threshold "
           f"{', '.join(str(t) for t in config.get('weak_thresholds') or ['?'])} throughout")
        + (". multi-task-gold runs the same grid with the gold auxiliary labels kept and chooses its λ the same way."
           if "multi-task-gold" in study.settings else ".")
    )
    lines.append("")
    rows = []
    gold = study.gold_choices or {}
    for seed in weak:
        row = [seed, *(text(weak[seed], t) for t in tasks)]
        if gold:
            row += [text(gold.get(seed), t) for t in tasks]
        rows.append(row)
    header = ["seed", *(f"weak: {t}" for t in tasks)] + ([f"gold: {t}" for t in tasks] if gold else [])
    lines += _table(header, rows)
    lines.append("")
    return lines


def _frozen_reference(study: Study, studies: Sequence[Study]) -> Study | None:
    """The frozen-feature study a study with an encoder inside is set beside: the speaker-independent one
    (the same corpora and MUStARD protocol)."""
    if not study.encoders:
        return None
    return next((s for s in studies if s.name == "speaker-independent" and not s.encoders), None)


def _list_text(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _epochs(study: Study) -> Any:
    return (study.meta.get("training") or study.run_config.get("training") or {}).get("num_train_epochs", "?")


def _is_cut(study: Study) -> bool:
    """Whether a study with an encoder inside trains less of it, on shorter inputs or for fewer epochs than
    the library's defaults for an encoder that trains (``ENCODER_DEFAULTS``, ``ENCODER_TRAINING_DEFAULTS``)."""
    from mtaffect.configuration_mtaffect import ENCODER_DEFAULTS
    from mtaffect.recipes import ENCODER_TRAINING_DEFAULTS

    epochs = _epochs(study)
    if isinstance(epochs, (int, float)) and epochs < ENCODER_TRAINING_DEFAULTS["num_train_epochs"]:
        return True
    for modality, spec in study.encoders.items():
        defaults = ENCODER_DEFAULTS.get(modality, {})
        if spec.get("finetune", defaults.get("finetune")) != defaults.get("finetune"):
            return True
        length = spec.get("max_length", defaults.get("max_length"))
        if isinstance(length, (int, float)) and length < defaults.get("max_length", length):
            return True
    return False


def _cut(study: Study, reference: Study | None) -> list[str]:
    """What the config of a study with an encoder inside cut to fit a CPU, beside the library's encoder
    defaults and the frozen-feature study's grid (all read from the configs as run and from mtaffect)."""
    from mtaffect.configuration_mtaffect import ENCODER_DEFAULTS
    from mtaffect.recipes import ENCODER_TRAINING_DEFAULTS

    config = study.run_config
    training = study.meta.get("training") or config.get("training") or {}
    cite = f"the {reference.title}" if reference else ""
    rows = []
    for modality, spec in study.encoders.items():
        defaults = ENCODER_DEFAULTS.get(modality, {})
        features = sorted({str(info.get("feature_set")) for info in (reference.meta.get("corpora") or {}).values()}
                          if reference else [])
        rows.append([f"{modality} encoder", f"`{spec.get('name_or_path', '?')}`",
                     f"frozen features {', '.join(f'`{f}`' for f in features)} ({cite})" if features else "–"])
        rows.append([f"{modality} encoder fine-tuning (`finetune`)", f"`{spec.get('finetune', defaults.get('finetune'))}`",
                     f"`{defaults.get('finetune', '?')}` (the library's default: every layer trains)"])
        unit = "tokens" if modality == "text" else "seconds"
        rows.append([f"{modality} input length (`max_length`, {unit})", str(spec.get("max_length", defaults.get("max_length"))),
                     f"{defaults.get('max_length', '?')} (the library's default)"])
    rows.append(["epochs (`training.num_train_epochs`)", str(training.get("num_train_epochs", "?")),
                 f"{ENCODER_TRAINING_DEFAULTS['num_train_epochs']} (the library's default for a model whose encoder "
                 "trains, `mtaffect.recipes.ENCODER_TRAINING_DEFAULTS`)"])
    theirs = reference.run_config if reference else {}
    for label, key in (("λ candidates (`weak_loss_weights`)", "weak_loss_weights"),
                       ("cross-fitted teachers (`cross_fit_folds`)", "cross_fit_folds"),
                       ("seeds", "seeds")):
        ours = config.get(key) if key != "seeds" else (config.get("seeds") or study.seeds)
        other = theirs.get(key) if key != "seeds" else (theirs.get("seeds") or (reference.seeds if reference else None))
        text = "none" if ours is None else _list_text(ours)
        if key == "seeds" and isinstance(ours, list):
            text = f"{len(ours)} ({text})"
        other_text = "–"
        if reference is not None and other is not None:
            other_text = (f"{len(other)} ({_list_text(other)})" if key == "seeds" and isinstance(other, list)
                          else _list_text(other)) + f" ({cite})"
        rows.append([label, text, other_text])
    lines = [
        "### What was cut to fit the CPU" if _is_cut(study) else "### The schedule",
        "",
        f"The config as run ([study.json]({study.link('study.json')})) beside the library's schedule for a model "
        "whose encoder trains" + (f" and {cite}'s grid (frozen features)" if reference else "") + ":",
        "",
    ]
    lines += _table(["", "this study (as run)", "for comparison"], rows)
    lines.append("")
    return lines


def _published_rows(
    published: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str, str]], keep: Any, context: bool = True
) -> list[list[str]]:
    """Published numbers, one row per model and source, one column per (corpus, task, metric) (the rows of
    ``_finetune_section`` and ``_context_section``, merged: a model published on two corpora is one row)."""
    merged: dict[tuple[str, str], dict[tuple[str, str, str], Any]] = {}
    entries: dict[tuple[str, str], Mapping[str, Any]] = {}
    for entry in published:
        key = (entry["corpus"], entry["task"], entry["metric"])
        if entry.get("value") is None or key not in columns or not keep(entry):
            continue
        model = (entry["model"], entry.get("url", ""))
        merged.setdefault(model, {})[key] = entry["value"]
        entries.setdefault(model, entry)
    rows = []
    for (model, url), values in merged.items():
        entry = entries[(model, url)]
        label = f"published: [{model}]({url})" if url else f"published: {model}"
        reads = [{True: "yes", False: "no"}.get(entry.get("context"), "–")] if context else []
        rows.append([label, *reads, *(str(values[c]) if c in values else "–" for c in columns)])
    return rows


def _ours_rows(
    label: str, study: Study, settings: Sequence[str], columns: Sequence[tuple[str, str, str]], context: bool = True
) -> list[list[str]]:
    """A study's settings as rows (mean ± std over its seeds), optionally with whether each reads context."""
    records, n = study.records, len(study.seeds)
    return [[f"{label}: {setting}",
             *(["yes (K chosen on validation)" if setting in CONTEXT_SETTINGS else "no"] if context else []),
             *(_cell_text(records.get((c, t, m, setting)), n) for c, t, m in columns)]
            for setting in settings if setting in study.settings]


def _column_header(columns: Sequence[tuple[str, str, str]]) -> list[str]:
    return [f"{NAMES.get(c, c)} {t} `{m}`" for c, t, m in columns]


def _encoder_beside(study: Study, reference: Study | None, published: Sequence[Mapping[str, Any]]) -> list[str]:
    """A study with an encoder inside beside the frozen-feature study and the published fine-tuned models."""
    records = study.records
    columns = [(c, t, m[0]) for (c, t), m in SHOWN.items() if any(key[:3] == (c, t, m[0]) for key in records)]
    tuned = ", ".join(f"`{spec.get('finetune', '?')}`" for spec in study.encoders.values())
    rows = _ours_rows(f"this study (encoder fine-tuned: {tuned})", study, study.settings, columns, context=False)
    if reference is not None:
        rows += _ours_rows(f"{reference.title} (frozen features)", reference, reference.settings, columns, context=False)
    rows += _published_rows(published, columns, lambda e: e.get("fine_tuned") and e.get("context") is not True,
                            context=False)
    lines = [
        "### Beside frozen features and published fine-tuned models",
        "",
        "Test scores in % on each task's headline metric: this study's (mean ± std over its seeds)"
        + (f", the {reference.title}'s on the same corpora and protocol with the encoder frozen" if reference else "")
        + ", and the published fine-tuned models that read one utterance (no dialogue context; the sources are in "
        "the published numbers' list below). Those train RoBERTa-base (125M parameters, about 5x MiniLM) end to end "
        "on full schedules; this study's is cut (above), so it is a first look at a trained encoder, not a "
        "like-for-like comparison with them.",
        "",
    ]
    lines += _table(["model", *_column_header(columns)], rows)
    lines.append("")
    return lines


def _context_beside(study: Study, published: Sequence[Mapping[str, Any]]) -> list[str]:
    """A study's settings with and without context beside the published models with and without context."""
    keys = {(e["corpus"], e["task"], e["metric"]) for e in published if "context" in e and e.get("value") is not None}
    columns = [(c, t, m) for (c, t), metrics in SHOWN.items() for m in metrics if (c, t, m) in keys]
    if not columns:
        return []
    settings = ("single-task", "single-task + context", "multi-task", "multi-task + context")
    rows = _ours_rows("this study", study, settings, columns)
    rows += _published_rows(published, columns, lambda e: "context" in e)
    lines = [
        "### Beside published models with and without context",
        "",
        "Test scores in %: this study's single-task and multi-task models without and with context (mean ± std "
        "over its seeds; the paired Δs are above) and published models that read the utterance alone or with the "
        "dialogue's other turns (the sources are in the published numbers' list below). Those fine-tune "
        "RoBERTa-base end to end on the utterance and its dialogue; this study's models read frozen sentence "
        "embeddings of the utterance and of its K preceding turns.",
        "",
    ]
    lines += _table(["model", "reads context", *_column_header(columns)], rows)
    lines.append("")
    return lines


_CONTEXT_POINT = re.compile(r"context past=(?P<past>\d+)")


def _context_choices(study: Study) -> list[str]:
    """The K each context setting chose per corpus × task and seed (the report's ``chosen on validation``)."""
    chosen = study.meta.get("chosen on validation (per seed)", {})
    by_row: dict[tuple[str, str], dict[str, str]] = {}  # (setting, corpus/task) -> seed -> K
    for seed, choice in chosen.items():
        for setting, per_task in (choice.get("context") or {}).items():
            for task, point in per_task.items():
                match = _CONTEXT_POINT.fullmatch(str(point).strip())
                by_row.setdefault((setting, task), {})[str(seed)] = (
                    f"K = {match['past']}" if match else str(point).removeprefix("context "))
    if not by_row:
        return []
    order = {s: i for i, s in enumerate(study.settings)}
    ordered = sorted(by_row, key=lambda key: order.get(key[0].split(" (")[0], len(order)))  # stable: tasks keep their order
    seeds = [str(s) for s in study.seeds] or list(dict.fromkeys(s for row in by_row.values() for s in row))
    grid = study.run_config.get("context_grid") or []
    lines = [
        "### Context chosen on validation",
        "",
        "For each corpus × task and seed, the number K of preceding turns whose model scored best on that task's "
        "validation split" + (f", among {', '.join(map(str, grid))} (`context_grid`)" if grid else "")
        + "; the setting's test score on that task is that model's.",
        "",
    ]
    lines += _table(["setting", "corpus/task", *(f"seed {s}" for s in seeds)],
                    [[setting, task, *(by_row[(setting, task)].get(s, "–") for s in seeds)] for setting, task in ordered])
    lines.append("")
    return lines


def _study_section(
    study: Study, studies: Sequence[Study] = (), published: Sequence[Mapping[str, Any]] = ()
) -> list[str]:
    lines = [f"## {study.title}", ""]
    if study.name in PROTOCOLS:
        lines += [PROTOCOLS[study.name], ""]
    files = ", ".join(f"[{f}]({study.link(f)})" for f in ("report.json", "report.md", "results.jsonl"))
    lines += [f"Report files: {files}.", ""]
    lines += _partial(study)
    lines += _what_ran(study)
    reference = _frozen_reference(study, studies)
    if study.encoders:
        lines += _cut(study, reference)
    lines += _results_table(study)
    lines += _delta_table(study)
    if study.encoders:
        lines += _encoder_beside(study, reference, published)
    if any(s in study.settings for s in CONTEXT_SETTINGS):
        lines += _context_beside(study, published)
    lines += _claims(study)
    lines += _collapses(study)
    lines += _choices(study)
    lines += _context_choices(study)
    lines += [f"![{study.title}: Δ over single-task per setting]({study.link('report.png')})", ""]
    return lines


# ---- the page ----------------------------------------------------------------------------------


def _claims_summary(studies: Sequence[Study]) -> list[str]:
    keys = list(dict.fromkeys((c["claim"], c.get("comparison") or "–") for s in studies for c in s.report.get("claims", [])))
    if not keys:
        return []
    verdicts = {(s.name, c["claim"], c.get("comparison") or "–"): c["verdict"] for s in studies for c in s.report.get("claims", [])}
    rows = [[claim, comparison, *(f"**{verdicts[(s.name, claim, comparison)]}**" if (s.name, claim, comparison) in verdicts
                                  else "–" for s in studies)] for claim, comparison in keys]
    lines = ["## The paper's claims, in short", ""]
    lines += [
        "The three claims of Dai et al. (arXiv 2104.11560) — multi-tasking helps, it is more stable across seeds, "
        "weak labels are about as good as gold ones — decided by the report on each task's headline metric from "
        "the paired per-seed differences and their 95% intervals (*supported* / *contradicted* only when the "
        "intervals say so; see [the study](concepts/study.md)). The reasons are in each study's section.",
        "",
    ]
    lines += _table(["claim", "comparison", *(s.title for s in studies)], rows)
    lines.append("")
    notes = []
    for study in studies:
        if study.encoders:
            epochs = _epochs(study)
            reference = _frozen_reference(study, studies)
            fewer = reference is not None and len(study.seeds) < len(reference.seeds)
            notes.append(
                f"The {study.title[0].lower() + study.title[1:]} decides them on {len(study.seeds)} seeds of a "
                + ("schedule cut to fit a CPU" if _is_cut(study) else "schedule")
                + f" ({epochs} epoch{'' if str(epochs) == '1' else 's'}, λ candidates "
                f"{_list_text(study.run_config.get('weak_loss_weights'))}, "
                f"{study.run_config.get('cross_fit_folds') or 'no'} cross-fitted teachers; see its section)"
                + (f", fewer than the {reference.title}'s {len(reference.seeds)}, so its intervals are wider"
                   if fewer else "")
                + ": a first look at a trained encoder.")
        if any(s in study.settings for s in CONTEXT_SETTINGS):
            notes.append(
                f"The {study.title[0].lower() + study.title[1:]} decides them on its context-free settings; no claim "
                f"reads {' or '.join(f'`{s}`' for s in CONTEXT_SETTINGS if s in study.settings)}: what context adds "
                "is in its section.")
    if notes:
        lines += [" ".join(notes), ""]
    return lines


def _published_section(studies: Sequence[Study], published: Sequence[Mapping[str, Any]]) -> list[str]:
    by_name = {s.name: s for s in studies}
    default = studies[0]
    lines = ["## Published text-only numbers", ""]
    rows, sources, missing = [], [], 0
    for entry in published:
        corpus, task, metric = entry["corpus"], entry["task"], entry["metric"]
        study = by_name.get(entry.get("study", default.name))
        ours = ["–"] * 4
        if entry.get("compare", True) and study is not None:
            records, n = study.records, len(study.seeds)
            ours = [_cell_text(records.get((corpus, task, metric, s)), n)
                    for s in ("linear-probe", "single-task", "multi-task", "multi-task-weak")]
        value = entry.get("value")
        if value is None:
            missing += 1
            published_text = "not retrieved"
        else:
            published_text = str(value)
        sources.append(f"{len(sources) + 1}. {entry['source'].strip()}" + (f" <{entry['url']}>" if entry.get("url") else ""))
        model = entry["model"] + (" — **fine-tuned**" if entry.get("fine_tuned") else "")
        rows.append([corpus, task, model, entry.get("protocol", ""), f"`{metric}`", published_text,
                     study.title if entry.get("compare", True) and study else "not run", *ours, f"[{len(sources)}]"])
    lines += [
        "Published numbers for the same corpus, split and metric, each read in its source (in brackets, below). "
        "Beside them, this recipe's numbers (mean ± std over seeds, %) from the study named; "
        f"`not run` marks a protocol {'neither study' if len(studies) <= 2 else 'no study here'} ran.",
        "",
    ]
    lines += _table(["corpus", "task", "published model", "protocol", "metric", "published", "our study",
                     "linear-probe", "single-task", "multi-task", "multi-task-weak", "source"], rows)
    lines += ["", "Sources:", "", *sources, ""]
    if missing:
        lines += [
            f"{missing} published number(s) above could not be retrieved from their sources while this page was "
            "built (only the papers' first pages were reachable from the build environment), so the page does not "
            "quote them rather than quote them from memory. Read them in the cited tables; add them, with the "
            "source, to `examples/real_corpora/published.yaml` and regenerate the page.",
            "",
        ]
    lines += [
        "Before comparing, note what differs. This recipe classifies one utterance at a time from *frozen* "
        "all-MiniLM-L6-v2 sentence embeddings (22M parameters, never trained here) with a small head. The "
        "fine-tuned rows train RoBERTa-base (125M parameters) end to end on the same one utterance (\"01-utt\": no "
        "dialogue context; conversational models read the context and report more), with model selection on "
        "validation and 5 seeds. MUStARD's speaker-independent and 5-fold numbers are not comparable with each "
        "other: the two studies run one protocol each."
        + "".join(f" The {s.title[0].lower() + s.title[1:]}'s numbers are set beside "
                  + ("the published fine-tuned models" if s.encoders else "the published models with and without context")
                  + " in its own section." for s in studies
                  if s.encoders or any(c in s.settings for c in CONTEXT_SETTINGS)),
        "",
    ]
    return lines


def _finetune_section(
    runs: Sequence[Mapping[str, Any]], study: Study, published: Sequence[Mapping[str, Any]]
) -> list[str]:
    """MiniLM fine-tuned inside the model (examples/finetune_meld.py) beside the frozen-feature study."""
    options = runs[0].get("options", {})
    header = " | ".join(f"{c} {t} `{m}`" for c, t, m in FINETUNE_SCORES)
    lines = [
        "## Fine-tuning the text encoder inside the model",
        "",
        "`examples/finetune_meld.py` "
        "puts all-MiniLM-L6-v2 inside the model (`pretrained_encoders={\"text\": ...}`, `finetune=\"full\"`; "
        "see [the guide](guides/pretrained-encoders.md)) and fine-tunes it on the raw transcripts with "
        "`MultiTaskTrainer`. **A short CPU schedule, not the full one**: "
        f"{options.get('epochs')} epoch(s) over the first MELD train utterances (how many: the *trained on* "
        f"column; MELD has 9989), batch {options.get('batch_size')}, at most {options.get('max_length')} tokens, "
        f"encoder learning rate {options.get('encoder_lr')} (warm-up ratio {options.get('encoder_warmup')}), "
        f"head learning rate {options.get('lr')}, seed {options.get('seed')} only (one run, so no ± std); "
        "scored once on the full test splits at the end of training (no model selection). "
        f"The frozen-feature rows are the {study.title} above (mean ± std over its seeds); "
        f"results file: [finetune.json](results/{FINETUNE}).",
        "",
        f"| model | trained on | steps | {header} |",
        "|---|---|---|" + "---|" * len(FINETUNE_SCORES),
    ]
    for run in runs:
        trained = ", ".join(f"{name} {count}" for name, count in run.get("train_examples", {}).items())
        scores = [
            f"{run['scores'][f'{c}_{m}']:.2f}" if f"{c}_{m}" in run.get("scores", {}) else "–"
            for c, _, m in FINETUNE_SCORES
        ]
        lines.append(f"| MiniLM fine-tuned, {run['run']} | {trained} | {run.get('steps', '–')} | {' | '.join(scores)} |")
    records, n = study.records, len(study.seeds)
    for setting in ("single-task", "multi-task"):
        if setting in study.settings:
            scores = [_cell_text(records.get((c, t, m, setting)), n) for c, t, m in FINETUNE_SCORES]
            lines.append(f"| frozen MiniLM features, {setting} (study above) | full train splits | – | {' | '.join(scores)} |")
    for entry in published:
        if not entry.get("fine_tuned") or entry.get("value") is None:
            continue
        if not any((entry["corpus"], entry["task"], entry["metric"]) == key for key in FINETUNE_SCORES):
            continue
        scores = [
            str(entry["value"]) if (entry["corpus"], entry["task"], entry["metric"]) == key else "–"
            for key in FINETUNE_SCORES
        ]
        source = f"[{entry['model']}]({entry['url']})" if entry.get("url") else entry["model"]
        lines.append(f"| published: {source} | full train split | – | {' | '.join(scores)} |")
    lines += [
        "",
        "These short runs show the encoder training end to end from raw text on a CPU; with a fraction of "
        "MELD and one epoch they stay below the frozen-feature models, which saw all of MELD for many epochs "
        "with model selection on validation. The published fine-tuned RoBERTa-base numbers are full schedules "
        "(several epochs, model selection on validation, mean of 5 seeds) of a model about 4x the size of "
        "MiniLM: the runs above are not a like-for-like comparison with them. The full schedule is "
        "`python examples/finetune_meld.py --corpora ... --output ... --epochs 3` (no `--train-limit`) on a GPU.",
        "",
    ]
    return lines


def _context_section(
    summary: Mapping[str, Any], published: Sequence[Mapping[str, Any]], finetune: Sequence[Mapping[str, Any]] | None = None
) -> list[str]:
    """Single-task models with and without conversational context (benchmarks/context_gain.py's summary)."""
    names = {**NAMES, "mustard-5fold": "MUStARD (5-fold)"}  # context_gain.py's 5-fold protocol
    metrics = {"emotion": "emotion_weighted_f1", "sarcasm": "sarcasm_weighted_f1"}
    lines = [
        "## Conversational context",
        "",
        "Single-task models on the same frozen all-MiniLM-L6-v2 features, with the utterance's preceding turns "
        "of its dialogue as one more input ([conversational context](guides/context.md)) and without "
        "(K = 0, the single-task model above), by `benchmarks/context_gain.py`: the recipe's model and training "
        "settings, test numbers at the best validation epoch, the context setting (K past and J following turns) "
        "chosen on the mean validation score among the grid's settings with context, and the paired per-seed "
        "difference with its 95% t-interval "
        "(`mtaffect.statistics.paired_delta`). Records: [results.jsonl](results/context/results.jsonl). "
        "MUStARD: speaker-independent protocol (no following turns)"
        + ("; MUStARD (5-fold): its speaker-dependent 5-fold protocol, each seed's score the mean over the folds"
           if "mustard-5fold" in summary else "")
        + ". Training time: with context over "
        "without, one training epoch each, interleaved and repeated (`--cost`, the median), on a shared CPU.",
        "",
    ]
    rows = []
    for corpus, entry in summary.items():
        by_past, chosen = entry.get("by_past", {}), entry.get("chosen_past")
        base, best, delta = by_past.get("0"), by_past.get(str(chosen)), entry.get("delta")
        if base is None or best is None or delta is None:
            continue

        def cell(record: Mapping[str, Any]) -> str:
            std = record.get("test_std")
            return f"{record['test']:.2f}" + (f" ± {std:.2f}" if std is not None else "")

        def setting(label: str) -> str:
            past, _, future = str(label).partition("+")
            return f"K = {past}" + (f", J = {future}" if future else "")

        interval = f"{delta['mean']:+.2f} [{delta['low']:+.2f}, {delta['high']:+.2f}]"
        grid = ", ".join(sorted(by_past, key=lambda k: tuple(int(x) for x in k.split("+"))))
        seconds = entry.get("epoch_seconds")
        cost = f"×{entry.get('train_time_ratio', float('nan')):.2f}"
        digits = 2 if seconds and min(seconds.values()) < 1 else 1
        cost += (f" ({seconds['0']:.{digits}f} → {seconds[str(chosen)]:.{digits}f} s per epoch)" if seconds
                 else " (runs at different times: noisy)")
        rows.append([
            f"{names.get(corpus, corpus)} {entry['task']}", f"`{metrics.get(entry['task'], entry['task'])}`", grid,
            cell(base), f"{setting(chosen)}: {cell(best)}", interval, f"{delta['improved']} of {delta['n']}", cost,
        ])
    lines += _table(["corpus, task", "metric", "settings (K past + J following turns)", "without context",
                     "with context", "Δ (95% CI), points", "seeds better", "training time"], rows)
    every = []
    for corpus, entry in summary.items():
        for label, record in sorted(entry.get("by_past", {}).items(), key=lambda kv: tuple(int(x) for x in kv[0].split("+"))):
            std = record.get("test_std")
            every.append([f"{names.get(corpus, corpus)} {entry['task']}", label.replace("+", " + ") if "+" in label else label,
                          f"{record['validation']:.2f}", f"{record['test']:.2f}" + (f" ± {std:.2f}" if std is not None else ""),
                          str(len(record.get("seeds", [])))])
    if every:
        lines += ["", "Every setting (K past + J following turns; the choice reads the validation column only):", ""]
        lines += _table(["corpus, task", "setting", "validation (mean)", "test (mean ± std)", "seeds"], every)
    pairs = []
    for corpus, task in {(e["corpus"], e["task"]) for e in published if "context" in e}:
        free = [e for e in published if (e["corpus"], e["task"]) == (corpus, task) and e.get("context") is False]
        aware = [e for e in published if (e["corpus"], e["task"]) == (corpus, task) and e.get("context") is True]
        for without, with_ in zip(free, aware):
            if without.get("value") is not None and with_.get("value") is not None:
                pairs.append([f"{names.get(corpus, corpus)} {task}", f"[{without['model']}]({without.get('url', '')})",
                              str(without["value"]), f"[{with_['model']}]({with_.get('url', '')})", str(with_["value"]),
                              f"{with_['value'] - without['value']:+.2f}"])
    if pairs:
        lines += [
            "",
            "Published fine-tuned models without and with context, for scale (their sources are in the published "
            "numbers' list above):",
            "",
        ]
        lines += _table(["corpus, task", "without context", "published", "with context", "published", "difference"],
                        sorted(pairs))
    if finetune:
        options = finetune[0].get("options", {})
        lines += [
            "",
            "MiniLM fine-tuned inside the model (`examples/finetune_meld.py --context-past K`), without and with the "
            "past turns before the utterance in the tokenizer's pair format: **one seed on a short CPU schedule**, "
            f"{options.get('epochs')} epoch over the first {finetune[0].get('train_examples', {}).get('meld')} MELD "
            f"train utterances, batch {options.get('batch_size')}, at most {options.get('max_length')} tokens, scored "
            f"once on the full test split (results file: [finetune.json](results/{CONTEXT_FINETUNE})):",
            "",
        ]
        rows = [[f"K = {run.get('options', {}).get('context_past', 0)}", str(run.get("steps", "–")),
                 f"{run.get('train_seconds', float('nan')):.0f} s",
                 *(f"{run['scores'][key]:.2f}" if key in run.get("scores", {}) else "–"
                   for key in ("meld_emotion_weighted_f1", "meld_sentiment_weighted_f1"))] for run in finetune]
        lines += _table(["past turns", "steps", "training time", "MELD emotion `emotion_weighted_f1`",
                         "MELD sentiment `sentiment_weighted_f1`"], rows)
    lines.append("")
    return lines


def render(
    studies: Sequence[Study],
    published: Sequence[Mapping[str, Any]],
    finetune: Sequence[Mapping[str, Any]] | None = None,
    context: Mapping[str, Any] | None = None,
    context_finetune: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The results page (markdown) for the studies and the side files."""
    if not studies:
        raise ValueError("no study to build the results page from.")
    corpora = list(dict.fromkeys(c for s in studies for c in s.meta.get("corpora", {})))
    names = NAMES
    base = [s for s in studies if s.name not in INTRO]  # frozen features; they differ in protocol only
    lines: list[str] = [
        GENERATED_NOTE,
        "",
        f"# Results on real corpora: {', '.join(names.get(c, c) for c in corpora)} (text only)",
        "",
        "The [real-corpus recipe](guides/real-corpora.md) ran the weak-supervision study of "
        "[`mtaffect run`](concepts/study.md) on public text corpora — MELD (emotion, with sentiment as its "
        "auxiliary task), EmoryNLP (emotion, its own 7 labels) and MUStARD (sarcasm) — with all-MiniLM-L6-v2 "
        "sentence embeddings as the only features, in "
        + {0: "no study recorded here yet", 1: "one study", 2: "two studies"}.get(len(base), f"{len(base)} studies")
        + (": " if base else "")
        + "; ".join(f"**{s.title}** ({len(s.seeds)} seeds)" for s in base)
        + (". They differ in MUStARD's protocol only" if len(base) > 1 else "")
        + "".join(f". The **{s.title}** ({len(s.seeds)} seeds) {INTRO[s.name]}" for s in studies if s.name in INTRO)
        + "".join(f". The {title[0].lower() + title[1:]} (`{config}`) is not recorded here yet"
                  for name, (title, config) in STUDIES.items() if name not in {s.name for s in studies})
        + "".join(f". The {s.title[0].lower() + s.title[1:]} runs no multi-task-gold (see its section)"
                  for s in studies if "multi-task-gold" not in s.settings)
        + ". Each compares the linear probe"
        + ("" if all("linear-probe" in s.settings for s in studies) else " (where it ran)")
        + ", single-task models, "
        "the multi-task model on the union of the corpora, and the multi-task model with weak labels from "
        "teachers (multi-task-weak) or with the gold auxiliary labels kept (multi-task-gold); every model is "
        "kept at its best step on validation and scored once on test.",
        "",
    ]
    lines += _claims_summary(studies)
    for study in studies:
        lines += _study_section(study, studies, published)
    lines += _published_section(studies, published)
    if finetune:
        lines += _finetune_section(finetune, studies[0], published)
    if context:
        lines += _context_section(context, published, context_finetune)
    lines += [
        "## Reproduce",
        "",
        "```bash",
        "pip install \"mtaffect[text]\"",
        "examples/real_corpora/run.sh /path/to/corpora mtaffect-real-corpora   # meld/, emorynlp/, mustard/ as published",
        "python examples/real_corpora/make_results_page.py --docs docs \\",
        "    --study speaker-independent=mtaffect-real-corpora/study-output \\",
        "    --study 5-fold=mtaffect-real-corpora/study-5fold-output \\",
        "    --study fine-tuned=mtaffect-real-corpora/study-finetuned-output \\",
        "    --study context=mtaffect-real-corpora/study-context-output",
        *([
            "# conversational context (single-task, with and without; writes docs/results/context/)",
            "python benchmarks/context_gain.py --work /tmp/ctx --results docs/results/context/results.jsonl",
            "python benchmarks/context_gain.py --work /tmp/ctx --results docs/results/context/results.jsonl --report \\",
            "    --summary docs/results/context/summary.json",
        ] if context else []),
        "```",
        "",
    ]
    return "\n".join(lines)


# ---- files -------------------------------------------------------------------------------------


def load_published(path: Path = PUBLISHED) -> list[dict[str, Any]]:
    """The published numbers, checked: each names its corpus, task, metric, model and source."""
    import yaml

    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    for entry in entries:
        missing = [k for k in ("corpus", "task", "metric", "model", "source") if not entry.get(k)]
        if missing:
            raise ValueError(f"{path}: entry {entry!r} lacks {missing}.")
        if entry.get("value") is not None and not isinstance(entry["value"], (int, float)):
            raise ValueError(f"{path}: value of {entry!r} must be a number (in %) or null.")
        if entry.get("study") is not None and entry["study"] not in STUDIES:
            raise ValueError(f"{path}: study of {entry!r} must be one of {sorted(STUDIES)}.")
    return entries


def _read_json(file: Path) -> Any:
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None


def _gold_choices(results: Path) -> dict[str, dict[str, dict[str, str]]] | None:
    """Seed -> fold -> task -> grid point multi-task-gold chose, from the study's results.jsonl."""
    if not results.is_file():
        return None
    choices: dict[str, dict[str, dict[str, str]]] = {}
    for number, line in enumerate(results.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{results}: line {number} is not JSON ({error}); copy the study's results.jsonl again.") from None
        if record.get("setting") == "multi-task-gold" and record.get("chosen", {}).get("per task"):
            fold = "" if record.get("fold") is None else str(record["fold"])
            choices.setdefault(str(record["seed"]), {})[fold] = record["chosen"]["per task"]
    return choices or None


def load_study(folder: Path, name: str | None = None) -> Study:
    """A study from its folder (``docs/results/<study>/``; ``name``: the study's, by default the one whose
    folder it is)."""
    report = _read_json(folder / "report.json")
    if report is None:
        raise FileNotFoundError(f"{folder / 'report.json'}: no study report to build the page from.")
    if name is None:
        name = next((study for study, other in FOLDERS.items() if other == folder.name), folder.name)
    return Study(
        name, report, _read_json(folder / "machine.json"), _read_json(folder / "corpora.json"),
        _read_json(folder / "study.json"), _gold_choices(folder / "results.jsonl"),
    )


def render_folder(results_dir: Path, published: Path = PUBLISHED) -> str:
    """The page for the files in ``results_dir`` (``docs/results``): every study of ``STUDIES`` found there."""
    studies = [load_study(results_dir / study_folder(name), name) for name in STUDIES
               if (results_dir / study_folder(name) / "report.json").is_file()]
    if not studies:
        raise FileNotFoundError(
            f"{results_dir}: no study folder ({', '.join(map(study_folder, STUDIES))}) with a report.json; copy the studies with "
            "--study NAME=STUDY_OUTPUT_DIR."
        )
    return render(studies, load_published(published), _read_json(results_dir / FINETUNE),
                  _read_json(results_dir / CONTEXT_SUMMARY), _read_json(results_dir / CONTEXT_FINETUNE))


def copy_study(output: Path, target: Path) -> list[str]:
    """Copy a study's files from its output folder into ``target``; returns the names copied."""
    if not (output / "report.json").is_file():
        raise FileNotFoundError(f"{output}: no report.json here; is the study finished?")
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in COPIED:
        source = output / name
        if not source.is_file() and name == "corpora.json":
            source = output.parent / name  # prepare.py writes it in the working folder
        if source.is_file():
            shutil.copyfile(source, target / name)
            copied.append(name)
    return copied


def _study_argument(value: str) -> tuple[str, Path]:
    name, sep, folder = value.partition("=")
    if not sep or name not in STUDIES:
        raise argparse.ArgumentTypeError(f"expected NAME=FOLDER with NAME one of {', '.join(STUDIES)}, got {value!r}")
    return name, Path(folder)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", action="append", type=_study_argument, default=[], metavar="NAME=FOLDER",
                        help=f"a study's output folder to copy ({', '.join(STUDIES)}); omit to rebuild from docs")
    parser.add_argument("--finetune", type=Path, help="examples/finetune_meld.py's finetune.json to copy")
    parser.add_argument("--docs", type=Path, required=True, help="the docs folder (docs/results/ and docs/results.md)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results_dir = args.docs / "results"
    try:
        for name, folder in args.study:
            copy_study(folder, results_dir / study_folder(name))
        if args.finetune is not None:
            if not args.finetune.is_file():
                raise FileNotFoundError(f"{args.finetune}: no such file.")
            results_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(args.finetune, results_dir / FINETUNE)
        page = render_folder(results_dir)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    (args.docs / "results.md").write_text(page, encoding="utf-8")
    print(f"wrote {args.docs / 'results.md'}")


if __name__ == "__main__":
    main()
