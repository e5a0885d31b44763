"""Peak memory of `ser timeline` on long synthetic recordings.

Writes a recording of the given length (16 kHz, block by block: harmonic tone bursts with
vibrato between quiet noise) as a 16-bit WAV or, with ``--format m4a``, as AAC (64 kbit/s,
PyAV's encoder) in an M4A, runs `ser timeline` on it in a child process and reports the child's
peak resident memory (``ru_maxrss`` from ``wait4``) and wall time, one JSON line per duration.
The recording is streamed, so the peak should not grow with duration.

    python benchmarks/timeline_memory.py --minutes 60            # the 1-hour acceptance run
    python benchmarks/timeline_memory.py --minutes 5 60 --format m4a
    python benchmarks/timeline_memory.py --minutes 1 10 --model ser_classic/bundled/ser-default.joblib

Exit code 1 when a run fails or exceeds ``--limit-mb``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
BURST_SECONDS = 2.0
PERIOD_SECONDS = 20.0


def tone_bursts(seconds: float, *, seed: int = 0) -> Iterator[np.ndarray]:
    """``seconds`` of signal, one ``PERIOD_SECONDS`` block at a time: a ``BURST_SECONDS``
    voiced-like tone burst (120-220 Hz fundamental with vibrato, 5 harmonics), then quiet noise
    (-70 dBFS)."""
    rng = np.random.default_rng(seed)
    period = int(PERIOD_SECONDS * SAMPLE_RATE)
    burst = int(BURST_SECONDS * SAMPLE_RATE)
    time_axis = np.arange(burst) / SAMPLE_RATE
    envelope = np.minimum(1.0, np.minimum(time_axis, time_axis[::-1]) / 0.05)
    remaining = int(seconds * SAMPLE_RATE)
    while remaining > 0:
        block = 3e-4 * rng.standard_normal(period)
        f0 = rng.uniform(120, 220) * (1 + 0.03 * np.sin(2 * np.pi * 5 * time_axis))
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        tone = sum(0.25 / k * np.sin(k * phase) for k in range(1, 6))
        block[:burst] += rng.uniform(0.3, 1.0) * envelope * tone
        yield block[: min(period, remaining)]
        remaining -= period


def write_tone_bursts(path: Path, seconds: float, *, seed: int = 0) -> int:
    """Write :func:`tone_bursts` as a 16-bit WAV, or as AAC when ``path`` ends in ``.m4a``,
    block by block. Returns the number of bursts."""
    blocks = tone_bursts(seconds, seed=seed)
    if path.suffix == ".m4a":
        return _write_aac(path, blocks)
    import soundfile

    n_bursts = 0
    with soundfile.SoundFile(path, "w", samplerate=SAMPLE_RATE, channels=1, subtype="PCM_16") as sound:
        for n_bursts, block in enumerate(blocks, start=1):
            sound.write(block)
    return n_bursts


def _write_aac(path: Path, blocks: Iterator[np.ndarray]) -> int:
    """AAC at 64 kbit/s in an M4A (PyAV's encoder), block by block; the number of blocks."""
    import av

    n_bursts = 0
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = 64000
        for n_bursts, block in enumerate(blocks, start=1):
            frame = av.AudioFrame.from_ndarray(block.astype(np.float32)[None, :], format="fltp", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return n_bursts


def run_timeline(recording: Path, output: Path, model: Path | None, jobs: int) -> dict[str, float]:
    """Run `ser timeline` as a child; its exit code, peak RSS (MB) and wall time (s)."""
    command = [
        sys.executable,
        "-c",
        "from ser_classic.cli import main; main()",
        "timeline",
        str(recording),
        "--output",
        str(output),
        "--jobs",
        str(jobs),
    ]
    if model is not None:
        command += ["--model", str(model)]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)  # the rusage of this child alone
    child.returncode = os.waitstatus_to_exitcode(status)
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    return {
        "exit_code": child.returncode,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kB on Linux
        "wall_seconds": time.perf_counter() - started,
        "stderr_tail": stderr.strip().splitlines()[-1] if child.returncode and stderr.strip() else "",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[60.0])
    parser.add_argument("--model", type=Path, default=None, help="Model file; the bundled one by default.")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--format", choices=["wav", "m4a"], default="wav", help="Container of the recording.")
    parser.add_argument("--limit-mb", type=float, default=1024.0)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="Where the recordings go (a temporary folder by default)."
    )
    arguments = parser.parse_args()

    failed = False
    with tempfile.TemporaryDirectory(dir=arguments.workdir) as folder:
        for minutes in arguments.minutes:
            recording = Path(folder) / f"bursts-{minutes:g}min.{arguments.format}"
            bursts = write_tone_bursts(recording, minutes * 60)
            result = run_timeline(recording, Path(folder) / "timeline.csv", arguments.model, arguments.jobs)
            rows = len((Path(folder) / "timeline.csv").read_text().splitlines()) - 1 if result["exit_code"] == 0 else 0
            report = {
                "minutes": minutes,
                "format": arguments.format,
                "file_mb": round(recording.stat().st_size / 2**20, 1),
                "bursts": bursts,
                "rows": rows,
                **{key: round(value, 1) if isinstance(value, float) else value for key, value in result.items()},
            }
            print(json.dumps(report), flush=True)
            failed |= result["exit_code"] != 0 or result["peak_rss_mb"] > arguments.limit_mb
            recording.unlink()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
