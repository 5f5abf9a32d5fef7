"""`mtaffect predict` gives the pipeline's predictions for raw utterances, one JSON line each."""

from __future__ import annotations

import json

import pytest

from mtaffect.cli.main import main
from mtaffect.cli.predict import read_utterances


@pytest.fixture(scope="module")
def text_model(minilm_checkpoint):
    return minilm_checkpoint[0]


def test_predictions_are_the_pipelines(text_model, tmp_path, capsys):
    from transformers import pipeline

    import mtaffect.pipeline  # noqa: F401

    classifier = pipeline("multimodal-affect", model=str(text_model))
    assert main(["predict", "--model", str(text_model), "--text", "Oh great, another meeting."]) == 0
    (single,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert single == json.loads(json.dumps(classifier("Oh great, another meeting.")))

    utterances = tmp_path / "utterances.jsonl"
    utterances.write_text('{"id": "u1", "text": "I love it"}\n\n{"id": "u2", "text": "This is awful"}\n')
    output = tmp_path / "out" / "predictions.jsonl"
    assert main(["predict", "--model", str(text_model), "--input", str(utterances), "--output", str(output),
                 "--heads", "sarcasm", "sentiment", "--threshold", "0.3"]) == 0
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["u1", "u2"]
    expected = json.loads(json.dumps(classifier("This is awful", heads=["sarcasm", "sentiment"], threshold=0.3)))
    assert set(expected) == {"sarcasm", "sentiment"}
    assert {k: v for k, v in lines[1].items() if k != "id"} == expected


def test_media_paths_are_relative_to_the_file(tmp_path):
    utterances = tmp_path / "sub" / "utterances.jsonl"
    utterances.parent.mkdir()
    utterances.write_text(json.dumps({"text": "hi", "audio": "clips/a.wav", "video": "/abs/v.mp4"}) + "\n")
    (record,) = read_utterances(utterances)
    assert record == {"text": "hi", "audio": str(tmp_path / "sub" / "clips" / "a.wav"), "video": "/abs/v.mp4"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json\n", "utterances.jsonl:1: not a JSON object"),
        ('{"text": "ok"}\n["a list"]\n', "utterances.jsonl:2: expected an object with 'text'"),
        ('{"text": "ok", "mood": "A"}\n', "unknown keys ['mood']"),
    ],
)
def test_bad_utterance_files_name_the_line(tmp_path, capsys, content, message):
    utterances = tmp_path / "utterances.jsonl"
    utterances.write_text(content)
    assert main(["predict", "--model", str(tmp_path / "unused"), "--input", str(utterances)]) == 2
    assert message in capsys.readouterr().err


def test_refusals(tmp_path, capsys):
    model = str(tmp_path / "unused")
    assert main(["predict", "--model", model]) == 2
    assert "nothing to predict" in capsys.readouterr().err
    assert main(["predict", "--model", model, "--text", "hi", "--input", str(tmp_path / "u.jsonl")]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["predict", "--model", model, "--text", "hi", "--audio", str(tmp_path / "none.wav")]) == 2
    assert "no such audio file" in capsys.readouterr().err
    output = tmp_path / "mine.jsonl"
    output.write_text("mine")
    assert main(["predict", "--model", model, "--text", "hi", "--output", str(output)]) == 2
    assert "exists" in capsys.readouterr().err and output.read_text() == "mine"


def _wav(path, seconds: float = 1.0):
    import numpy as np
    import soundfile

    rate = 16000
    t = np.arange(int(rate * seconds)) / rate
    soundfile.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    return path


def test_media_a_text_only_model_cannot_read_is_refused(text_model, tmp_path, capsys):
    wav = _wav(tmp_path / "clip.wav")
    assert main(["predict", "--model", str(text_model), "--text", "hi", "--audio", str(wav), "--video", str(wav)]) == 2
    err = capsys.readouterr().err
    assert "--audio, --video: the model" in err and "reads only text, so its audio, video would be ignored" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    utterances = tmp_path / "u.jsonl"
    utterances.write_text('{"text": "fine"}\n{"text": "hi", "audio": "clip.wav"}\n')
    assert main(["predict", "--model", str(text_model), "--input", str(utterances)]) == 2
    assert f"{utterances}: utterance 2: the model" in capsys.readouterr().err


def test_the_pipeline_warns_about_inputs_it_ignores(text_model, tmp_path, caplog):
    from transformers import pipeline

    import mtaffect.pipeline  # noqa: F401

    classifier = pipeline("multimodal-affect", model=str(text_model))
    assert classifier.raw_input_use({"text": "hi", "audio": "a.wav", "video": "v.mp4"}) == {
        "text": ["text"], "audio": [], "video": []}
    with caplog.at_level("WARNING", logger="mtaffect.pipeline"):
        classifier({"text": "hi", "audio": str(_wav(tmp_path / "a.wav"))})
    assert "the input's audio cannot be used and is ignored" in caplog.text


@pytest.fixture(scope="module")
def audio_model(tmp_path_factory, minilm_checkpoint):
    pytest.importorskip("opensmile")
    import torch

    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.data.extract import AudioExtractor, feature_set_name
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

    text, audio = minilm_checkpoint[2], AudioExtractor(level="functionals")
    name = feature_set_name([text, audio])
    config = MTAffectConfig(feature_sets={name: {"text": text.dim, "audio": audio.dim}}, hidden_size=8, num_heads=2)
    config.feature_extractors = {name: {"text": text.describe(), "audio": audio.describe()}}
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("audio-model")
    MTAffectForMultiTaskAffect(config).save_pretrained(folder)
    return folder


def test_no_warning_on_the_normal_path_and_one_model_load(audio_model, tmp_path, capsys, monkeypatch):
    import warnings

    from mtaffect.data.extract import TextExtractor
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

    loads, builds = [], []
    original_load, original_init = MTAffectForMultiTaskAffect.from_pretrained.__func__, TextExtractor.__init__
    monkeypatch.setattr(MTAffectForMultiTaskAffect, "from_pretrained",
                        classmethod(lambda cls, *a, **k: loads.append(a) or original_load(cls, *a, **k)))
    monkeypatch.setattr(TextExtractor, "__init__", lambda self, *a, **k: builds.append(a) or original_init(self, *a, **k))
    _wav(tmp_path / "a.wav")
    utterances = tmp_path / "u.jsonl"
    utterances.write_text('{"text": "I love it", "audio": "a.wav"}\n{"text": "So bad", "video": "a.wav"}\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["predict", "--model", str(audio_model), "--input", str(utterances)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    ours = [w for w in caught if "not writable" in str(w.message) or "mtaffect" in w.filename]
    assert not ours, [str(w.message) for w in ours]
    assert len(loads) == 1 and len(builds) == 1  # the model and its extractor, once per call


#: What a prediction does not need: the corpus storage (datasets, pyarrow, pandas), the metrics
#: (scikit-learn), the Trainer and the training recipe. They were half of predict's start-up.
NOT_FOR_PREDICT = (
    "datasets", "pyarrow", "pandas", "sklearn", "transformers.trainer", "transformers.training_args",
    "mtaffect.recipes", "mtaffect.training", "mtaffect.metrics", "mtaffect.data.schema", "mtaffect.data.extract.corpus",
)


@pytest.mark.slow  # tests/test_cli_commands.py::test_predict asserts the same of `mtaffect predict` itself
def test_predict_imports_only_its_own_command(text_model, tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\nfrom mtaffect.cli.main import main\n"
        f"assert main(['predict', '--model', {str(text_model)!r}, '--text', 'hi']) == 0\n"
        "print(sorted(m for m in ('mtaffect.study', 'mtaffect.report', 'mtaffect.cli.run', 'mtaffect.cli.data') if m in sys.modules))\n"
        f"print(sorted(m for m in {NOT_FOR_PREDICT!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0 and len(lines) == 3, out.stdout + out.stderr
    assert set(json.loads(lines[0])) >= {"emotion", "sentiment", "sarcasm"}  # a real prediction was made
    assert lines[1] == "[]", out.stdout + out.stderr
    assert lines[2] == "[]", lines[2]
