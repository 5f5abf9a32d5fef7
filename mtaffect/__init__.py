"""mtaffect: weakly-supervised multi-task multimodal affect recognition on the Hugging Face stack.

Importing the package registers the model with ``AutoConfig``/``AutoModel``. Everything
else is imported on first use, so ``import mtaffect`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from transformers import AutoConfig, AutoModel

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.modeling_mtaffect import (
    MTAffectForMultiTaskAffect,
    MTAffectModel,
    MTAffectModelOutput,
    MTAffectOutput,
    MTAffectPreTrainedModel,
)

__version__ = "0.1.0"

__all__ = [
    "MTAffectConfig",
    "MTAffectForMultiTaskAffect",
    "MTAffectModel",
    "MTAffectModelOutput",
    "MTAffectOutput",
    "MTAffectPreTrainedModel",
    "__version__",
]

# `AutoConfig.from_pretrained` / `AutoModel.from_pretrained` on an mtaffect checkpoint give
# the config and the multi-task model (what a checkpoint is for), without trust_remote_code
# when mtaffect is installed.
AutoConfig.register(MTAffectConfig.model_type, MTAffectConfig, exist_ok=True)
AutoModel.register(MTAffectConfig, MTAffectForMultiTaskAffect, exist_ok=True)

# Public name -> module that defines it (imported on first attribute access).
_LAZY: dict[str, str] = {
    "EMOTION_LABELS": "mtaffect.tasks",
    "TASK_NAMES": "mtaffect.tasks",
    "CorpusInfo": "mtaffect.data.schema",
    "SchemaError": "mtaffect.data.schema",
    "build_features": "mtaffect.data.schema",
    "validate_corpus": "mtaffect.data.schema",
    "get_corpus_info": "mtaffect.data.schema",
    "MTAffectCollator": "mtaffect.data.collator",
    "make_synthetic_corpus": "mtaffect.data.corpora.synthetic",
    "make_synthetic_family": "mtaffect.data.corpora.synthetic",
    "load_corpus": "mtaffect.data.corpora",
    "list_corpora": "mtaffect.data.corpora",
    "combine_corpora": "mtaffect.data.corpora",
    "register_corpus": "mtaffect.data.corpora",
    "CorpusFormatError": "mtaffect.data.corpora",
    "add_weak_labels": "mtaffect.weak_labels",
    "weak_label_quality": "mtaffect.weak_labels",
    "load_teacher": "mtaffect.teachers",
    "record_teacher": "mtaffect.teachers",
    "teacher_record_from_corpora": "mtaffect.teachers",
    "TeacherRecord": "mtaffect.teachers",
    "TeacherError": "mtaffect.teachers",
    "train_teacher": "mtaffect.teachers",
    "UnsafePickleError": "mtaffect.data.corpora",
    "MultiCorpusBatchSampler": "mtaffect.training",
    "CorpusSampling": "mtaffect.training",
    "BatchComposition": "mtaffect.training",
    "FeatureSetCollator": "mtaffect.training",
    "MTAffectModelCardData": "mtaffect.modelcard",
    "ModelCardCallback": "mtaffect.modelcard",
    "push_corpus": "mtaffect.hub",
    "load_corpus_from_hub": "mtaffect.hub",
    "TextExtractor": "mtaffect.data.extract",
    "AudioExtractor": "mtaffect.data.extract",
    "VisualExtractor": "mtaffect.data.extract",
    "extract_utterance": "mtaffect.data.extract",
    "MultiTaskTrainer": "mtaffect.training",
    "MultiTaskTrainingArguments": "mtaffect.training",
    "compute_corpus_metrics": "mtaffect.metrics",
    "make_compute_metrics": "mtaffect.metrics",
    "primary_score": "mtaffect.metrics",
    "PRIMARY_METRICS": "mtaffect.metrics",
    "evaluate_module_path": "mtaffect.metrics",
    "StudyConfig": "mtaffect.study",
    "run_study": "mtaffect.study",
    "MultimodalAffectPipeline": "mtaffect.pipeline",
    "generate_model_card": "mtaffect.modelcard",
    "write_model_card": "mtaffect.modelcard",
}

__all__ += list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mtaffect' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
