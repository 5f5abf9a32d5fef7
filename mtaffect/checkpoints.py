"""Loading a trained checkpoint, with one clear error per way it can fail.

Apart from the training recipe (``mtaffect.recipes``, which imports the Trainer, the metrics
and scikit-learn) so that loading a model for ``predict`` or ``evaluate`` imports only the
model: ``mtaffect predict`` starts in the time of torch and the model classes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mtaffect.configuration_mtaffect import MTAffectConfig
from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

__all__ = ["CheckpointError", "load_model"]


class CheckpointError(ValueError):
    """A checkpoint cannot be loaded (missing, not an mtaffect model, broken config or weights)."""


def load_model(name_or_path: str | os.PathLike, what: str = "model") -> MTAffectForMultiTaskAffect:
    """``MTAffectForMultiTaskAffect.from_pretrained`` with one clear error per way it can fail.

    Args:
        name_or_path: a folder written by ``save_pretrained`` or a Hub id.
        what: what the caller calls the checkpoint in messages (``"model"``, ``"teacher"``).

    Raises:
        FileNotFoundError: a local path that does not exist.
        CheckpointError: anything else (no or invalid ``config.json``, another model type,
            missing or corrupt weights, weights of another architecture, an uncached Hub id
            offline); the message names the checkpoint and the fix.
    """
    name = str(name_or_path)
    path = Path(name).expanduser()
    fix = (
        "Give a folder written by save_pretrained (config.json + model.safetensors) or a Hub id; "
        "offline (HF_HUB_OFFLINE=1), a Hub id must already be in the local cache."
    )
    if path.exists():
        _check_config_file(path, name, what, fix)
    elif os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1 or os.sep in name.replace("/", ""):
        raise FileNotFoundError(f"cannot load the {what} {name!r}: no such {what} folder. {fix}")
    try:
        model, info = MTAffectForMultiTaskAffect.from_pretrained(name, output_loading_info=True)
    except Exception as error:  # OSError, ValueError, safetensors' own error type for corrupt files
        if not isinstance(error, (OSError, ValueError, KeyError, TypeError, RuntimeError)) and (
            type(error).__name__ != "SafetensorError"
        ):
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if type(error).__name__ == "SafetensorError":
            reason = f"corrupt weights file ({reason}); re-save it"
        raise CheckpointError(f"cannot load the {what} {name!r} ({reason}). {fix}") from error
    problems = {key: value for key, value in info.items() if key in ("missing_keys", "mismatched_keys") and value}
    if problems:
        raise CheckpointError(
            f"cannot load the {what} {name!r}: the weights do not match the config ({problems}); the "
            "checkpoint is incomplete or was saved from another architecture."
        )
    return model


def _check_config_file(path: Path, name: str, what: str, fix: str) -> None:
    """The local checks ``from_pretrained`` would answer with a long traceback."""
    config_file = path / "config.json"
    if not path.is_dir() or not config_file.is_file():
        raise CheckpointError(f"cannot load the {what} {name!r}: no config.json there. {fix}")
    try:
        payload = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"cannot load the {what} {name!r}: {config_file} is not valid JSON ({error}). {fix}") from error
    model_type = payload.get("model_type") if isinstance(payload, dict) else None
    if model_type != MTAffectConfig.model_type:
        raise CheckpointError(
            f"cannot load the {what} {name!r}: {config_file}: model_type is {model_type!r}, expected "
            f"{MTAffectConfig.model_type!r} (an mtaffect model saved with save_pretrained)."
        )
