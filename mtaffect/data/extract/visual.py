"""Visual features: OpenCV Haar-cascade face detection + appearance and motion descriptors.

Everything here installs from PyPI and runs offline: ``opencv-python-headless`` 4.x ships
the Haar cascades (``cv2.data.haarcascades``) and the HOG descriptor (OpenCV 5 dropped both
from the main package, hence the ``<5`` pin). Frames are sampled at a fixed rate (5 fps by
default) and each sampled frame gives one 161-d row (see ``FEATURE_NAMES``):

* face presence, number of faces, the largest face's box (centre, size, as fractions of
  the frame) and its change since the previous sampled frame (head movement / zoom);
* appearance of that face: mean and spread of its grey levels, and a 144-d HOG (gradient
  orientation histograms over a 64x64 crop: 2x2 blocks of 2x2 cells of 16 px, 9 bins) —
  coarse shape of brows, eyes, mouth and head pose;
* two crude expression cues from OpenCV's eye and smile cascades (eyes found in the upper
  face, a smile found in the lower face);
* motion energy: mean absolute grey-level change of the whole frame, of the face crop,
  and of its upper and lower halves (the lower half moves when someone talks or smiles).

What these features do **not** capture: facial action units, landmarks, gaze, or any
identity-invariant expression representation (HOG mixes identity, pose, lighting and
expression); only frontal faces are found reliably; with several people in the frame only
the largest face is described, which is not necessarily the speaker (MELD, MUStARD show
several); nothing here was trained on affect. They are a transparent, dependency-light
baseline comparable in spirit to the Facet/OpenFace features of the CMU corpora, not a
replacement for them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtaffect.data.extract.base import ExtractionError, Extractor, require
from mtaffect.data.extract.media import iter_video_frames

logger = logging.getLogger(__name__)

_FACE_SIZE = 64
_SUB_FACE_SIZE = 128  # eye/smile cascades need more pixels than the HOG crop
_HOG_ARGS = ((_FACE_SIZE, _FACE_SIZE), (32, 32), (32, 32), (16, 16), 9)
HOG_DIM = 144
_MOTION_WIDTH = 160

FEATURE_NAMES: tuple[str, ...] = (
    "face_present",
    "num_faces",
    "face_center_x",
    "face_center_y",
    "face_width",
    "face_height",
    "face_delta_x",
    "face_delta_y",
    "face_delta_log_scale",
    "face_intensity_mean",
    "face_intensity_std",
    "eyes_detected",
    "smile_detected",
    "frame_motion",
    "face_motion",
    "upper_face_motion",
    "lower_face_motion",
    *(f"face_hog_{i}" for i in range(HOG_DIM)),
)


class VisualExtractor(Extractor):
    """Video files -> ``[T, 161]`` per-frame face/appearance/motion features at ``fps``.

    Args:
        fps (`float`, defaults to 5.0):
            Frames sampled per second of video (one output row each).
        detect_width (`int`, defaults to 480):
            Frames wider than this are downscaled for face detection (speed); crops are
            taken from the full-resolution frame.
        min_face_fraction (`float`, defaults to 0.08):
            Smallest face searched for, as a fraction of the frame's shorter side.

    Examples:
        >>> VisualExtractor().dim  # doctest: +SKIP
        161
    """

    modality = "visual"

    def __init__(self, fps: float = 5.0, detect_width: int = 480, min_face_fraction: float = 0.08) -> None:
        cv2 = require("cv2", "video", "The OpenCV visual extractor")
        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "HOGDescriptor"):
            raise ImportError(
                f"OpenCV {cv2.__version__} has no CascadeClassifier/HOGDescriptor (removed in OpenCV 5): "
                "pip install 'opencv-python-headless>=4.8,<5'"
            )
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}.")
        if detect_width < 64:
            raise ValueError(f"detect_width must be >= 64 pixels, got {detect_width}.")
        if not 0 < min_face_fraction < 1:
            raise ValueError(f"min_face_fraction must lie in (0, 1), got {min_face_fraction}.")
        self.fps = float(fps)
        self.detect_width = int(detect_width)
        self.min_face_fraction = float(min_face_fraction)
        self._cv2 = cv2
        self._face = _cascade(cv2, "haarcascade_frontalface_default.xml")
        self._eyes = _cascade(cv2, "haarcascade_eye.xml")
        self._smile = _cascade(cv2, "haarcascade_smile.xml")
        self._hog = cv2.HOGDescriptor(*_HOG_ARGS)
        self.name = f"visual:opencv-haar-hog:{self.fps:g}fps"
        self.dim = len(FEATURE_NAMES)
        self.step = f"{1000 / self.fps:g}ms"
        self.frame_rate = self.fps

    def config(self) -> dict[str, Any]:
        return {"fps": self.fps, "detect_width": self.detect_width, "min_face_fraction": self.min_face_fraction}

    def details(self) -> dict[str, Any]:
        return {
            "feature_names": list(FEATURE_NAMES),
            "captures": "largest frontal face: presence, box and its motion, grey-level stats, 144-d HOG "
            "of a 64x64 crop, eye/smile cascade hits; frame, face, upper- and lower-face motion energy",
            "does_not_capture": "action units, landmarks, gaze, identity-invariant expression; "
            "profile faces; which visible person is speaking",
            "versions": {"opencv": self._cv2.__version__},
        }

    def __call__(self, items: Sequence[str | Path]) -> list[np.ndarray]:
        return [self.extract_one(item) for item in items]

    def extract_one(self, path: str | Path) -> np.ndarray:
        """Per-frame features of one video file."""
        state: dict[str, Any] = {}
        rows = [self._frame_features(frame, state) for _, frame in iter_video_frames(path, self.fps)]
        if not rows:
            raise ExtractionError(path, "no decodable video frames")
        return self.check_output(path, np.stack(rows))

    def _frame_features(self, frame: np.ndarray, state: dict[str, Any]) -> np.ndarray:
        cv2 = self._cv2
        features = np.zeros(self.dim, dtype=np.float32)
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        height, width = gray.shape

        motion_height = max(1, round(_MOTION_WIDTH * height / width))
        thumb = cv2.resize(gray, (_MOTION_WIDTH, motion_height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        if state.get("thumb") is not None:
            features[13] = np.abs(thumb - state["thumb"]).mean()
        state["thumb"] = thumb

        scale = min(1.0, self.detect_width / width)
        small = gray if scale == 1.0 else cv2.resize(
            gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
        )
        min_side = max(20, round(self.min_face_fraction * min(small.shape)))
        faces = self._face.detectMultiScale(
            cv2.equalizeHist(small), scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
        )
        if len(faces) == 0:
            state["face"] = None
            return features
        # Largest face; ties broken by position so the choice is deterministic.
        x, y, w, h = max((tuple(int(v) for v in face) for face in faces), key=lambda b: (b[2] * b[3], -b[0], -b[1]))
        sh, sw = small.shape
        box = ((x + w / 2) / sw, (y + h / 2) / sh, w / sw, h / sh)
        x0, y0 = int(x / scale), int(y / scale)
        x1, y1 = min(width, int(math.ceil((x + w) / scale))), min(height, int(math.ceil((y + h) / scale)))
        crop = gray[y0:y1, x0:x1]
        face = cv2.resize(crop, (_FACE_SIZE, _FACE_SIZE), interpolation=cv2.INTER_AREA)
        face_f = face.astype(np.float32) / 255

        features[0] = 1.0
        features[1] = len(faces)
        features[2:6] = box
        previous = state.get("face")
        if previous is not None:
            prev_box, prev_face = previous
            features[6] = box[0] - prev_box[0]
            features[7] = box[1] - prev_box[1]
            features[8] = math.log(box[2] / prev_box[2])
            diff = np.abs(face_f - prev_face)
            half = _FACE_SIZE // 2
            features[14] = diff.mean()
            features[15] = diff[:half].mean()
            features[16] = diff[half:].mean()
        state["face"] = (box, face_f)
        features[9] = face_f.mean()
        features[10] = face_f.std()

        big = cv2.equalizeHist(cv2.resize(crop, (_SUB_FACE_SIZE, _SUB_FACE_SIZE), interpolation=cv2.INTER_AREA))
        half = _SUB_FACE_SIZE // 2
        eyes = self._eyes.detectMultiScale(big[: half + 8], scaleFactor=1.1, minNeighbors=5, minSize=(12, 12))
        smiles = self._smile.detectMultiScale(big[half:], scaleFactor=1.5, minNeighbors=15, minSize=(20, 10))
        features[11] = min(len(eyes), 2)
        features[12] = 1.0 if len(smiles) else 0.0
        features[17:] = self._hog.compute(face).reshape(-1)
        return features


def _cascade(cv2: Any, filename: str) -> Any:
    path = Path(cv2.data.haarcascades) / filename
    classifier = cv2.CascadeClassifier(str(path))
    if classifier.empty():
        raise FileNotFoundError(
            f"{path}: OpenCV's Haar cascade is missing or unreadable; reinstall opencv-python-headless (>=4.8,<5)."
        )
    return classifier
