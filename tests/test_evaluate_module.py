"""The ``evaluate`` metric module: loads offline by path and gives mtaffect.metrics' numbers."""

from __future__ import annotations

import ast
import doctest
import fnmatch
import math
from pathlib import Path

import numpy as np
import pytest

from mtaffect import metrics as mt
from mtaffect.tasks import EMOTION_LABELS

evaluate = pytest.importorskip("evaluate")

MODULE_DIR = Path(mt.evaluate_module_path()).parent
SCRIPT = MODULE_DIR / "mtaffect_metrics.py"


@pytest.fixture(scope="module")
def load():
    cache: dict[str, object] = {}

    def _load(config: str):
        if config not in cache:
            cache[config] = evaluate.load(str(SCRIPT), config)
        return cache[config]

    return _load


def _same(first: dict[str, float], second: dict[str, float]) -> None:
    assert list(first) == list(second)
    for key in first:
        both_nan = math.isnan(first[key]) and math.isnan(second[key])
        assert both_nan or first[key] == second[key], (key, first[key], second[key])


def test_script_is_standalone_with_one_import_per_line():
    """The Space has no mtaffect: the script imports only libraries, one module per line.

    evaluate's import scanner reads ``import a, b`` as one module named ``a,``.
    """
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert len(node.names) == 1, f"line {node.lineno}: one import per line"
            imported.append(node.names[0].name)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"line {node.lineno}: no relative imports"
            imported.append(node.module)
    roots = {name.split(".")[0] for name in imported}
    assert "mtaffect" not in roots
    assert roots <= {"__future__", "math", "datasets", "evaluate", "numpy", "sklearn"}
    requirements = (MODULE_DIR / "requirements.txt").read_text(encoding="utf-8")
    for package in ("evaluate", "datasets", "numpy", "scikit-learn"):
        assert package in requirements


def test_module_folder_ships_as_package_data():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    pyproject = tomllib.loads(
        (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    )
    patterns = pyproject["tool"]["setuptools"]["package-data"]["mtaffect"]
    files = [
        path.relative_to(MODULE_DIR.parent).as_posix() for path in MODULE_DIR.rglob("*") if path.is_file()
    ]
    files = [f for f in files if "__pycache__" not in f]
    assert {"metrics_module/mtaffect_metrics.py", "metrics_module/README.md", "metrics_module/app.py"} <= set(
        files
    )
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), f"{name} is not package data"


def test_card_has_yaml_header_for_a_space():
    from huggingface_hub import metadata_load

    meta = metadata_load(MODULE_DIR / "README.md")
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert {"evaluate", "metric"} <= set(meta["tags"])
    compile(
        (MODULE_DIR / "app.py").read_text(encoding="utf-8"), "app.py", "exec"
    )  # gradio not needed to parse


def test_readme_examples_run(monkeypatch):
    """The card's examples load the script by its relative path and print the numbers shown."""
    monkeypatch.chdir(MODULE_DIR)
    result = doctest.testfile(
        str(MODULE_DIR / "README.md"), module_relative=False, optionflags=doctest.ELLIPSIS
    )
    assert result.attempted >= 10 and result.failed == 0


def test_configs_and_errors(load):
    assert load("default").config_name == "sentiment"
    with pytest.raises(KeyError, match="sentiment_class"):
        evaluate.load(str(SCRIPT), "valence")
    with pytest.raises(ValueError, match="logits"):
        load("sarcasm").compute(predictions=[2.0, -1.0], references=[1, 0])
    with pytest.raises(ValueError, match="0 or 1"):
        load("sarcasm").compute(predictions=[0.2, 0.7], references=[0.5, 1.0])


def test_hand_values_through_evaluate(load):
    # Same arrays and hand arithmetic as tests/test_metrics.py.
    result = load("sentiment").compute(
        predictions=[1.4, -0.6, 0.2, -2.4, 0.0, 2.5], references=[2.0, -1.0, 0.0, -3.0, -0.4, 1.6]
    )
    assert result["Has0_F1_score"] == pytest.approx(29 / 35)
    assert result["Mult_acc_7"] == pytest.approx(4 / 6) and result["Mult_acc_5"] == pytest.approx(5 / 6)
    result = load("sentiment").compute(predictions=[0.1, -0.2, 0.3], references=[0.0, 0.0, 0.0])
    assert math.isnan(result["Non0_acc_2"]) and result["Corr"] == 0.0
    result = load("sarcasm").compute(
        predictions=[0.9, 0.4, 0.6, 0.7, 0.5, 0.8], references=[1, 1, 0, 0, 0, 0]
    )
    assert result["weighted_precision"] == pytest.approx(5 / 12) and result["weighted_f1"] == pytest.approx(
        1 / 3
    )


def test_identical_numbers_to_mtaffect_metrics(load):
    rng = np.random.default_rng(7)
    n = 40

    truth = np.round(rng.uniform(-3, 3, n) * 3) / 3  # MOSEI-like averages, some exactly 0
    truth[:3] = 0.0
    pred = rng.normal(0, 1.5, n)
    _same(
        load("sentiment").compute(predictions=pred, references=truth),
        mt.sentiment_regression_metrics(pred, truth),
    )

    classes = rng.integers(0, 3, n)
    scores = rng.uniform(-1.6, 1.6, n)
    _same(
        load("sentiment_class").compute(predictions=scores, references=classes),
        mt.sentiment_class_metrics(scores, classes, prediction_type="score"),
    )
    predicted_classes = rng.integers(0, 3, n)
    _same(
        load("sentiment_class").compute(
            predictions=predicted_classes, references=classes, prediction_type="class"
        ),
        mt.sentiment_class_metrics(predicted_classes, classes),
    )
    logits3 = rng.normal(size=(n, 3))
    _same(
        load("sentiment_class").compute(predictions=logits3.tolist(), references=classes),
        mt.sentiment_class_metrics(logits3, classes),
    )

    width = len(EMOTION_LABELS)  # the union: 9 names
    probs = rng.uniform(size=(n, width))
    present = (rng.uniform(size=(n, width)) < 0.3).astype(float)
    mosei_mask = [name not in ("neutral", "peaceful", "powerful") for name in EMOTION_LABELS]
    for threshold in (0.5, 0.3):
        _same(
            load("emotion_multilabel").compute(
                predictions=probs, references=present, label_mask=mosei_mask, threshold=threshold
            ),
            mt.emotion_multilabel_metrics(probs, present, mosei_mask, EMOTION_LABELS, threshold),
        )

    logits = rng.normal(size=(n, width))
    iemocap_mask = [name in ("anger", "happiness", "sadness", "neutral") for name in EMOTION_LABELS]
    gold = rng.choice(np.flatnonzero(iemocap_mask), size=n)
    expected = mt.emotion_multiclass_metrics(logits, np.eye(width)[gold], iemocap_mask)
    _same(
        load("emotion_multiclass").compute(
            predictions=logits, references=np.eye(width)[gold], label_mask=iemocap_mask
        ),
        expected,
    )
    _same(
        load("emotion_multiclass").compute(predictions=logits, references=gold, label_mask=iemocap_mask),
        expected,
    )

    sarcasm_probs = rng.uniform(size=n)
    sarcastic = rng.integers(0, 2, n)
    _same(
        load("sarcasm").compute(predictions=sarcasm_probs, references=sarcastic),
        mt.sarcasm_metrics(sarcasm_probs, sarcastic),
    )
