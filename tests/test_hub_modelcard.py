"""Model card generation, in process (no Hub): card data, the Trainer callback, rendering, parsing."""

from __future__ import annotations

import copy
import logging
import math

import pytest
import torch
from huggingface_hub import ModelCard

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.data.schema import get_corpus_info, set_corpus_info
from mtaffect.metrics import split_metric_key
from mtaffect.modelcard import (
    CARD_DATA_FILE,
    ModelCardCallback,
    MTAffectModelCardData,
    generate_model_card,
    get_model_card_data,
    load_model_card_data,
    record_training_corpora,
    trainer_create_model_card,
    write_model_card,
)
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

EVAL = {
    "eval_synthetic_mosei_sentiment_MAE": 0.91,
    "eval_synthetic_mosei_sentiment_Non0_F1_score": 0.62,
    "eval_synthetic_mosei_emotion_weighted_f1": 0.55,
    "eval_synthetic_mosei_emotion_anger_weighted_acc": 0.5,  # per label: table only
    "eval_synthetic_mustard_sarcasm_weighted_f1": 0.7,
    "eval_synthetic_meld_sentiment_Non0_acc_2": math.nan,  # undefined: left out
    "eval_synthetic_mustard_loss": 1.2,
    "eval_combined_score": 0.6,
}


@pytest.fixture(scope="module")
def base_model(tiny_family):
    torch.manual_seed(0)
    config = MTAffectConfig.from_corpora(tiny_family, hidden_size=8, num_heads=2, num_layers=1)
    return MTAffectForMultiTaskAffect(config)


@pytest.fixture
def model(base_model):
    return copy.deepcopy(base_model)


def parse_metric_key(key, corpora=()):
    """(split, corpus, task, metric) of a per-task metric key, as the card reads it; else None."""
    parsed = split_metric_key(key, corpora)
    if parsed is None or parsed.task is None:
        return None
    return parsed.split, parsed.corpus, parsed.task, parsed.metric


def test_parse_metric_key_handles_corpus_names_with_underscores():
    assert parse_metric_key("eval_synthetic_mosei_sentiment_Has0_acc_2", ["synthetic_mosei"]) == (
        "validation", "synthetic_mosei", "sentiment", "Has0_acc_2",
    )
    # Unknown corpus names are found by the task they are followed by.
    assert parse_metric_key("test_my_corpus_sarcasm_weighted_f1") == ("test", "my_corpus", "sarcasm", "weighted_f1")
    assert parse_metric_key("eval_emotion_weighted_f1") == ("validation", None, "emotion", "weighted_f1")
    for key in ("eval_synthetic_mosei_loss", "eval_combined_score", "epoch", "eval_runtime"):
        assert parse_metric_key(key, ["synthetic_mosei"]) is None


def test_card_has_metadata_model_index_and_every_section(model, tiny_family, tmp_path):
    record_training_corpora(model, tiny_family, dataset_ids={"synthetic_meld": "someone/affect-corpora"})
    get_model_card_data(model).eval_results.update(EVAL)
    path = write_model_card(model, tmp_path, model_id="someone/mtaffect-tiny", license="apache-2.0")
    card = ModelCard.load(path)
    data = card.data
    assert data.library_name == "mtaffect" and data.license == "apache-2.0"
    assert {"mtaffect", "emotion-recognition", "sentiment-analysis", "sarcasm-detection"} <= set(data.tags)
    assert data.datasets == ["someone/affect-corpora"]
    found = {(r.dataset_name, r.metric_name): r for r in data.eval_results}
    assert found[("synthetic_mosei", "sentiment MAE")].metric_value == pytest.approx(0.91)
    assert found[("synthetic_mosei", "sentiment MAE")].metric_type == "mae"
    assert found[("synthetic_mustard", "sarcasm weighted_f1")].metric_type == "f1"
    assert found[("synthetic_mosei", "emotion weighted_f1")].task_type == "multimodal-emotion-recognition"
    assert ("synthetic_mosei", "emotion anger_weighted_acc") not in found
    # The literature's headline metrics first, per corpus (mtaffect.metrics.order_metrics).
    assert [r.metric_name for r in data.eval_results if r.dataset_name == "synthetic_mosei"] == [
        "emotion weighted_f1", "sentiment Non0_F1_score", "sentiment MAE",
    ]
    assert not any(name == "synthetic_meld" for name, _ in found)  # its only value was NaN
    assert data.model_name == "mtaffect-tiny"
    text = card.text
    for expected in (
        "| emotion/meld | `head_outputs['emotion/meld']` [batch, 7] | anger, disgust, fear, joy, neutral, sadness, surprise (softmax, single-label)",
        "| sentiment/polarity | `head_outputs['sentiment/polarity']` [batch, 3] | negative, neutral, positive (softmax, single-label)",
        "| sentiment/score | `head_outputs['sentiment/score']` [batch] | score in [-3, 3] (l1 loss)",
        "| synthetic-cmu | audio | 74 |",
        "[someone/affect-corpora](https://huggingface.co/datasets/someone/affect-corpora)",
        "**λ (weight of the weak-label losses):** 1.0",
        'AutoModel.from_pretrained("someone/mtaffect-tiny", trust_remote_code=True)',
        "eprint        = {2104.11560}",
    ):
        assert expected in text, expected
    assert (tmp_path / CARD_DATA_FILE).is_file()


def test_card_usage_snippet_runs(model, tmp_path):
    model.save_pretrained(tmp_path / "model")
    card = generate_model_card(model, model_id="someone/mtaffect-tiny")
    snippet = card.text.split("```python\n", 1)[1].split("```", 1)[0]
    snippet = snippet.replace('"someone/mtaffect-tiny"', repr(str(tmp_path / "model")))
    namespace: dict = {}
    exec(compile(snippet, "usage-snippet", "exec"), namespace)  # noqa: S102
    (prediction,) = namespace["predictions"]
    assert set(prediction) == {"emotion/iemocap", "emotion/meld", "emotion/mosei", "sentiment/polarity", "sentiment/score", "sarcasm"}


def test_model_without_evaluation_gets_a_valid_card_and_one_warning(model, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="mtaffect.modelcard"):
        write_model_card(model, tmp_path / "a")
        write_model_card(model, tmp_path / "b")
    warnings = [r for r in caplog.records if "No evaluation results" in r.getMessage()]
    assert len(warnings) == 1
    card = ModelCard.load(tmp_path / "a" / "README.md")
    assert card.data.eval_results is None and card.data.get("model-index") is None
    assert "No evaluation results were recorded for this model" in card.text
    assert card.data.library_name == "mtaffect"


def test_weak_label_settings_of_each_corpus_are_on_the_card(model, tiny_family, tmp_path):
    corpus = tiny_family["synthetic_meld"]
    info = get_corpus_info(corpus)
    info.notes = {"weak_labels": {"sarcasm": {"mode": "soft", "threshold": 0.7, "teacher_sha256": "0123456789abcdef"}}}
    labelled = {"synthetic_meld": corpus.map(lambda row: row)}  # a copy whose metadata we may change
    set_corpus_info(labelled["synthetic_meld"], info)
    record_training_corpora(model, labelled)
    model.config.weak_loss_weight = 0.5
    card = generate_model_card(model)
    assert "**λ (weight of the weak-label losses):** 0.5" in card.text
    assert "sarcasm from a teacher (mode=soft, threshold=0.7, teacher sha256 0123456789ab)" in card.text


def test_card_data_survives_save_and_reload(model, tmp_path):
    get_model_card_data(model).eval_results.update(EVAL)
    get_model_card_data(model).hyperparameters = {"learning_rate": 0.001}
    write_model_card(model, tmp_path, license="mit")
    fresh = copy.deepcopy(model)
    del fresh.model_card_data
    data = load_model_card_data(fresh, tmp_path)
    assert data.eval_results == pytest.approx({k: v for k, v in EVAL.items()}, nan_ok=True)
    assert data.hyperparameters == {"learning_rate": 0.001} and data.license == "mit"
    assert generate_model_card(fresh).data.eval_results


def test_card_data_rejects_bad_fields(model):
    with pytest.raises(ValueError, match="namespace/name"):
        MTAffectModelCardData(model_id="no-namespace")
    with pytest.raises(ValueError, match="Unknown model card field"):
        generate_model_card(model, colour="blue")


def test_callback_fills_card_data_during_training(model, tiny_family, tmp_path):
    from mtaffect.training import MultiTaskTrainer, MultiTaskTrainingArguments

    args = MultiTaskTrainingArguments(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=8, per_device_eval_batch_size=32,
        learning_rate=2e-3, report_to="none", save_strategy="no", use_cpu=True, disable_tqdm=True,
        hub_model_id="someone/trained-here",
    )
    corpora = ("synthetic_mosei", "synthetic_mustard")
    trainer = MultiTaskTrainer(
        model=model, args=args,
        train_dataset={name: tiny_family[name]["train"] for name in corpora},
        eval_dataset={name: tiny_family[name]["validation"] for name in corpora},
    )
    if not any(isinstance(cb, ModelCardCallback) for cb in trainer.callback_handler.callbacks):
        trainer.add_callback(ModelCardCallback(trainer))
    trainer.train()
    metrics = trainer.evaluate()
    data = get_model_card_data(model)
    assert data.hyperparameters["learning_rate"] == 2e-3
    assert data.hyperparameters["training_steps"] == 2
    assert "corpus_sampling" in data.hyperparameters
    assert [c["name"] for c in data.training_corpora] == list(corpora)
    assert data.training_corpora[0]["gold_tasks"] == ["emotion", "sentiment"]
    assert data.eval_results["eval_synthetic_mustard_sarcasm_weighted_f1"] == metrics[
        "eval_synthetic_mustard_sarcasm_weighted_f1"
    ]
    path = trainer_create_model_card(trainer, license="apache-2.0", finetuned_from="someone/base", tasks="x")
    card = ModelCard.load(path)
    assert card.data.base_model == "someone/base" and card.data.license == "apache-2.0"
    assert 'from_pretrained("someone/trained-here"' in card.text
    assert {r.dataset_name for r in card.data.eval_results} == set(corpora)
