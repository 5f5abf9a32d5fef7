"""Malformed corpus files: each must fail with a CorpusFormatError naming the file and the problem.

No traceback from deep inside numpy/h5py/pyarrow (errors are raised ``from None``) and no
partial output in the conversion cache.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from test_loaders import frames, write_csd, write_meld, write_mmsa, write_mult, write_mustard, write_sdk_mosei

from mtaffect.data.corpora import CorpusFormatError, UnsafePickleError, load_corpus


@dataclass
class Case:
    corpus: str
    path: Path
    file: Path  # the file the message must name
    match: str  # regex the problem must match
    options: dict[str, Any] = field(default_factory=dict)
    error: type[Exception] = CorpusFormatError


def _dump(path: Path, data: Any) -> None:
    with open(path, "wb") as f:
        pickle.dump(data, f)


def _mmsa(tmp: Path, change: Callable[[dict], None], corpus: str = "mosei", **kw) -> Path:
    path, data = write_mmsa(tmp, corpus=corpus, **kw)
    change(data)
    _dump(path, data)
    return path


def _mult(tmp: Path, change: Callable[[dict], None], corpus: str = "mosei", **kw) -> Path:
    path, data = write_mult(tmp, corpus=corpus, **kw)
    change(data)
    _dump(path, data)
    return path


def _sdk(tmp: Path, change: Callable[[Path], Path]) -> tuple[Path, Path]:
    folder = tmp / "sdk"
    write_sdk_mosei(folder)
    return folder, change(folder)


def _meld(tmp: Path, change: Callable[[Path], Path]) -> tuple[Path, Path]:
    write_meld(tmp)
    return tmp, change(tmp)


def _rewrite_csv(path: Path, edit: Callable[[str], str]) -> Path:
    path.write_bytes(edit(path.read_bytes().decode("cp1252")).encode("cp1252"))
    return path


def _mustard_features(tmp: Path, arrays: Callable[[str, int], Any], name: str = "text.npz") -> Path:
    data = write_mustard(tmp)
    path = tmp / name
    values = {k: arrays(k, i) for i, k in enumerate(data)}
    if name.endswith(".npz"):
        np.savez(path, **values)
    else:
        _dump(path, values)
    return path


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def _set(d: dict, split: str, key: str, value: Any) -> None:
    d[split][key] = value


CASES: dict[str, Callable[[Path], Case]] = {
    # ---- MMSA pickles
    "mmsa-truncated-pickle": lambda t: (
        lambda p: (p.write_bytes(p.read_bytes()[:200]), Case("mosei", p, p, "truncated"))[1]
    )(write_mmsa(t)[0]),
    "mmsa-empty-file": lambda t: (lambda p: (p.write_bytes(b""), Case("mosei", p, p, "ends early"))[1])(write_mmsa(t)[0]),
    "mmsa-not-a-pickle": lambda t: (
        lambda p: (p.write_text("id,text\n1,hello\n"), Case("mosei", p, p, "not a readable pickle"))[1]
    )(write_mmsa(t)[0]),
    "mmsa-top-level-list": lambda t: (lambda p: (_dump(p, [1, 2]), Case("mosei", p, p, "found a list"))[1])(write_mmsa(t)[0]),
    "mmsa-missing-split": lambda t: (lambda p: Case("mosei", p, p, "missing split 'test'"))(
        _mmsa(t, lambda d: d.pop("test"))
    ),
    "mmsa-split-not-dict": lambda t: (lambda p: Case("mosei", p, p, "split 'valid' should be a dict"))(
        _mmsa(t, lambda d: d.__setitem__("valid", [1, 2]))
    ),
    "mmsa-missing-labels-key": lambda t: (lambda p: Case("mosei", p, p, "split 'train' has no 'regression_labels'"))(
        _mmsa(t, lambda d: d["train"].pop("regression_labels"))
    ),
    "mmsa-missing-id-key": lambda t: (lambda p: Case("mosei", p, p, "split 'validation' has no 'id'"))(
        _mmsa(t, lambda d: d["valid"].pop("id"))
    ),
    "mmsa-wrong-rank": lambda t: (lambda p: Case("mosei", p, p, "'audio' should have rank 3, found shape \\(6, 3\\)"))(
        _mmsa(t, lambda d: _set(d, "train", "audio", np.zeros((6, 3), np.float32)))
    ),
    "mmsa-modalities-disagree-on-rows": lambda t: (lambda p: Case("mosei", p, p, "'vision' has 5 rows but the split has 6"))(
        _mmsa(t, lambda d: _set(d, "train", "vision", d["train"]["vision"][:5]))
    ),
    "mmsa-label-out-of-range": lambda t: (lambda p: Case("mosei", p, p, r"in \[-3, 3\]; rows \[2\] hold \[4.5\]"))(
        _mmsa(t, lambda d: d["test"]["regression_labels"].__setitem__(2, 4.5))
    ),
    "mmsa-sims-label-out-of-range": lambda t: (lambda p: Case("sims", p, p, r"in \[-1, 1\]"))(
        _mmsa(t, lambda d: d["train"]["regression_labels"].__setitem__(0, 2.0), corpus="sims")
    ),
    "mmsa-nan-label": lambda t: (lambda p: Case("mosei", p, p, "must be finite"))(
        _mmsa(t, lambda d: d["valid"]["regression_labels"].__setitem__(1, np.nan))
    ),
    "mmsa-length-beyond-padding": lambda t: (lambda p: Case("mosei", p, p, r"'audio_lengths' must lie in \[0, 10\]"))(
        _mmsa(t, lambda d: d["train"]["audio_lengths"].__setitem__(0, 11))
    ),
    "mmsa-negative-length": lambda t: (lambda p: Case("mosei", p, p, "'vision_lengths' must lie in"))(
        _mmsa(t, lambda d: d["train"]["vision_lengths"].__setitem__(3, -1))
    ),
    "mmsa-empty-sequence": lambda t: (lambda p: Case("mosei", p, p, "'audio' has no frames"))(
        _mmsa(t, lambda d: _set(d, "test", "audio", np.zeros((3, 0, 3), np.float32)))
    ),
    "mmsa-bad-text-bert": lambda t: (lambda p: Case("mosei", p, p, "'text_bert' should be \\(N, 3, 6\\)"))(
        _mmsa(t, lambda d: _set(d, "train", "text_bert", np.zeros((6, 2, 6))))
    ),
    "mmsa-string-features": lambda t: (lambda p: Case("mosei", p, p, "'vision' should be numeric"))(
        _mmsa(t, lambda d: _set(d, "valid", "vision", np.full((2, 8, 4), "x")))
    ),
    "mmsa-dims-differ-between-splits": lambda t: (lambda p: Case("mosei", p, p, "split 'test' has feature dims"))(
        _mmsa(t, lambda d: _set(d, "test", "audio", np.ones((3, 10, 7), np.float32)))
    ),
    "mmsa-code-running-pickle": lambda t: (lambda p: Case("mosei", p, p, "references posix.system", error=UnsafePickleError))(
        _mmsa(t, lambda d: _set(d, "train", "id", _RunsCode()))
    ),
    "mmsa-aligned-option-contradicts-file": lambda t: (lambda p: Case("mosei", p, p, "file is unaligned", {"aligned": True}))(
        write_mmsa(t)[0]
    ),
    # ---- MulT pickles
    "mult-iemocap-sentiment-labels": lambda t: (lambda p: Case("iemocap", p, p, r"should be \(N, 4, 2\)"))(
        _mult(t, lambda d: [_set(d, s, "labels", np.zeros((len(d[s]["text"]), 1, 1))) for s in d], corpus="iemocap")
    ),
    "mult-mosei-emotion-labels": lambda t: (lambda p: Case("mosei", p, p, r"should be \(N, 1, 1\) sentiment"))(
        _mult(t, lambda d: [_set(d, s, "labels", np.zeros((len(d[s]["text"]), 4, 2))) for s in d])
    ),
    "mult-iemocap-not-one-hot": lambda t: (lambda p: Case("iemocap", p, p, "must hold only 0/1"))(
        _mult(t, lambda d: d["train"]["labels"].__setitem__((0, 0, 1), 2.0), corpus="iemocap")
    ),
    "mult-iemocap-absent-and-present": lambda t: (lambda p: Case("iemocap", p, p, "both absent and present"))(
        _mult(t, lambda d: d["test"]["labels"].__setitem__((1, 2), (1, 1)), corpus="iemocap")
    ),
    "mult-ids-count-mismatch": lambda t: (lambda p: Case("mosei", p, p, "'id' has 4 rows but the split has 5"))(
        _mult(t, lambda d: _set(d, "train", "id", d["train"]["id"][:4]))
    ),
    "mult-missing-vision": lambda t: (lambda p: Case("mosei", p, p, "has no 'vision' key"))(
        _mult(t, lambda d: d["valid"].pop("vision"))
    ),
    # ---- CMU-MultimodalSDK .csd (HDF5)
    "csd-missing-features": lambda t: (lambda fp: Case("mosei", fp[0], fp[1], "video 'vidB' of the audio sequence has no 'features'"))(
        _sdk(t, lambda f: (_h5_delete(f / "CMU_MOSEI_COVAREP.csd", "COVAREP/data/vidB/features"), f / "CMU_MOSEI_COVAREP.csd")[1])
    ),
    "csd-not-hdf5": lambda t: (lambda fp: Case("mosei", fp[0], fp[1], "not a readable HDF5 computational sequence"))(
        _sdk(t, lambda f: ((f / "CMU_MOSEI_VisualFacet42.csd").write_bytes(b"garbage" * 10), f / "CMU_MOSEI_VisualFacet42.csd")[1])
    ),
    "csd-no-data-group": lambda t: (lambda fp: Case("mosei", fp[0], fp[1], "no '<root>/data' group"))(
        _sdk(t, lambda f: (_h5_delete(f / "CMU_MOSEI_Labels.csd", "All Labels/data"), f / "CMU_MOSEI_Labels.csd")[1])
    ),
    "csd-intervals-wrong-shape": lambda t: (lambda fp: Case("mosei", fp[0], fp[1], r"'intervals' should be \[T, 2\]"))(
        _sdk(t, lambda f: _csd_video(f / "CMU_MOSEI_TimestampedWordVectors.csd", "glove_vectors", "vidA", np.ones((4, 3)), np.ones((4, 3))))
    ),
    "csd-features-intervals-mismatch": lambda t: (lambda fp: Case("mosei", fp[0], fp[1], "'features' has 5 rows but 'intervals' has 4"))(
        _sdk(t, lambda f: _csd_video(f / "CMU_MOSEI_TimestampedWordVectors.csd", "glove_vectors", "vidA", np.ones((5, 3)), frames(4, 0.5, 3, 0)[1]))
    ),
    "csd-label-width": lambda t: (lambda fp: Case("mosei", fp[0], fp[1], "label rows should have 1 .* or 7"))(
        _sdk(t, lambda f: write_csd(f / "CMU_MOSEI_Labels.csd", "All Labels", {"vidA": (np.zeros((2, 3), np.float32), np.array([[0, 1], [1, 2.0]]))}))
    ),
    "csd-emotion-out-of-range": lambda t: (lambda fp: Case("mosei", fp[0], fp[1], r"emotion intensities must be finite and in \[0, 3\]"))(
        _sdk(t, lambda f: _csd_video(f / "CMU_MOSEI_Labels.csd", "All Labels", "vidA", np.full((2, 7), 0.5).astype(np.float32) + np.eye(2, 7, k=1) * 5, np.array([[0, 1], [1, 2.0]])))
    ),
    "csd-folds-bad-json": lambda t: (lambda fp: Case("mosei", fp[0], fp[1], "not valid JSON", {"folds": "folds.json"}))(
        _sdk(t, lambda f: ((f / "folds.json").write_text("{'train': [}"), f / "folds.json")[1])
    ),
    "csd-folds-missing-test": lambda t: (lambda fp: Case("mosei", fp[0], fp[1], r"folds lack \['test'\]", {"folds": "folds.json"}))(
        _sdk(t, lambda f: ((f / "folds.json").write_text(json.dumps({"train": ["vidA"], "valid": ["vidB"]})), f / "folds.json")[1])
    ),
    "csd-no-labels": lambda t: (lambda fp: Case("mosei", fp[0], fp[1], "no label sequence"))(
        _sdk(t, lambda f: ((f / "CMU_MOSEI_Labels.csd").unlink(), f)[1])
    ),
    # ---- MUStARD
    "mustard-bad-json": lambda t: (lambda p: Case("mustard", t, p, "not valid JSON"))(
        (write_mustard(t), (t / "sarcasm_data.json").write_text('{"1_60": {"utterance": '), t / "sarcasm_data.json")[2]
    ),
    "mustard-record-missing-key": lambda t: (lambda p: Case("mustard", t, p, r"record '0_100' lacks \['sarcasm'\]"))(
        _edit_json(t, lambda d: d["0_100"].pop("sarcasm"))
    ),
    "mustard-json-is-a-list": lambda t: (lambda p: Case("mustard", t, p, "should be a non-empty JSON object"))(
        (write_mustard(t), (t / "sarcasm_data.json").write_text("[1, 2]"), t / "sarcasm_data.json")[2]
    ),
    "mustard-split-index-out-of-range": lambda t: (lambda p: Case("mustard", t, p, r"fold 0: test indices must lie in \[0, 20\)", {"features": {"text": "t.npz"}}))(
        _split_indices(t, [(np.arange(10), np.array([10, 25]))])
    ),
    "mustard-split-indices-truncated": lambda t: (lambda p: Case("mustard", t, p, "truncated", {"features": {"text": "t.npz"}}))(
        (write_mustard(t), (t / "split_indices.p").write_bytes((t / "split_indices.p").read_bytes()[:40]), t / "split_indices.p")[2]
    ),
    "mustard-split-indices-missing": lambda t: (lambda p: Case("mustard", t, p, "needs split_indices.p"))(
        (write_mustard(t), (t / "split_indices.p").unlink(), t)[2]
    ),
    "mustard-features-dims-differ": lambda t: (lambda p: Case("mustard", t, p, "have dim 3 but earlier ids have 2", {"features": {"text": "text.npz"}}))(
        _mustard_features(t, lambda k, i: np.ones((2, 2 if i < 5 else 3), np.float32))
    ),
    "mustard-features-wrong-rank": lambda t: (lambda p: Case("mustard", t, p, r"should be \[T, D\] \(or \[D\]\), found shape \(1, 2, 2\)", {"features": {"text": "text.pkl"}}))(
        _mustard_features(t, lambda k, i: np.ones((1, 2, 2), np.float32), name="text.pkl")
    ),
    "mustard-features-empty-sequence": lambda t: (lambda p: Case("mustard", t, p, r"are empty \(shape \(0, 4\)\)", {"features": {"text": "text.npz"}}))(
        _mustard_features(t, lambda k, i: np.ones((0 if i == 7 else 2, 4), np.float32))
    ),
    "mustard-features-object-npz": lambda t: (lambda p: Case("mustard", t, p, "not a readable .npz|cannot be read", {"features": {"text": "text.npz"}}))(
        _mustard_features(t, lambda k, i: np.array([{"a": 1}], dtype=object))
    ),
    "mustard-features-unsupported-type": lambda t: (lambda p: Case("mustard", t, p, "unsupported feature file type '.npy'", {"features": {"text": "text.npy"}}))(
        (write_mustard(t), np.save(t / "text.npy", np.zeros(3)), t / "text.npy")[2]
    ),
    "mustard-duplicated-key": lambda t: (lambda p: Case("mustard", t, p, r"the key '3_103' appears twice \(second time on line \d+\)", {"features": {"text": "t.npz"}}))(
        _duplicate_mustard_key(t, "3_103")
    ),
    "mustard-duplicated-key-speaker-independent": lambda t: (lambda p: Case("mustard", t, p, "the key '3_103' appears twice", {"protocol": "speaker_independent", "features": {"text": "t.npz"}}))(
        _duplicate_mustard_key(t, "3_103")
    ),
    "mustard-json-utf16-without-bom": lambda t: (lambda p: Case("mustard", t, p, "looks like UTF-16 text without a byte-order mark", {"features": {"text": "t.npz"}}))(
        (write_mustard(t), (t / "sarcasm_data.json").write_bytes((t / "sarcasm_data.json").read_text().encode("utf-16-le")), t / "sarcasm_data.json")[2]
    ),
    "mustard-h5-group-without-features": lambda t: (lambda p: Case("mustard", t, p, r"group '2_102' has no 'features' dataset \(it holds \['feats'\]\)", {"features": {"text": "v.h5"}}))(
        _mustard_h5_groups(t, broken="2_102")
    ),
    "pickle-declares-a-2-eib-string": lambda t: (lambda p: Case("mosei", p, p, "corrupt: it declares an object far larger than the file itself"))(
        (lambda path: (path.write_bytes(b"\x80\x04\x8d" + (2**61).to_bytes(8, "little") + b"abc"), path)[1])(write_mmsa(t)[0])
    ),
    # ---- MELD
    "meld-csv-utf16-without-bom": lambda t: (lambda fp: Case("meld", fp[0], fp[1], "looks like UTF-16 text without a byte-order mark", {"features": {"text": "x.npz"}}))(
        _meld(t, lambda f: ((f / "dev_sent_emo.csv").write_bytes((f / "dev_sent_emo.csv").read_bytes().decode("cp1252").encode("utf-16-le")), f / "dev_sent_emo.csv")[1])
    ),
    "meld-csv-without-emotion-column": lambda t: (lambda fp: Case("meld", fp[0], fp[1], r"lacks the column\(s\) \['Emotion'\]", {"features": {"text": "x.npz"}}))(
        _meld(t, lambda f: _rewrite_csv(f / "dev_sent_emo.csv", lambda s: s.replace("Emotion,", "Feeling,", 1)))
    ),
    "meld-unknown-emotion": lambda t: (lambda fp: Case("meld", fp[0], fp[1], "line 3: unknown emotion 'bored'", {"features": {"text": "x.npz"}}))(
        _meld(t, lambda f: _rewrite_csv(f / "train_sent_emo.csv", lambda s: s.replace(",joy,", ",bored,")))
    ),
    "meld-unknown-sentiment": lambda t: (lambda fp: Case("meld", fp[0], fp[1], "unknown sentiment 'meh'", {"features": {"text": "x.npz"}}))(
        _meld(t, lambda f: _rewrite_csv(f / "test_sent_emo.csv", lambda s: s.replace(",negative,", ",meh,")))
    ),
    "meld-non-integer-ids": lambda t: (lambda fp: Case("meld", fp[0], fp[1], "Dialogue_ID / Utterance_ID must be integers", {"features": {"text": "x.npz"}}))(
        _meld(t, lambda f: _rewrite_csv(f / "train_sent_emo.csv", lambda s: s.replace(",Joey,neutral,neutral,1,1,", ",Joey,neutral,neutral,one,1,")))
    ),
    "meld-missing-dev-csv": lambda t: (lambda fp: Case("meld", fp[0], fp[1], "missing dev_sent_emo.csv", {"features": {"text": "x.npz"}}))(
        _meld(t, lambda f: ((f / "dev_sent_emo.csv").unlink(), f)[1])
    ),
    "meld-row-with-extra-fields": lambda t: (lambda fp: Case("meld", fp[0], fp[1], "line 2 has more fields than the header", {"features": {"text": "x.npz"}}))(
        _meld(t, lambda f: _rewrite_csv(f / "test_sent_emo.csv", lambda s: s.replace("21,731\"\n", "21,731\",extra\n")))
    ),
    "meld-header-only": lambda t: (lambda fp: Case("meld", fp[0], fp[1], "has a header but no utterances", {"features": {"text": "x.npz"}}))(
        _meld(t, lambda f: _rewrite_csv(f / "test_sent_emo.csv", lambda s: s.splitlines(keepends=True)[0]))
    ),
}


def _h5_delete(path: Path, key: str) -> None:
    with h5py.File(path, "a") as f:
        del f[key]


def _csd_video(path: Path, root: str, video: str, features: np.ndarray, intervals: np.ndarray) -> Path:
    with h5py.File(path, "a") as f:
        group = f[f"{root}/data/{video}"]
        del group["features"], group["intervals"]
        group.create_dataset("features", data=features)
        group.create_dataset("intervals", data=intervals)
    return path


def _edit_json(folder: Path, change: Callable[[dict], None]) -> Path:
    data = write_mustard(folder)
    change(data)
    (folder / "sarcasm_data.json").write_text(json.dumps(data))
    return folder / "sarcasm_data.json"


def _duplicate_mustard_key(folder: Path, key: str) -> Path:
    """sarcasm_data.json with ``key`` twice (json.loads would silently keep the second)."""
    data = write_mustard(folder)
    text = json.dumps(data, indent=2)
    duplicate = json.dumps({key: data[key]}, indent=2)[1:-1].strip()
    (folder / "sarcasm_data.json").write_text(text[:-2] + ",\n  " + duplicate + "\n}")
    return folder / "sarcasm_data.json"


def _mustard_h5_groups(folder: Path, broken: str) -> Path:
    """Per-id groups holding a 'features' dataset (one group names it differently)."""
    data = write_mustard(folder)
    with h5py.File(folder / "v.h5", "w") as f:
        for key in data:
            f.create_group(key).create_dataset("feats" if key == broken else "features", data=np.ones((2, 3), np.float32))
    return folder / "v.h5"


def _split_indices(folder: Path, folds: list) -> Path:
    write_mustard(folder)
    with open(folder / "split_indices.p", "wb") as f:
        pickle.dump(folds, f, protocol=2)
    return folder / "split_indices.p"


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_input_gives_a_clear_error(name, tmp_path, monkeypatch):
    source = tmp_path / "source"
    source.mkdir()
    monkeypatch.chdir(tmp_path)  # a pickle that ran code would leave a file here
    case = CASES[name](source)
    cache = tmp_path / "cache"
    with pytest.raises(case.error) as caught:
        load_corpus(case.corpus, case.path, cache_dir=cache, **case.options)
    error = caught.value
    message = str(error)
    assert message.startswith(f"{case.file}: "), message  # names the file first
    assert error.path == case.file
    import re

    assert re.search(case.match, message), message
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__), "deep traceback leaked"
    assert not cache.exists() or not any(cache.iterdir()), "partial output left behind"
    assert not (tmp_path / "pwned-by-pickle").exists()


# ---- configs and raw tables, through the command line: one line naming the file, the key or line, the fix

STUDY_BASE = "synthetic: {size_scale: 0.05}\n"
TRAIN_BASE = "corpora: {m: synthetic_mosei}\nsynthetic: {size_scale: 0.05}\n"


def _file(tmp: Path, name: str, text: str | bytes) -> Path:
    path = tmp / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


CLI_CASES: dict[str, Callable[[Path], tuple[list[str], Path, str]]] = {
    "study-weak-loss-weights-scalar": lambda t: (lambda p: (["run", "--config", str(p)], p, r"weak_loss_weights = 0\.5 \(float\): expected a list; write a list, e\.g\. weak_loss_weights: \[0\.5\]"))(
        _file(t, "study.yaml", STUDY_BASE + "weak_loss_weights: 0.5\n")
    ),
    "study-seeds-as-a-string": lambda t: (lambda p: (["run", "--config", str(p)], p, r"seeds = '0 1' \(str\): expected a list; write a list, e\.g\. seeds: \[0, 1\]"))(
        _file(t, "study.yaml", STUDY_BASE + 'seeds: "0 1"\n')
    ),
    "study-training-misspelt-key": lambda t: (lambda p: (["run", "--config", str(p)], p, r"unknown key training\.lerning_rate \(did you mean 'learning_rate'\?\)"))(
        _file(t, "study.yaml", STUDY_BASE + "training: {lerning_rate: 0.01}\n")
    ),
    "study-training-key-the-study-sets": lambda t: (lambda p: (["run", "--config", str(p)], p, r"training\.seed is set by the study itself"))(
        _file(t, "study.json", json.dumps({"training": {"seed": 3}}))
    ),
    "study-model-out-of-range": lambda t: (lambda p: (["run", "--config", str(p)], p, r"model: hidden_size must be a positive int, got 0"))(
        _file(t, "study.yaml", STUDY_BASE + "model: {hidden_size: 0}\n")
    ),
    "study-threshold-out-of-range": lambda t: (lambda p: (["run", "--config", str(p)], p, r"weak threshold 1\.5 is not in \[0, 1\]"))(
        _file(t, "study.yaml", STUDY_BASE + "weak_thresholds: [1.5]\n")
    ),
    "train-yaml-wrong-type": lambda t: (lambda p: (["train", "--config", str(p), "--output-dir", str(t / "o")], p, r"training\.num_train_epochs = 'five' \(str\): expected a number"))(
        _file(t, "train.yaml", TRAIN_BASE + "training: {num_train_epochs: five}\n")
    ),
    "train-yaml-bad-choice": lambda t: (lambda p: (["train", "--config", str(p), "--output-dir", str(t / "o")], p, r"training\.corpus_sampling = 'random' \(str\): expected one of 'proportional'"))(
        _file(t, "train.yaml", TRAIN_BASE + "training: {corpus_sampling: random}\n")
    ),
    "train-yaml-tasks-not-a-list": lambda t: (lambda p: (["train", "--config", str(p), "--output-dir", str(t / "o")], p, r"tasks = 'emotion': expected a list"))(
        _file(t, "train.yaml", TRAIN_BASE + "tasks: emotion\n")
    ),
    "text-table-unknown-emotion": lambda t: (lambda p: (["extract", "text", str(p), "-o", str(t / "o"), "--emotion-column", "emotion"], p, r"line 3, column 'emotion': Unknown emotion label 'bored'"))(
        _file(t, "table.csv", "text,emotion\nhello,joy\nmeh,bored\n")
    ),
    "text-table-utf16-without-bom": lambda t: (lambda p: (["extract", "text", str(p), "-o", str(t / "o")], p, "looks like UTF-16 text without a byte-order mark"))(
        _file(t, "table.csv", "text,emotion\nhello,joy\n".encode("utf-16-le"))
    ),
    "mmsa-fet-label-csv-not-utf8": lambda t: (lambda p: (["extract", "mmsa-fet", str(t), "-o", str(t / "o")], p, r"is not UTF-8 text \(byte \d+"))(
        _file(t, "label.csv", "video_id,clip_id,text,label,annotation,mode\nv,1,caf\xe9,0.5,Positive,train\n".encode("cp1252"))
    ),
}


def test_there_are_cli_cases_for_every_config_kind():
    kinds = {name.split("-")[0] for name in CLI_CASES}
    assert {"study", "train", "text", "mmsa"} <= kinds


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_malformed_config_or_table_gives_one_clear_line(name, tmp_path, capsys):
    from mtaffect.cli.main import main

    argv, file, match = CLI_CASES[name](tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    import re

    assert str(file) in lines[0] and re.search(match, lines[0]), lines[0]
    assert lines[0].count(str(file)) == 1, lines[0]  # named once, not once per layer
    assert not (tmp_path / "o").exists()  # refused before any work


def test_utf16_files_with_a_byte_order_mark_read_as_their_utf8_twins(tmp_path):
    from mtaffect.data.raw import read_text_table

    utf8, utf16 = tmp_path / "a", tmp_path / "b"
    write_meld(utf8)
    write_meld(utf16)
    for path in utf16.glob("*.csv"):
        path.write_bytes(path.read_bytes().decode("cp1252").encode("utf-16"))
    np.savez(tmp_path / "x.npz", **{f"{s}/{i}": np.ones((1, 2), np.float32) for s in ("train", "dev", "test") for i in
                                     [f"dia{d}_utt{u}" for d in range(30) for u in range(3)]})
    options = {"features": {"text": str(tmp_path / "x.npz")}, "missing_features": "drop"}
    a = load_corpus("meld", utf8, cache_dir=tmp_path / "c1", **options)
    b = load_corpus("meld", utf16, cache_dir=tmp_path / "c2", **options)
    for split in a:
        assert a[split]["text"] == b[split]["text"] and a[split]["emotion"] == b[split]["emotion"]
    table = _file(tmp_path, "t.csv", "text,emotion\nhé,joy\n".encode("utf-16"))
    assert read_text_table(table, emotion_column="emotion").examples[0].text == "hé"


def test_hdf5_groups_holding_features_load(tmp_path):
    data = write_mustard(tmp_path)
    with h5py.File(tmp_path / "v.h5", "w") as f:
        for i, key in enumerate(data):
            f.create_group(key).create_dataset("features", data=np.full((2, 3), i, np.float32))
    corpus = load_corpus("mustard", tmp_path, features={"text": "v.h5"}, cache_dir=tmp_path / "cache")
    row = corpus["test"][0]
    assert np.asarray(row["text_features"]).shape == (2, 3)
    assert float(np.asarray(row["text_features"])[0, 0]) == list(data).index(row["id"])
