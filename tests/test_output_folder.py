"""Nothing the user owns is lost: output folders, --overwrite, interrupted writes, checked file by file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from datasets import DatasetDict, load_from_disk
from test_loaders import write_meld, write_mmsa

from mtaffect.cli.main import main
from mtaffect.output_folder import MANIFEST_NAME, SCRATCH_MARK, OutputFolder, OutputFolderError


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), the manifest excluded."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST_NAME
    }


def _write_result(folder: OutputFolder, files: dict[str, str], fail_after: int | None = None) -> None:
    with folder.staging() as scratch:
        for number, (name, text) in enumerate(files.items()):
            if fail_after is not None and number == fail_after:
                raise KeyboardInterrupt  # as a Ctrl-C in the middle of the work
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            (scratch / name).write_text(text)


USER_FILES = {"notes.txt": "my notes", "report.md": "# my own report", "data/mine.csv": "a,b\n1,2\n"}


def _add_user_files(target: Path) -> None:
    for name, text in USER_FILES.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(text)


def test_a_folder_of_the_users_is_refused_and_overwrite_keeps_every_user_file(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    _add_user_files(target)
    before = snapshot(target)
    with pytest.raises(OutputFolderError, match=r"holds 3 file\(s\) mtaffect did not write .*pass --overwrite"):
        _write_result(OutputFolder(target, "mtaffect test"), {"result.json": "{}"})
    assert snapshot(target) == before

    folder = OutputFolder(target, "mtaffect test", overwrite=True)
    _write_result(folder, {"result.json": "1", "data/part-0.arrow": "old", "stale.txt": "x"})
    assert folder.last_commit.kept == sorted(USER_FILES)
    assert folder.written() == ["data/part-0.arrow", "result.json", "stale.txt"]

    _write_result(folder, {"result.json": "2", "data/part-0.arrow": "new"})
    after = snapshot(target)
    for name, text in USER_FILES.items():  # file by file: the user's files are untouched
        assert after[name] == text.encode()
    assert after["result.json"] == b"2" and after["data/part-0.arrow"] == b"new"
    assert "stale.txt" not in after  # mtaffect's own earlier file, no longer part of the result
    assert folder.last_commit.removed == ["data/part-0.arrow", "result.json", "stale.txt"]
    assert "replaced 3 file(s) mtaffect wrote earlier" in folder.last_commit.summary(target)
    assert sorted(after) == sorted([*USER_FILES, "result.json", "data/part-0.arrow"])


def test_an_earlier_result_needs_overwrite_and_a_user_file_in_the_way_stops_before_anything_moves(tmp_path):
    target = tmp_path / "out"
    _write_result(OutputFolder(target, "mtaffect test"), {"result.json": "1"})
    with pytest.raises(OutputFolderError, match=r"earlier `mtaffect test` \(1 file\(s\)\); pass --overwrite"):
        _write_result(OutputFolder(target, "mtaffect test"), {"result.json": "2"})
    (target / "report.md").write_text("mine")
    before = snapshot(target)
    folder = OutputFolder(target, "mtaffect test", overwrite=True)
    with pytest.raises(OutputFolderError, match="report.md would be overwritten but mtaffect did not write it"):
        folder.check(will_write=["report.md"])
    with pytest.raises(OutputFolderError, match="report.md would be overwritten.*earlier result is unchanged"):
        _write_result(folder, {"result.json": "3", "report.md": "generated"})
    assert snapshot(target) == before
    assert not list(tmp_path.glob(f".out{SCRATCH_MARK}*"))


def test_an_interrupted_write_leaves_the_earlier_result_whole(tmp_path):
    target = tmp_path / "out"
    folder = OutputFolder(target, "mtaffect test", overwrite=True)
    _write_result(folder, {"a.txt": "first a", "b/c.txt": "first c"})
    _add_user_files(target)
    before = snapshot(target)
    with pytest.raises(KeyboardInterrupt):
        _write_result(folder, {"a.txt": "second a", "b/c.txt": "second c", "d.txt": "new"}, fail_after=2)
    assert snapshot(target) == before  # file by file
    assert folder.written() == ["a.txt", "b/c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the scratch folder is gone


def test_stale_scratch_of_a_dead_process_is_removed(tmp_path):
    dead = tmp_path / f".out{SCRATCH_MARK}999999999-abc"
    (dead / "output").mkdir(parents=True)
    alive = tmp_path / f".out{SCRATCH_MARK}{os.getpid()}-xyz"
    alive.mkdir()
    _write_result(OutputFolder(tmp_path / "out", "mtaffect test"), {"r.txt": "1"})
    assert not dead.exists() and alive.exists()


def test_an_unwritable_parent_is_named_not_a_scratch_folder(tmp_path, monkeypatch):
    parent = tmp_path / "readonly"
    parent.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == parent else real_access(path, mode))
    with pytest.raises(PermissionError) as caught:
        OutputFolder(parent / "out", "mtaffect test").check()
    message = str(caught.value)
    assert message.startswith(f"{parent / 'out'}: cannot write in {parent} (permission denied)")
    assert SCRATCH_MARK not in message and "mtaffect-" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent_really_is_refused(tmp_path, capsys):
    path, _ = write_mmsa(tmp_path / "src")
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        assert main(["data", "convert", "--corpus", "mosei", "--input", str(path), "--output", str(parent / "out")]) == 2
    finally:
        parent.chmod(0o755)
    err = capsys.readouterr().err
    assert f"cannot write in {parent} (permission denied)" in err and "Traceback" not in err


# ---- the commands ------------------------------------------------------------------------


def _convert(path: Path, output: Path, *extra: str) -> list[str]:
    return ["data", "convert", "--corpus", "mosei", "--input", str(path), "--output", str(output), *extra]


def test_data_convert_keeps_user_files_and_an_interrupted_convert_keeps_the_earlier_corpus(tmp_path, capsys, monkeypatch):
    path, _ = write_mmsa(tmp_path / "src")
    out = tmp_path / "out"
    assert main(_convert(path, out)) == 0
    (out / "notes.txt").write_text("mine")
    (out / "train" / "my_analysis.json").write_text("{}")  # inside a folder mtaffect wrote
    capsys.readouterr()
    before = snapshot(out)

    assert main(_convert(path, out)) == 2
    err = capsys.readouterr().err
    assert "mtaffect did not write (notes.txt, train/my_analysis.json)" in err and "Traceback" not in err
    assert snapshot(out) == before

    def interrupted(self, *args, **kwargs):
        Path(args[0], "half-written.arrow").parent.mkdir(parents=True, exist_ok=True)
        Path(args[0], "half-written.arrow").write_text("partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(DatasetDict, "save_to_disk", interrupted)
    assert main(_convert(path, out, "--overwrite")) == 130
    assert "interrupted" in capsys.readouterr().err
    assert snapshot(out) == before  # the earlier corpus and the user's files, byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]
    monkeypatch.undo()

    assert main(_convert(path, out, "--overwrite", "--limit", "2")) == 0
    printed = capsys.readouterr().out
    assert "kept 2 file(s) mtaffect did not write (notes.txt, train/my_analysis.json)" in printed
    assert (out / "notes.txt").read_text() == "mine" and (out / "train" / "my_analysis.json").read_text() == "{}"
    corpus = load_from_disk(str(out))
    assert [corpus[s].num_rows for s in ("train", "validation", "test")] == [2, 2, 2]
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["written_by"] == "mtaffect data convert" and "dataset_dict.json" in manifest["files"]
    assert "notes.txt" not in manifest["files"]


@pytest.mark.parametrize("corpus", ["meld", "emorynlp"])
def test_convert_limit_stops_extraction_early(tmp_path, monkeypatch, corpus):
    from test_label_spaces import write_emorynlp

    import mtaffect.data.corpora.user_features as user_features
    from mtaffect.data.corpora import get_format, load_corpus

    {"meld": write_meld, "emorynlp": write_emorynlp}[corpus](tmp_path / corpus)
    calls = []

    class Counting:
        name, dim = "counting", 3

        def __call__(self, texts):
            calls.append(len(texts))
            return [np.ones((1, 3), np.float32) for _ in texts]

    monkeypatch.setattr(user_features, "make_text_extractor", lambda options, where: Counting())
    assert "limit" in get_format(corpus, corpus).option_names()  # the loader itself stops early
    limited = load_corpus(corpus, tmp_path / corpus, limit=1, cache_dir=tmp_path / "cache")
    assert {split: ds.num_rows for split, ds in limited.items()} == {"train": 1, "validation": 1, "test": 1}
    assert sum(calls) == 3  # only the kept utterances were extracted
    whole = load_corpus(corpus, tmp_path / corpus, cache_dir=tmp_path / "cache")
    for split, rows in limited.items():
        assert rows["id"] == whole[split]["id"][:1]  # the first utterance of each split
    with pytest.raises(ValueError, match="limit must be a positive number"):
        load_corpus(corpus, tmp_path / corpus, limit=0)


def test_extract_overwrite_removes_only_what_it_wrote_and_limit_is_a_dry_run(tmp_path):
    from test_extract_corpus import CountingTextExtractor, _table, _text_corpus

    from mtaffect.data.extract.corpus import extract_corpus

    corpus = _table(_text_corpus(tmp_path, n=11, empty=()))
    work, out = tmp_path / "work", tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match="notes.txt"):
        extract_corpus(corpus, [CountingTextExtractor()], work, out, progress=False)
    assert not work.exists() or not any(work.glob("shards/*"))  # refused before extracting anything
    counter = CountingTextExtractor()
    result = extract_corpus(corpus, [counter], work, out, overwrite=True, progress=False, limit=2)
    assert {split: c["examples"] for split, c in result.counts.items()} == {"train": 2, "test": 2}
    assert sum(map(len, counter.calls)) == 4  # only the kept examples were extracted
    (work / "my-notes.md").write_text("mine too")
    before = {**{"out/" + k: v for k, v in snapshot(out).items() if k == "notes.txt"},
              **{"work/" + k: v for k, v in snapshot(work).items() if k == "my-notes.md"}}
    result = extract_corpus(corpus, [CountingTextExtractor()], work, out, overwrite=True, progress=False)
    assert sum(c["examples"] for c in result.counts.values()) == 11
    assert (out / "notes.txt").read_bytes() == before["out/notes.txt"]
    assert (work / "my-notes.md").read_bytes() == before["work/my-notes.md"]
    assert "notes.txt" in result.output_commit.kept and result.output_commit.removed


def test_train_writes_next_to_user_files_only_when_told_and_never_over_them(tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text("corpora: {m: synthetic_mosei}\nsynthetic: {size_scale: 0.05}\n"
                      "model: {hidden_size: 8, num_heads: 2}\ntraining: {num_train_epochs: 1}\n")
    out = tmp_path / "model"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["train", "--config", str(config), "--output-dir", str(out)]
    assert main(argv) == 2
    assert "holds 1 file(s) mtaffect did not write (notes.txt)" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "model.safetensors").is_file()
    written = json.loads((out / MANIFEST_NAME).read_text())["files"]
    assert "model.safetensors" in written and "notes.txt" not in written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "train.yaml"]  # no scratch left
    capsys.readouterr()
    assert main(argv) == 2  # the user's file is named first
    assert "mtaffect did not write (notes.txt)" in capsys.readouterr().err
    (out / "notes.txt").unlink()
    assert main(argv) == 2  # then the earlier model: replaced only with --overwrite
    assert "earlier `mtaffect train`" in capsys.readouterr().err
