"""mtaffect: weakly-supervised multi-task multimodal affect recognition on the Hugging Face stack.

Importing the package registers the model with ``AutoConfig``/``AutoModel``; everything else
is imported on first use, so ``import mtaffect`` (and every ``mtaffect`` command that trains
nothing, ``mtaffect --help`` and ``mtaffect data list`` among them) does not import torch.

The registration cannot run at import time without torch: in transformers 5 the config
module itself imports torch. So it runs when transformers' Auto classes are first imported
(an import hook on ``transformers.models.auto.configuration_auto`` / ``modeling_auto``), or
at once if they already are: ``import mtaffect`` followed by
``AutoModel.from_pretrained(checkpoint)`` works either way round.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__"]


def _register_config() -> None:
    from transformers import AutoConfig

    from mtaffect.configuration_mtaffect import MTAffectConfig

    AutoConfig.register(MTAffectConfig.model_type, MTAffectConfig, exist_ok=True)


def _register_model() -> None:
    # `AutoModel.from_pretrained` / `from_config` on an mtaffect config give the multi-task
    # model (what a checkpoint is for), without trust_remote_code when mtaffect is installed.
    from transformers import AutoModel

    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

    _register_config()
    AutoModel.register(MTAffectConfig, MTAffectForMultiTaskAffect, exist_ok=True)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs a registration right after transformers executes one of its Auto modules."""

    def __init__(self, actions: dict[str, Callable[[], None]]) -> None:
        self.actions = actions

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        action = self.actions.get(fullname)
        if action is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        execute = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            execute(module)
            self.actions.pop(fullname, None)
            if not self.actions and self in sys.meta_path:
                sys.meta_path.remove(self)
            action()

        spec.loader.exec_module = exec_module  # this spec's own loader instance
        return spec


def _install_registration() -> None:
    pending = {
        "transformers.models.auto.configuration_auto": _register_config,
        "transformers.models.auto.modeling_auto": _register_model,
    }
    for module, action in list(pending.items()):
        if module in sys.modules:  # transformers' Auto classes are already there: register now
            del pending[module]
            action()
    if pending:
        sys.meta_path.insert(0, _AfterImport(pending))


_install_registration()

# Public name -> module that defines it (imported on first attribute access).
_LAZY: dict[str, str] = {
    "MTAffectConfig": "mtaffect.configuration_mtaffect",
    "MTAffectForMultiTaskAffect": "mtaffect.modeling_mtaffect",
    "MTAffectModel": "mtaffect.modeling_mtaffect",
    "MTAffectModelOutput": "mtaffect.modeling_mtaffect",
    "MTAffectOutput": "mtaffect.modeling_mtaffect",
    "MTAffectPreTrainedModel": "mtaffect.modeling_mtaffect",
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
    "choose_teacher": "mtaffect.teachers",
    "CorpusSource": "mtaffect.data.sources",
    "fit": "mtaffect.recipes",
    "load_model": "mtaffect.checkpoints",
    "TRAINING_DEFAULTS": "mtaffect.recipes",
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
