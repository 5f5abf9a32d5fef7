"""Audio features: openSMILE eGeMAPSv02 (or another openSMILE set) from files or signals.

``level="lld"`` gives the 25 eGeMAPSv02 low-level descriptors per 10 ms frame (loudness,
spectral slope and flux, MFCC 1-4, F0, jitter, shimmer, HNR, formants F1-F3...);
``level="functionals"`` gives the 88 eGeMAPSv02 functionals (means, deviations, percentiles
of those over the whole utterance) as one row. Input is resampled to 16 kHz mono first, so
a WAV and the same audio inside an MP4 give the same features up to codec loss.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtaffect.data.extract.base import ExtractionError, Extractor, require
from mtaffect.data.extract.media import load_audio, resample

logger = logging.getLogger(__name__)

_LEVELS = {"lld": "LowLevelDescriptors", "functionals": "Functionals"}
#: openSMILE's LLD hop (all its standard sets): 10 ms.
LLD_STEP_S = 0.01
#: Shortest input openSMILE frames without padding rows with NaN (its 60 ms analysis window).
MIN_DURATION_S = 0.06

AudioItem = str | Path | tuple[np.ndarray, int]


class AudioExtractor(Extractor):
    """Audio files, video files (their audio track) or ``(signal, rate)`` -> openSMILE features.

    Args:
        level (`str`, defaults to ``"lld"``):
            ``"lld"`` for frame-level descriptors every 10 ms (``[T, 25]`` for eGeMAPSv02) or
            ``"functionals"`` for one utterance-level vector (``[1, 88]``).
        feature_set (`str`, defaults to ``"eGeMAPSv02"``):
            Any ``opensmile.FeatureSet`` name (``ComParE_2016``, ``emobase``...).
        sample_rate (`int`, defaults to 16000):
            Rate every input is resampled to before openSMILE sees it.

    Examples:
        >>> AudioExtractor(level="functionals").dim  # doctest: +SKIP
        88
    """

    modality = "audio"

    def __init__(self, level: str = "lld", feature_set: str = "eGeMAPSv02", sample_rate: int = 16_000) -> None:
        opensmile = require("opensmile", "audio", "The openSMILE audio extractor")
        if level not in _LEVELS:
            raise ValueError(f"level must be one of {sorted(_LEVELS)}, got {level!r}.")
        if feature_set not in opensmile.FeatureSet.__members__:
            raise ValueError(
                f"Unknown openSMILE feature set {feature_set!r}: expected one of "
                f"{sorted(opensmile.FeatureSet.__members__)}."
            )
        if sample_rate < 8000:
            raise ValueError(f"sample_rate must be >= 8000 Hz, got {sample_rate}.")
        self.level = level
        self.feature_set = feature_set
        self.sample_rate = int(sample_rate)
        self._smile = opensmile.Smile(
            feature_set=opensmile.FeatureSet[feature_set],
            feature_level=opensmile.FeatureLevel[_LEVELS[level]],
        )
        self.feature_names = list(self._smile.feature_names)
        self.name = f"audio:{feature_set}:{level}"
        self.dim = len(self.feature_names)
        self.step = f"{round(LLD_STEP_S * 1000)}ms" if level == "lld" else None
        self.frame_rate = 1.0 / LLD_STEP_S if level == "lld" else None
        self._opensmile = opensmile
        smile_lib = require("opensmile.core.lib", "audio", "The openSMILE audio extractor")
        self._errors = (RuntimeError, ValueError, getattr(smile_lib, "OpenSmileException", RuntimeError))

    def config(self) -> dict[str, Any]:
        return {"level": self.level, "feature_set": self.feature_set, "sample_rate": self.sample_rate}

    def details(self) -> dict[str, Any]:
        return {
            "feature_names": self.feature_names,
            "versions": {"opensmile": self._opensmile.__version__},
        }

    def __call__(self, items: Sequence[AudioItem]) -> list[np.ndarray]:
        return [self.extract_one(item) for item in items]

    def extract_one(self, item: AudioItem) -> np.ndarray:
        """Features of one file or ``(signal, rate)`` pair."""
        signal = self._signal(item)
        duration = signal.shape[0] / self.sample_rate
        if duration < MIN_DURATION_S:
            raise ExtractionError(
                item, f"audio too short ({duration * 1000:.0f} ms; openSMILE needs >= {MIN_DURATION_S * 1000:.0f} ms)"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                frame = self._smile.process_signal(signal, self.sample_rate)
            except self._errors as error:
                raise ExtractionError(item, f"openSMILE failed: {error}") from error
        return self.check_output(item, frame.to_numpy(dtype=np.float32))

    def _signal(self, item: AudioItem) -> np.ndarray:
        if isinstance(item, tuple):
            if len(item) != 2:
                raise ExtractionError(item, "an in-memory audio item must be (signal, sample_rate)")
            signal, rate = np.asarray(item[0], dtype=np.float32), int(item[1])
            if signal.ndim == 2:
                # (samples, channels) as soundfile returns it
                signal = signal.mean(axis=1)
            if signal.ndim != 1 or signal.size == 0:
                raise ExtractionError(item, f"expected a non-empty 1-D signal, got shape {signal.shape}")
            if not np.isfinite(signal).all():
                raise ExtractionError(item, "the signal holds NaN or inf samples")
            return resample(signal, rate, self.sample_rate)
        return load_audio(item, self.sample_rate)
