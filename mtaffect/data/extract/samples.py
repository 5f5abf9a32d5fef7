"""Synthetic media for tests, docs and smoke runs: tones, speech (espeak-ng), face-like clips.

The corpora are licensed and not shipped, so the extraction code is exercised on media made
here: a WAV tone, speech synthesised by ``espeak-ng`` where it is installed, and a short MP4
(H.264 or MPEG-4 video, AAC audio) with a drawn face that OpenCV's frontal-face cascade does
detect, moving across the frame, plus a moving square for motion energy.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from mtaffect.data.extract.base import require


def write_tone(path: str | Path, seconds: float = 1.0, rate: int = 44_100, frequency: float = 220.0) -> Path:
    """A WAV (or FLAC, by suffix) sine tone with a slow loudness wobble."""
    soundfile = require("soundfile", "audio", "Writing audio")
    t = np.arange(int(round(seconds * rate))) / rate
    signal = 0.3 * (1 + 0.5 * np.sin(2 * np.pi * 2 * t)) * np.sin(2 * np.pi * frequency * t)
    soundfile.write(str(path), signal.astype(np.float32), rate)
    return Path(path)


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def write_speech(path: str | Path, text: str, voice: str = "en") -> Path:
    """Speech for ``text`` synthesised by espeak-ng into a WAV (raises if espeak-ng is absent)."""
    executable = shutil.which("espeak-ng")
    if executable is None:
        raise FileNotFoundError("espeak-ng is not installed (apt-get install espeak-ng).")
    subprocess.run([executable, "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return Path(path)


def draw_face(image: np.ndarray, cx: int, cy: int, scale: float = 1.0, mouth_open: int = 0) -> None:
    """Draw a grey, blurred cartoon face that OpenCV's frontal-face Haar cascade detects."""
    cv2 = require("cv2", "video", "Drawing synthetic faces")
    face = np.full(image.shape[:2], 0, np.uint8)
    mask = np.zeros(image.shape[:2], np.uint8)
    s = scale
    cv2.ellipse(mask, (cx, cy), (int(50 * s), int(65 * s)), 0, 0, 360, 255, -1)
    cv2.ellipse(face, (cx, cy), (int(50 * s), int(65 * s)), 0, 0, 360, 200, -1)
    for side in (-1, 1):
        cv2.ellipse(face, (cx + side * int(20 * s), cy - int(22 * s)), (int(14 * s), int(4 * s)), 0, 0, 360, 70, -1)
        cv2.ellipse(face, (cx + side * int(20 * s), cy - int(10 * s)), (int(11 * s), int(6 * s)), 0, 0, 360, 40, -1)
    cv2.rectangle(face, (cx - int(5 * s), cy - int(8 * s)), (cx + int(5 * s), cy + int(14 * s)), 225, -1)
    cv2.ellipse(face, (cx, cy + int(17 * s)), (int(10 * s), int(4 * s)), 0, 0, 360, 130, -1)
    cv2.ellipse(face, (cx, cy + int(35 * s)), (int(20 * s), int(5 * s) + mouth_open), 0, 0, 360, 70, -1)
    face = cv2.GaussianBlur(face, (7, 7), 2)
    mask = cv2.GaussianBlur(mask, (7, 7), 2).astype(np.float32)[..., None] / 255
    image[:] = (image * (1 - mask) + face[..., None] * mask).astype(np.uint8)


def write_clip(
    path: str | Path,
    seconds: float = 2.0,
    fps: int = 25,
    size: tuple[int, int] = (320, 240),
    audio: bool = True,
    face: bool = True,
    moving: bool = True,
    audio_rate: int = 44_100,
) -> Path:
    """An MP4 with a drawn face drifting right and a moving square (if ``moving``), and a tone track."""
    av = require("av", "video", "Writing video")
    cv2 = require("cv2", "video", "Drawing synthetic video")
    width, height = size
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            video.options = {"preset": "ultrafast", "tune": "zerolatency"}
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=audio_rate)
            sound.layout = "stereo"
        frames = int(round(seconds * fps))
        for i in range(frames):
            image = np.full((height, width, 3), 60, np.uint8)
            step = i if moving else 0
            if face:
                draw_face(image, cx=width // 2 - 20 + step, cy=height // 2, mouth_open=(step // 3) % 4)
            x = 10 + (3 * step) % max(1, width - 40)
            cv2.rectangle(image, (x, 10), (x + 25, 35), (255, 255, 255), -1)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            t = np.arange(int(round(seconds * audio_rate))) / audio_rate
            tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
            stereo = np.stack([tone, tone])
            for start in range(0, stereo.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(stereo[:, start : start + 1024]), format="fltp", layout="stereo"
                )
                frame.sample_rate, frame.pts = audio_rate, start
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return Path(path)
