"""MultiTaskTrainer on tiny corpora: batching, loss logging, per-corpus evaluation, config overrides."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import EarlyStoppingCallback, TrainerCallback, TrainingArguments

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.data.arrow import ArrowRowReader
from mtaffect.data.corpora.synthetic import make_synthetic_family
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
from mtaffect.training import FeatureSetCollator, MultiTaskTrainer, MultiTaskTrainingArguments
from mtaffect.training.sampler import CorpusConcatDataset


@pytest.fixture(scope="module")
def family():
    # Two feature sets: MUStARD keeps its own (scaled) dims.
    return make_synthetic_family(seed=0, size_scale=0.06, max_length=6, shared_features=False)


def _model(corpora, **kwargs) -> MTAffectForMultiTaskAffect:
    torch.manual_seed(0)
    config = MTAffectConfig.from_corpora(corpora, hidden_size=8, encoder_type="mean", **kwargs)
    return MTAffectForMultiTaskAffect(config)


def _args(tmp_path, **kwargs) -> MultiTaskTrainingArguments:
    defaults = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        max_steps=8,
        logging_steps=4,
        save_strategy="no",
        learning_rate=1e-2,
        disable_tqdm=True,
        use_cpu=True,
    )
    defaults.update(kwargs)
    return MultiTaskTrainingArguments(**defaults)


class _Recorder:
    """Collator wrapper that remembers each training batch's corpora and feature sets."""

    def __init__(self, collator):
        self.collator = collator
        self.batches: list[tuple[set[str], set[str]]] = []

    def __call__(self, rows):
        self.batches.append(({str(r["source"]) for r in rows}, {str(r["feature_set"]) for r in rows}))
        return self.collator(rows)


def _train(family, tmp_path, composition, sampling="temperature"):
    trainer = MultiTaskTrainer(
        _model(family),
        _args(tmp_path, batch_composition=composition, corpus_sampling=sampling, max_steps=12),
        train_dataset={name: corpus["train"] for name, corpus in family.items()},
    )
    recorder = _Recorder(trainer.data_collator)
    trainer.data_collator = recorder
    trainer.train()
    return trainer, recorder.batches


def test_homogeneous_batches_hold_one_corpus_and_task_losses_are_logged(family, tmp_path):
    trainer, batches = _train(family, tmp_path, "homogeneous")
    assert len(batches) >= 12
    assert all(len(corpora) == 1 for corpora, _ in batches)
    assert len({next(iter(corpora)) for corpora, _ in batches}) > 1
    logs = [record for record in trainer.state.log_history if "loss" in record]
    assert len(logs) == 3
    logged = {key for record in logs for key in record if key.startswith("loss_")}
    # One loss term per (task, label space) head of the family.
    heads = {"emotion/mosei", "emotion/iemocap", "emotion/meld", "sentiment/score", "sentiment/polarity", "sarcasm/binary"}
    assert logged and logged <= {f"loss_{head}" for head in heads}
    assert {"loss_sentiment/score", "loss_sentiment/polarity"} <= logged  # MOSEI's scores and MELD's classes
    assert all(math.isfinite(record[key]) for record in logs for key in record if key.startswith("loss_"))


def test_mixed_batches_mix_corpora_but_never_feature_sets(family, tmp_path):
    _, batches = _train(family, tmp_path, "mixed", sampling="uniform")
    assert all(len(feature_sets) == 1 for _, feature_sets in batches)
    assert any(len(corpora) > 1 for corpora, _ in batches)
    assert {fs for _, sets in batches for fs in sets} == {"synthetic-cmu", "synthetic-mustard"}


class _EvaluateCalls(TrainerCallback):
    def __init__(self):
        self.metrics: list[dict] = []

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.metrics.append(dict(metrics))


def test_per_corpus_evaluation_prefixes_and_aggregate(family, tmp_path):
    calls = _EvaluateCalls()
    trainer = MultiTaskTrainer(
        _model(family),
        _args(tmp_path),
        train_dataset={name: corpus["train"] for name, corpus in family.items()},
        eval_dataset={name: corpus["validation"] for name, corpus in family.items()},
        callbacks=[calls],
    )
    metrics = trainer.evaluate()
    expected = {
        "synthetic_mosei": ["sentiment_Has0_acc_2", "sentiment_Non0_F1_score", "sentiment_MAE", "emotion_weighted_f1"],
        "synthetic_iemocap": ["emotion_accuracy", "emotion_weighted_f1"],
        "synthetic_meld": ["emotion_weighted_f1", "sentiment_weighted_f1"],
        "synthetic_mustard": ["sarcasm_weighted_f1"],
    }
    for corpus, names in expected.items():
        for name in names + ["loss", "primary_score"]:
            assert f"eval_{corpus}_{name}" in metrics, f"missing eval_{corpus}_{name}"
    # Only the corpus' own tasks are scored: MUStARD has no emotion labels.
    assert not any(key.startswith("eval_synthetic_mustard_emotion") for key in metrics)
    scores = [metrics[f"eval_{corpus}_primary_score"] for corpus in expected]
    assert metrics["eval_combined_score"] == pytest.approx(np.mean(scores))
    losses = [metrics[f"eval_{corpus}_loss"] for corpus in expected]
    assert metrics["eval_loss"] == pytest.approx(np.mean(losses))
    # Callbacks (early stopping, reporters) see one evaluation with everything in it.
    assert len(calls.metrics) == 1 and "eval_combined_score" in calls.metrics[0]
    # A dict passed to evaluate() works the same; a single dataset keeps the stock prefix.
    single = trainer.evaluate(family["synthetic_mustard"]["validation"])
    assert "eval_sarcasm_weighted_f1" in single and "eval_loss" in single
    other = trainer.evaluate({"meld": family["synthetic_meld"]["validation"]}, metric_key_prefix="test")
    assert "test_meld_emotion_weighted_f1" in other and "test_combined_score" in other


def test_predict_returns_outputs_by_name(family, tmp_path):
    trainer = MultiTaskTrainer(
        _model(family), _args(tmp_path), train_dataset={"m": family["synthetic_mosei"]["train"]}
    )
    output = trainer.predict(family["synthetic_mosei"]["test"].with_format("numpy"))
    n = len(family["synthetic_mosei"]["test"])
    assert output.predictions["emotion/mosei"].shape == (n, 6)
    assert output.predictions["sentiment/score"].shape == (n,)
    assert output.label_ids["emotion_mask"].dtype == bool


def test_combined_score_drives_model_selection_and_early_stopping(family, tmp_path):
    corpora = {name: family[name] for name in ("synthetic_iemocap", "synthetic_mustard")}
    trainer = MultiTaskTrainer(
        _model(corpora),
        _args(
            tmp_path,
            max_steps=6,
            eval_strategy="steps",
            eval_steps=2,
            save_strategy="steps",
            save_steps=2,
            load_best_model_at_end=True,
            metric_for_best_model="combined_score",
        ),
        train_dataset={name: corpus["train"] for name, corpus in corpora.items()},
        eval_dataset={name: corpus["validation"] for name, corpus in corpora.items()},
        callbacks=[EarlyStoppingCallback(early_stopping_patience=5)],
    )
    assert trainer.args.greater_is_better is True
    trainer.train()
    evaluations = [record for record in trainer.state.log_history if "eval_combined_score" in record]
    assert len(evaluations) == 3
    assert trainer.state.best_metric == max(record["eval_combined_score"] for record in evaluations)
    assert trainer.state.best_model_checkpoint is not None


def test_loss_settings_are_the_model_configs(family, tmp_path):
    """λ and every loss setting have one owner, the config: the recipe writes them there, the
    Trainer never rewrites them, and the training arguments do not take them."""
    from mtaffect.recipes import build_model, training_arguments

    model = build_model(
        family,
        model={"hidden_size": 8, "encoder_type": "mean", "weak_loss_weight": 0.25, "weak_label_mode": "hard",
               "task_loss_weights": "sarcasm=0.5"},
    )
    MultiTaskTrainer(model, _args(tmp_path), train_dataset={"m": family["synthetic_mosei"]["train"]})
    assert model.config.weak_loss_weight == 0.25
    assert model.config.weak_label_mode == "hard"
    assert model.config.task_loss_weights == {"emotion": 1.0, "sentiment": 1.0, "sarcasm": 0.5}
    assert model.config.weak_use_confidence is False  # unset settings keep the config's default
    untouched = _model(family, weak_loss_weight=0.7)
    MultiTaskTrainer(untouched, _args(tmp_path), train_dataset={"m": family["synthetic_mosei"]["train"]})
    assert untouched.config.weak_loss_weight == 0.7
    with pytest.raises(TypeError, match="weak_loss_weight"):
        MultiTaskTrainingArguments(str(tmp_path), weak_loss_weight=0.25)
    with pytest.raises(ValueError, match="the model config owns it"):
        training_arguments({"output_dir": str(tmp_path), "weak_loss_weight": 0.25})
    # Fine-tuning a checkpoint may change its loss settings, not its architecture.
    untouched.save_pretrained(tmp_path / "checkpoint")
    tuned = build_model(family, model={"from_pretrained": str(tmp_path / "checkpoint"), "weak_loss_weight": 0.25})
    assert tuned.config.weak_loss_weight == 0.25 and tuned.config.hidden_size == 8
    with pytest.raises(ValueError, match="architecture settings \\['hidden_size'\\]"):
        build_model(family, model={"from_pretrained": str(tmp_path / "checkpoint"), "hidden_size": 16})


def test_bad_inputs_fail_clearly(family, tmp_path):
    from mtaffect.recipes import build_model

    train = {"m": family["synthetic_mosei"]["train"]}
    with pytest.raises(TypeError, match="MultiTaskTrainingArguments"):
        MultiTaskTrainer(_model(family), TrainingArguments(str(tmp_path)), train_dataset=train)
    with pytest.raises(ValueError, match="empty"):
        MultiTaskTrainer(_model(family), _args(tmp_path), train_dataset={"m": family["synthetic_mosei"]["train"].select([])})
    with pytest.raises(ValueError, match="sampling_temperature"):
        _args(tmp_path, sampling_temperature=0)
    with pytest.raises(ValueError, match="unknown task"):
        build_model(family, model={"hidden_size": 8, "task_loss_weights": "joy=1"})
    args = _args(tmp_path, remove_unused_columns=True)
    trainer = MultiTaskTrainer(_model(family), args, train_dataset=train)
    assert trainer.args.remove_unused_columns is False


def test_feature_set_collator_uses_each_feature_sets_dims(family):
    collator = FeatureSetCollator.for_datasets([corpus["train"] for corpus in family.values()])
    assert collator.collators["synthetic-cmu"].feature_dims == {"text": 300, "audio": 74, "visual": 35}
    assert collator.collators["synthetic-mustard"].feature_dims == {"text": 96, "audio": 35, "visual": 256}
    rows = family["synthetic_mustard"]["train"].with_format("numpy").select(range(3))
    batch = collator([rows[i] for i in range(3)])
    assert batch["feature_set"] == "synthetic-mustard" and batch["text_features"].shape[-1] == 96


def test_fast_rows_match_the_datasets_formatter(family):
    for corpus in family.values():
        dataset = corpus["train"].with_format("numpy")
        for view in (dataset, dataset.select([5, 2, 9, 0]), dataset.shuffle(seed=1)):
            indices = [3, 0, 2, 1]
            fast, slow = ArrowRowReader.for_dataset(view)(indices), view.__getitems__(indices)
            assert fast is not None and len(fast) == len(slow)
            for a, b in zip(fast, slow):
                assert a.keys() == b.keys()
                for key in a:
                    assert np.asarray(a[key]).dtype == np.asarray(b[key]).dtype, key
                    assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])), key
    # Other formats go through the formatter.
    plain = family["synthetic_mustard"]["train"]
    assert ArrowRowReader.for_dataset(plain) is None
    concat = CorpusConcatDataset({"a": plain})
    assert str(concat.__getitems__([1])[0]["id"]) == plain[1]["id"]


def test_train_command_end_to_end(tmp_path, capsys):
    import json

    from mtaffect.cli.main import main
    from mtaffect.data.corpora.synthetic import make_synthetic_corpus

    make_synthetic_corpus("synthetic_iemocap", size_scale=0.05, max_length=6).save_to_disk(str(tmp_path / "iemocap"))
    config = tmp_path / "train.yaml"
    config.write_text(
        "corpora:\n"
        f"  iemocap: {tmp_path / 'iemocap'}\n"
        "  mustard: synthetic_mustard\n"
        "synthetic: {size_scale: 0.05, max_length: 6}\n"
        "model: {hidden_size: 8, encoder_type: mean}\n"
        "training: {max_steps: 4, per_device_train_batch_size: 4, eval_strategy: steps, eval_steps: 2,\n"
        "           use_cpu: true, disable_tqdm: true, corpus_sampling: uniform}\n"
    )
    out = tmp_path / "out"
    argv = ["train", "--config", str(config), "--output-dir", str(out), "--sampling", "round_robin",
            "--", "--learning_rate", "0.02"]
    assert main(argv) == 0
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    evaluation = json.loads((out / "eval_results.json").read_text())
    assert "eval_iemocap_emotion_weighted_f1" in evaluation and "eval_mustard_sarcasm_weighted_f1" in evaluation
    assert "test_combined_score" in json.loads((out / "test_results.json").read_text())
    args = torch.load(out / "training_args.bin", weights_only=False)
    assert args.learning_rate == 0.02 and args.corpus_sampling.value == "round_robin"  # flags beat the config
    assert args.metric_for_best_model == "combined_score"
    assert args.dataloader_pin_memory == torch.cuda.is_available()  # no pinned memory without an accelerator
    # Resuming a finished run trains no further step and succeeds.
    assert main([*argv[:5], "--resume"]) == 0
    assert "mtaffect train: model and metrics saved" in capsys.readouterr().out
    # User errors end in one line and exit code 2.
    assert main(["train"]) == 2
    assert "No corpora" in capsys.readouterr().err
    assert main(["train", "--corpora", "synthetic_mustard", "--", "--no_such_flag", "1"]) == 2


def test_sampler_epoch_follows_the_trainer_state_on_resume(family, tmp_path):
    # Under DDP the resumed epoch's loader is SkipBatchSampler(BatchSamplerShard(sampler)), which
    # forwards no set_epoch; the callback sets it from the restored state instead.
    from transformers import TrainerState

    from mtaffect.training.trainer import _SamplerEpochCallback

    trainer = MultiTaskTrainer(_model(family), _args(tmp_path), train_dataset={"m": family["synthetic_mosei"]["train"]})
    trainer.get_train_dataloader()
    callback = next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, _SamplerEpochCallback))
    for epoch, expected in ((None, 0), (0.0, 0), (1.25, 1), (2.0, 2)):
        state = TrainerState()
        state.epoch = epoch
        callback.on_epoch_begin(trainer.args, state, trainer.control)
        assert trainer.train_batch_sampler.epoch == expected


def test_train_command_with_only_corpora_learns_above_majority(tmp_path, capsys):
    """`mtaffect train --corpora X` alone (the recipe's defaults, a model from scratch) learns.

    The Trainer's own learning rate (5e-5) left such a model a constant predictor; the recipe's
    defaults must beat the majority class on a small synthetic corpus.
    """
    import json

    import numpy as np

    from mtaffect.cli.main import main
    from mtaffect.data.corpora.synthetic import make_synthetic_corpus
    from mtaffect.metrics import sarcasm_metrics

    corpus = make_synthetic_corpus("synthetic_mustard", size_scale=0.5, max_length=8)
    corpus.save_to_disk(str(tmp_path / "mustard"))
    assert main(["train", "--corpora", f"mustard={tmp_path / 'mustard'}", "--output-dir", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    score = json.loads((tmp_path / "out" / "test_results.json").read_text())["test_mustard_sarcasm_weighted_f1"]
    labels = np.asarray(corpus["test"]["sarcasm"])
    majority = sarcasm_metrics(np.full(len(labels), float(labels.mean() > 0.5)), labels)["weighted_f1"]
    assert score > majority + 0.2, (score, majority)


def test_min_steps_gives_a_small_corpus_as_many_steps_as_a_large_one(family, tmp_path):
    train = {"m": family["synthetic_mustard"]["train"]}  # 19 rows: 5 batches of 4 per epoch
    args = _args(tmp_path, max_steps=-1, num_train_epochs=2, min_steps=12, eval_strategy="epoch",
                 logging_strategy="epoch")
    evaluation = {"m": family["synthetic_mustard"]["validation"]}
    trainer = MultiTaskTrainer(_model(family), args, train_dataset=train, eval_dataset=evaluation)
    assert trainer.train().global_step == 12 and trainer.args.max_steps == 12
    # Two evaluations, as two epochs asked for, spread over the 12 steps (not one per 5-step epoch).
    assert [log["step"] for log in trainer.state.log_history if "eval_loss" in log] == [6, 12]
    # More steps from the epochs than the budget: the epochs decide.
    trainer = MultiTaskTrainer(_model(family), _args(tmp_path, max_steps=-1, num_train_epochs=3, min_steps=4),
                               train_dataset=train)
    assert trainer.train().global_step == 3 * len(trainer.train_batch_sampler)
