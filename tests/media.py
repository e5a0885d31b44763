"""Audio and video files written with PyAV's own encoders (FFmpeg inside the wheel), never committed.

:func:`write_encoded` puts a signal into any container FFmpeg writes (AAC in M4A/MP4, Opus in
WebM, PCM in MOV, AMR, WMA, ...), optionally beside a small video track; :func:`write_video_only`
writes a video without any audio track.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import av.container
    import av.video.stream

__all__ = ["write_encoded", "write_video_only"]

_VIDEO_SIZE = (64, 48)
_VIDEO_FPS = 10


def write_encoded(
    path: str | os.PathLike[str],
    signal: np.ndarray,
    sample_rate: int,
    codec: str,
    *,
    bit_rate: int | None = None,
    codec_rate: int | None = None,
    with_video: bool = False,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode ``signal`` (``(n,)`` mono or ``(n, channels)``, float in [-1, 1]) with ``codec``.

    ``codec_rate`` resamples first (Opus needs 48 kHz, AMR-NB 8 kHz); ``options`` go to the
    muxer (e.g. ``{"movflags": "faststart"}``). The container follows the file name's ending.
    """
    import av
    import soxr

    samples = np.asarray(signal, dtype=np.float32)
    samples = samples[:, None] if samples.ndim == 1 else samples
    rate = codec_rate or sample_rate
    if rate != sample_rate:
        samples = soxr.resample(samples, sample_rate, rate).astype(np.float32).reshape(-1, samples.shape[1])
    layout = {1: "mono", 2: "stereo"}[samples.shape[1]]
    with av.open(str(path), "w", options=options or {}) as container:
        video = _add_video(container) if with_video else None
        stream = container.add_stream(codec, rate=rate, layout=layout)
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        if video is not None:
            _write_video(container, video, seconds=samples.shape[0] / rate)
        step = 4096
        for start in range(0, samples.shape[0], step):
            planes = np.ascontiguousarray(samples[start : start + step].T)
            frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout=layout)
            frame.sample_rate = rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return Path(path)


def write_video_only(path: str | os.PathLike[str], seconds: float = 2.0) -> Path:
    """A small MPEG-4 video (grey frames) without any audio track."""
    import av

    with av.open(str(path), "w") as container:
        _write_video(container, _add_video(container), seconds)
    return Path(path)


def _add_video(container: av.container.OutputContainer) -> av.video.stream.VideoStream:
    stream = container.add_stream("mpeg4", rate=_VIDEO_FPS)
    stream.width, stream.height = _VIDEO_SIZE
    stream.pix_fmt = "yuv420p"
    return stream


def _write_video(container: av.container.OutputContainer, stream: av.video.stream.VideoStream, seconds: float) -> None:
    import av

    width, height = _VIDEO_SIZE
    for index in range(max(1, round(seconds * _VIDEO_FPS))):
        picture = np.full((height, width, 3), (index * 10) % 256, dtype=np.uint8)
        container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
    container.mux(stream.encode(None))
