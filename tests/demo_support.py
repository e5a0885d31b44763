"""Support for the demo's tests: the demo served for real in a child process, recordings
made of several RAVDESS clips, a models folder to serve and clips to adapt a model to."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import soundfile

__all__ = ["PROJECT_ROOT", "free_port", "labelled_clips", "models_folder", "serve", "write_concatenation"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Importing Gradio and the library on a busy 2-core machine can take a while.
START_TIMEOUT_SECONDS = 120.0


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve(
    command: Sequence[str], port: int, log_path: Path, *, environment: dict[str, str] | None = None, timeout_seconds: float = START_TIMEOUT_SECONDS
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``command`` (which must serve on ``port``), wait until it answers, stop it afterwards.

    Yields the base URL and the process. The server's output goes to ``log_path``, quoted in
    the failure when the server does not come up. ``environment``: variables set for it beside
    this process's (``benchmarks/demo_load.py`` gives its own Gradio folder).
    """
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **(environment or {})}
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(list(command), cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the demo exited with code {process.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the demo did not answer within {timeout_seconds:.0f} s:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_concatenation(paths: Sequence[Path], target: Path, silence_seconds: float = 1.0) -> None:
    """Write the clips one after the other, each followed by ``silence_seconds`` of silence."""
    sample_rate = soundfile.info(str(paths[0])).samplerate
    gap = np.zeros(int(silence_seconds * sample_rate), dtype=np.float32)
    parts = [part for path in paths for part in (soundfile.read(path, dtype="float32")[0], gap)]
    soundfile.write(target, np.concatenate(parts), sample_rate)


def models_folder(model: Path, folder: Path) -> Path:
    """``folder`` (made) holding ``model`` with its card and training table: a demo's ``--models-dir``."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in (model, model.with_suffix(".card.json"), model.with_name(f"{model.stem}.training.npz")):
        shutil.copy(source, folder / source.name)
    return folder


def labelled_clips(ravdess_root: Path, actors: Sequence[int], emotions: Sequence[str], per_actor: int) -> list[Path]:
    """RAVDESS clips (their names give the emotion and the actor): ``per_actor`` clips of each
    emotion code (``"05"``: angry) of each actor."""
    return [
        path
        for actor in actors
        for emotion in emotions
        for path in sorted((ravdess_root / f"Actor_{actor:02d}").glob(f"03-01-{emotion}-*.flac"))[:per_actor]
    ]
