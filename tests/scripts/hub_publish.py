"""Hub round trips, publishing side (run by tests/test_hub.py in a subprocess).

The test starts tests/hub_server.py and runs this script with HF_ENDPOINT / HF_TOKEN /
HF_HOME / HF_HUB_DISABLE_XET set before anything imports huggingface_hub. It pushes with the
public APIs, loads back through real HTTP (the cache in HF_HOME starts empty), and writes
what it saw to OUT_DIR/results.json (+ tensors in OUT_DIR/*.pt) for the test to check.

As soon as the evaluated model is on the Hub it writes OUT_DIR/model-pushed, so the test can
start the consumers (remote code, quickstart) while this script goes on.

Usage: python hub_publish.py OUT_DIR
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import time
import traceback
from pathlib import Path

import torch

USER = "mtaffect-tester"
TRAINED = f"{USER}/tiny-trained"  # pushed by Trainer.push_to_hub
MODEL = f"{USER}/tiny-model"  # pushed by model.push_to_hub
NO_EVAL = f"{USER}/no-eval"  # never evaluated
BAD_TOKEN_REPO = f"{USER}/bad-token"
CORPORA = f"{USER}/affect-corpora"
CHECKPOINT = f"{USER}/pushed-checkpoint"  # hub_scripts/push_checkpoint.py
SCRIPT_CORPORA = f"{USER}/script-corpora"  # hub_scripts/push_corpus.py
HUB_SCRIPTS = Path(__file__).resolve().parents[2] / "hub_scripts"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def _step(results: dict, name: str, function) -> None:
    """Run one round trip; record its result or its error (the test reports which one broke)."""
    start = time.perf_counter()
    try:
        results[name] = function()
    except BaseException:  # noqa: BLE001 - the traceback (or SystemExit of a script) goes to the test
        results[name] = {"error": traceback.format_exc()}
    results.setdefault("seconds", {})[name] = round(time.perf_counter() - start, 2)


def _run_script(name: str, argv: list[str]) -> int:
    """``main(argv)`` of a hub_scripts/ script, in this process (its CLI is tested separately)."""
    spec = importlib.util.spec_from_file_location(f"hub_scripts_{name}", HUB_SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def main(out: Path) -> None:
    import mtaffect  # noqa: F401  (registers the Auto classes)
    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.data.collator import MTAffectCollator
    from mtaffect.data.corpora.synthetic import make_synthetic_corpus, make_synthetic_family
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect
    from mtaffect.training import MultiTaskTrainer, MultiTaskTrainingArguments

    records = _Records()
    logging.getLogger("mtaffect").addHandler(records)
    logging.getLogger("mtaffect").setLevel(logging.INFO)
    results: dict = {}
    torch.manual_seed(0)
    family = make_synthetic_family(seed=0, size_scale=0.05, max_length=6)
    config = MTAffectConfig.from_corpora(family, hidden_size=8, num_heads=2, num_layers=1)
    model = MTAffectForMultiTaskAffect(config)

    test = family["synthetic_mosei"]["test"].select(range(4))
    batch = MTAffectCollator.for_dataset(test)(list(test.with_format("numpy")))
    inputs = {k: v for k, v in batch.items() if k == "feature_set" or k.endswith(("_features", "_mask"))}
    inputs = {k: v for k, v in inputs.items() if not k.startswith(("emotion", "sentiment", "sarcasm"))}

    def outputs_of(m) -> dict[str, torch.Tensor]:
        m.eval()
        with torch.no_grad():
            output = m(**inputs)
        return dict(output.head_outputs)

    args = MultiTaskTrainingArguments(
        output_dir=str(out / "trainer"), max_steps=4, per_device_train_batch_size=8,
        per_device_eval_batch_size=32, learning_rate=1e-3, eval_strategy="no", save_strategy="no",
        report_to="none", push_to_hub=True, hub_model_id=TRAINED, use_cpu=True, disable_tqdm=True,
    )
    trainer = MultiTaskTrainer(
        model=model, args=args,
        train_dataset={name: corpus["train"] for name, corpus in family.items()},
        eval_dataset={name: corpus["validation"] for name, corpus in family.items()},
    )

    # 1. Train a few steps, evaluate, and push the model with model.push_to_hub.
    def train_and_model_push():
        trainer.train()
        metrics = trainer.evaluate()
        commit = model.push_to_hub(MODEL)
        torch.save({"inputs": inputs, "outputs": outputs_of(model)}, out / "reference.pt")
        return {"metrics": metrics, "commit": str(getattr(commit, "commit_url", commit))}

    _step(results, "model_push", train_and_model_push)
    # The corpus the pushed model was evaluated on, for `mtaffect evaluate` against the Hub copy.
    family["synthetic_mustard"].save_to_disk(str(out / "synthetic_mustard"))
    (out / "model-pushed").write_text(json.dumps(results["seconds"]))

    # 2. Trainer.push_to_hub at the end of training (to its own repo).
    def trainer_push():
        commit = trainer.push_to_hub(commit_message="End of training")
        return {"commit": str(commit.commit_url)}

    _step(results, "trainer_push", trainer_push)

    # 3. Loading back with mtaffect installed: AutoModel and the pipeline.
    def load_installed():
        from transformers import AutoModel, pipeline

        import mtaffect.pipeline  # noqa: F401  (registers "multimodal-affect")

        loaded = AutoModel.from_pretrained(MODEL)
        torch.save(outputs_of(loaded), out / "installed.pt")
        classifier = pipeline("multimodal-affect", model=MODEL)
        row = test.with_format("numpy")[0]
        features = {k: row[k] for k in ("text_features", "audio_features", "visual_features")}
        single = MTAffectCollator.for_dataset(test)([row])
        return {
            "class": type(loaded).__name__,
            "module": type(loaded).__module__,
            "pipeline_class": type(classifier).__name__,
            "pipeline": classifier(features),
            "direct": loaded.predict(single)[0],
            "label_spaces": loaded.config.label_spaces,
            "pushed_label_spaces": model.config.label_spaces,
            "pipeline_list": classifier([features, {**features, "feature_set": "synthetic-cmu"}]),
        }

    _step(results, "load_installed", load_installed)

    # 4. A model that was never evaluated: its card degrades, with a log message.
    def no_eval_push():
        before = len(records.messages)
        commit = MTAffectForMultiTaskAffect(config).push_to_hub(NO_EVAL)
        return {"commit": str(getattr(commit, "commit_url", commit)), "logs": records.messages[before:]}

    _step(results, "no_eval_push", no_eval_push)

    # 5. An invalid token: a clear error and no repo.
    def bad_token_push():
        try:
            model.push_to_hub(BAD_TOKEN_REPO, token="hf_not_a_valid_token")
        except Exception as error:  # noqa: BLE001 - the test checks the type and message
            return {"error_type": type(error).__name__, "message": str(error)}
        return {"message": "no error raised"}

    _step(results, "bad_token_push", bad_token_push)

    # 6. Corpora: one config each, then load_dataset / load_corpus_from_hub.
    def corpora():
        import datasets

        from mtaffect.data.schema import get_corpus_info
        from mtaffect.hub import load_corpus_from_hub, push_corpus

        report = {}
        for name in ("synthetic_meld", "synthetic_mustard"):
            push_corpus(family[name], CORPORA)
        for name in ("synthetic_meld", "synthetic_mustard"):
            pushed = family[name]
            plain = datasets.load_dataset(CORPORA, name)
            restored = load_corpus_from_hub(CORPORA, name)
            report[name] = {
                "splits": sorted(plain) == sorted(pushed),
                "rows_equal": all(plain[s].to_dict() == pushed[s].to_dict() for s in pushed),
                "features_equal": all(plain[s].features == pushed[s].features for s in pushed),
                "plain_description": plain["train"].info.description,
                "info_restored": get_corpus_info(restored) == get_corpus_info(pushed),
                "restored_rows_equal": restored["test"].to_dict() == pushed["test"].to_dict(),
            }
        return report

    _step(results, "corpora", corpora)

    # 7. hub_scripts: a saved checkpoint with a study report, and a corpus saved to disk.
    def push_checkpoint_script():
        folder = out / "checkpoint"
        model.save_pretrained(folder)
        report = out / "study"
        report.mkdir()
        (report / "report.json").write_text(json.dumps({"settings": ["single-task", "multi-task"]}))
        (report / "report.md").write_text("# Study report\n")
        return _run_script(
            "push_checkpoint", [str(folder), CHECKPOINT, "--report-dir", str(report), "--license", "apache-2.0"]
        )

    _step(results, "push_checkpoint_script", push_checkpoint_script)

    def push_corpus_script():
        folder = out / "iemocap"
        make_synthetic_corpus("synthetic_iemocap", seed=3, size_scale=0.05, max_length=6).save_to_disk(str(folder))
        return _run_script("push_corpus", [str(folder), SCRIPT_CORPORA])

    _step(results, "push_corpus_script", push_corpus_script)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
