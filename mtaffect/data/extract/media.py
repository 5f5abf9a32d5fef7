"""Decoding: audio from WAV/FLAC files or video containers, frames from video, resampling.

Audio files libsndfile reads (WAV, FLAC, OGG, AIFF) go through ``soundfile``; anything else
(MP4, MKV, WebM, MP3, M4A...) is decoded with PyAV (FFmpeg), which is also how the audio
track of a video clip is read. Every decoder error becomes an ``ExtractionError``
naming the file, so one corrupt clip is reported and skipped rather than ending a corpus run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from mtaffect.data.extract.base import ExtractionError, require

logger = logging.getLogger(__name__)

#: Extensions read with soundfile (libsndfile); everything else is decoded with PyAV.
SOUNDFILE_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".w64"})


def resample(signal: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``) of a 1-D signal."""
    if orig_rate == target_rate:
        return signal.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    ratio = Fraction(int(target_rate), int(orig_rate)).limit_denominator(10_000)
    return resample_poly(signal, ratio.numerator, ratio.denominator).astype(np.float32)


def load_audio(path: str | Path, sample_rate: int = 16_000) -> np.ndarray:
    """Mono float32 samples of ``path`` (audio file or video's audio track) at ``sample_rate``."""
    path = Path(path)
    if not path.is_file():
        raise ExtractionError(path, "no such file")
    if path.suffix.lower() in SOUNDFILE_EXTENSIONS:
        signal, rate = _read_soundfile(path)
    else:
        signal, rate = _read_av_audio(path)
    if signal.size == 0:
        raise ExtractionError(path, "the audio has no samples")
    if not np.isfinite(signal).all():
        raise ExtractionError(path, "the decoded audio holds NaN or inf samples")
    return resample(signal, rate, sample_rate)


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    soundfile = require("soundfile", "audio", "Reading WAV/FLAC audio")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as error:
        raise ExtractionError(path, f"cannot decode audio with soundfile: {error}") from error
    return data.mean(axis=1), int(rate)


def _read_av_audio(path: Path) -> tuple[np.ndarray, int]:
    av = require("av", "audio", "Reading audio from video or compressed audio files")
    chunks: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ExtractionError(path, "the file has no audio track")
            stream = container.streams.audio[0]
            rate = int(stream.rate or stream.codec_context.sample_rate or 0)
            # Planar float at the native rate and layout: channels are averaged here, and
            # resampling is done by resample(), exactly as for WAV input.
            resampler = av.AudioResampler(format="fltp", rate=rate)
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    chunks.append(converted.to_ndarray().mean(axis=0))
            for converted in resampler.resample(None):
                chunks.append(converted.to_ndarray().mean(axis=0))
    except ExtractionError:
        raise
    except (av.FFmpegError, OSError, ValueError) as error:
        raise ExtractionError(path, f"cannot decode the audio track with PyAV: {error}") from error
    if not rate:
        raise ExtractionError(path, "the audio track has no sample rate")
    signal = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return signal, rate


def iter_video_frames(path: str | Path, fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_s, bgr_frame)`` sampled at ``fps`` from the first video stream of ``path``.

    A frame is taken at each multiple of ``1 / fps`` seconds (the first decoded frame at or
    after it), so the count is about ``duration * fps`` whatever the clip's own frame rate.
    """
    av = require("av", "video", "Reading video")
    path = Path(path)
    if not path.is_file():
        raise ExtractionError(path, "no such file")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}.")
    interval = 1.0 / fps
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ExtractionError(path, "the file has no video stream")
            stream = container.streams.video[0]
            rate = float(stream.average_rate) if stream.average_rate else None
            next_time = None
            for index, frame in enumerate(container.decode(stream)):
                if frame.time is not None:
                    time = float(frame.time)
                elif rate:
                    time = index / rate
                else:
                    raise ExtractionError(path, "video frames carry no timestamps and no frame rate")
                if next_time is None:
                    next_time = time  # clips need not start at t=0
                if time + 1e-6 < next_time:
                    continue
                yield time, frame.to_ndarray(format="bgr24")
                while next_time <= time + 1e-6:
                    next_time += interval
    except ExtractionError:
        raise
    except (av.FFmpegError, OSError, ValueError) as error:
        raise ExtractionError(path, f"cannot decode video with PyAV: {error}") from error
