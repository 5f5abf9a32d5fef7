"""Every console command, run as a subprocess the way the README and the docs show it, on tiny corpora.

The ``cli`` fixture (tests/conftest.py) converts a tiny MELD release with ``mtaffect data convert``
(one empty utterance in it), extracts a text table with ``mtaffect extract``, trains a model with
``mtaffect train`` and runs a one-seed study with ``mtaffect run``, once per session; each test
reads what its command printed and wrote, and the commands that need a model (``evaluate``,
``predict``, ``demo``, ``weak-label``) use that one. The in-process tests elsewhere check the
values; these check that the commands, as installed, start, run and say what the docs promise.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest
from datasets import load_from_disk

from mtaffect.data.schema import get_corpus_info

COMMANDS = ("run", "report", "data", "train", "evaluate", "predict", "demo", "weak-label", "extract")


def test_every_command_is_covered_here():
    from mtaffect.cli.main import COMMANDS as REGISTERED

    assert set(REGISTERED) == set(COMMANDS)


def test_data_convert_keeps_an_empty_utterance_as_missing_text(cli):
    done = cli.results["convert"]
    assert done.code == 0, done
    # The empty utterance is a warning naming the file, the line and the id, not the end of the conversion.
    assert re.search(r"MELD\.Raw/train_sent_emo\.csv line 7 \(id dia1_utt1\): empty transcript", done.err), done
    # It prints what `mtaffect data describe` prints: the empty transcript is counted.
    assert "corpus: meld" in done.out and "[train] 24 examples" in done.out
    assert "empty_transcripts={\"train\": 1}" in done.out and "1 empty" in done.out
    corpus = load_from_disk(str(cli.root / "corpora" / "meld"))
    assert {split: corpus[split].num_rows for split in corpus} == {"train": 24, "validation": 8, "test": 8}
    row = corpus["train"][5]
    assert row["id"] == "dia1_utt1" and row["text"] == "" and row["text_features"] == []
    assert get_corpus_info(corpus).feature_set == "text:all-MiniLM-L6-v2:pooled"


def test_extract_writes_a_unified_corpus(cli):
    done = cli.results["extract"]
    assert done.code == 0, done
    assert "train: 9/9 extracted, 0 failed" in done.out and "test: 3/3 extracted, 0 failed" in done.out
    corpus = load_from_disk(str(cli.root / "corpora" / "utterances"))
    assert get_corpus_info(corpus).feature_set == "text:all-MiniLM-L6-v2:pooled"
    assert corpus["train"].num_rows == 9


def test_train_saves_a_model_and_its_metrics(cli):
    done = cli.results["train"]
    assert done.code == 0, done
    model = cli.root / "runs" / "mt-model"
    assert "mtaffect train: tasks ['emotion', 'sentiment'] on meld (24)" in done.out
    assert f"model and metrics saved to {model.relative_to(cli.root)}" in done.out
    assert {"config.json", "model.safetensors", "test_results.json", "README.md"} <= {p.name for p in model.iterdir()}
    # Nothing left beside it: the scratch folder the Trainer wrote into was moved into place.
    assert sorted(p.name for p in model.parent.iterdir()) == ["mt-model"]


def test_evaluate_prints_headline_metrics_then_the_rest(cli):
    done = cli.results["evaluate"]
    assert done.code == 0, done
    headline, rest = done.out.split("every other metric:")
    assert "emotion_weighted_f1" in headline and "emotion_accuracy" in headline and "sentiment_weighted_f1" in headline
    # One-vs-rest means are not headlines, and say what they are.
    assert "mean_class" not in headline and "emotion_mean_class_acc" in rest and "one-vs-rest acc (mean over" in rest
    scores = json.loads((cli.root / "scores.json").read_text())
    assert scores["split"] == "test" and 0 <= scores["corpora"]["meld"]["emotion_weighted_f1"] <= 1
    assert f"{scores['corpora']['meld']['emotion_weighted_f1']:.4f}" in headline


def test_predict(cli):
    from test_cli_predict import NOT_FOR_PREDICT

    done = cli.results["predict"]
    assert done.code == 0, done
    prediction = json.loads(done.out)
    assert set(prediction) == {"emotion", "sentiment"} and prediction["emotion"]["label"] in (
        "anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
    # It starts in the time of torch and the model: no other command, no training stack (-X importtime).
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.err.splitlines() if line.startswith("import time:")}
    assert {"mtaffect.pipeline", "mtaffect.checkpoints", "torch"} <= imported
    other = ("mtaffect.study", "mtaffect.report", "mtaffect.cli.run", "mtaffect.cli.data", *NOT_FOR_PREDICT)
    assert sorted(imported & set(other)) == []


def test_weak_label_labels_a_corpus_with_the_trained_teacher(cli):
    # A model `mtaffect train` saved records what it can teach, so it is a --teacher as it is.
    done = cli.results["weak-label"]
    assert done.code == 0, done
    assert "[train] 9 rows: 0 gold emotion, 9 weak emotion" in done.out
    labelled = load_from_disk(str(cli.root / "corpora" / "utterances+emotion"))
    assert [sum(mask) for mask in labelled["train"]["emotion_weak_mask"]] == [7] * 9  # MELD's 7 emotions


def test_run_and_report(cli):
    done = cli.results["run"]
    assert done.code == 0, done
    table = _summary_table(done.out)
    assert any(line.startswith("synthetic_iemocap emotion   weighted F1") for line in table)
    assert any(line.startswith("synthetic_mustard sarcasm   weighted F1") for line in table)
    assert "per-class" not in done.out and "one-vs-rest" not in done.out
    report = cli.results["report"]
    assert report.code == 0, report
    assert "mtaffect report: " in report.out and (cli.root / "merged" / "report.md").is_file()
    # The same headline table as the run's own summary (one place decides both).
    assert _summary_table(report.out) == table


def _summary_table(printed: str) -> list[str]:
    """The headline table of a study summary: from its ``corpus`` header to the ``Means over`` line."""
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("corpus "))
    end = next(i for i, line in enumerate(lines) if line.startswith("Means over"))
    return lines[start:end]


def test_demo_serves_the_model(cli):
    """`mtaffect demo --model MODEL` starts, serves the app, and answers what `mtaffect predict` answers."""
    pytest.importorskip("gradio")
    gradio_client = pytest.importorskip("gradio_client")
    from hub_server import free_port

    port = free_port()
    process = cli.start("demo", "--model", "runs/mt-model", "--port", str(port))
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 300
        while True:
            assert process.poll() is None, cli.finish(process)
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.time() < deadline, "mtaffect demo did not serve within 300 s"
            time.sleep(0.5)
        client = gradio_client.Client(url, verbose=False)
        *_, served = client.predict("Oh great, another meeting.", None, None, 0.5, api_name="/predict")
    finally:
        process.terminate()
        try:
            process.communicate(timeout=30)
        except Exception:  # noqa: BLE001 - a demo that ignores SIGTERM is killed
            process.kill()
            process.communicate()
    expected = json.loads(cli.results["predict"].out)
    assert set(served) == set(expected) == {"emotion", "sentiment"}
    assert served["emotion"]["label"] == expected["emotion"]["label"]
    assert served["emotion"]["scores"] == pytest.approx(expected["emotion"]["scores"], abs=1e-5)
    assert served["sentiment"]["label"] == expected["sentiment"]["label"]
