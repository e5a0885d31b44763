"""Live listening: latency, CPU and memory of `ser listen` (writes docs/live.md's figures).

1. **Latency and CPU.** A recording of RAVDESS speech (actors 21-24; for each, three clips of
   each of four emotions, 0.3 s apart, 2 s of quiet noise between emotions; 16 kHz 16-bit WAV)
   goes through ``ser listen --input REC --realtime --format jsonl`` in a new process, as a
   microphone would deliver it. Each row's arrival on stdout is timed against the start of
   the stream (the ``listening to`` line on stderr, written just before the first block is
   read): **due -> row** is the delay after the end of the row's hop (when it falls due), over
   all rows; **window end -> row** the delay after the end of the window the row describes,
   over speech rows. **CPU** is the process's CPU time (user + system, psutil) from the start
   of the stream to its last row, over that wall time, in percent of one core.
2. **Memory.** ``ser listen --input BURSTS --format jsonl`` streams synthetic recordings (tone
   bursts between quiet noise, ``benchmarks/timeline_memory.py``; 16 kHz WAV) of each
   ``--minutes`` as fast as it reads, a new process each: its resident memory when its first
   row arrives (model loaded, extractor warmed up) and its peak resident memory (the kernel's
   ``ru_maxrss`` of the finished process). It runs in the interpreter that runs this script,
   with what that environment has installed (pandas imports pyarrow where it finds it).

    python benchmarks/live.py ../shared/data/ravdess                 # ~5 minutes; rewrites docs/live.md's section
    python benchmarks/live.py ../shared/data/ravdess --seconds 60 --minutes 5 --no-write

Other work on the machine delays rows and takes CPU time from them, so the load average is
printed with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from readme_section import write_section
from timeline_memory import write_tone_bursts

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SECTION = "live"
PAGE = PROJECT_ROOT / "docs" / "live.md"
EMOTIONS = ("05", "04", "03", "06")  # angry, sad, happy, fearful
ACTORS = ("21", "22", "23", "24")
RATE = 16000
#: The ``ser`` command of this checkout, in a new interpreter.
SER = [sys.executable, "-c", "from ser_classic.cli import main; main()"]


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}


def write_recording(ravdess: Path, path: Path, seconds: float | None) -> float:
    """The benchmark's recording (see the module docstring), cut to ``seconds``; its duration."""
    import soundfile

    from ser_classic import audio
    from ser_classic.features import FeatureConfig
    from ser_classic.features.conditioning import speech_band, speech_bounds

    config = FeatureConfig()
    rng = np.random.default_rng(0)
    parts = [1e-4 * rng.standard_normal(int(1.5 * RATE))]
    for actor in ACTORS:
        for code in EMOTIONS:
            for statement, repetition in ((1, 1), (2, 1), (1, 2)):
                clip = audio.load(ravdess / f"Actor_{actor}" / f"03-01-{code}-02-0{statement}-0{repetition}-{actor}.flac", sample_rate=RATE)
                analysed = audio.resample(clip, RATE, config.sample_rate)
                start, end = speech_bounds(speech_band(analysed, config), config)
                parts += [clip[start * RATE // config.sample_rate : end * RATE // config.sample_rate], 1e-4 * rng.standard_normal(int(0.3 * RATE))]
            parts.append(1e-4 * rng.standard_normal(int(1.7 * RATE)))
    signal = np.concatenate(parts)
    if seconds is not None:
        signal = signal[: int(seconds * RATE)]
    soundfile.write(path, signal, RATE, subtype="PCM_16")
    return signal.size / RATE


def realtime_run(recording: Path, duration: float, hop: float, model: str | None) -> dict:
    """``ser listen --realtime`` on the recording: row delays and CPU (see the module docstring)."""
    import psutil

    command = [*SER, "listen", "--input", str(recording), "--realtime", "--format", "jsonl", "--hop", str(hop), *(["--model", model] if model else [])]
    process = psutil.Popen(command, cwd=PROJECT_ROOT, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    arrivals: list[tuple[float, dict]] = []
    started: list[tuple[float, float]] = []  # (wall, cpu seconds) at the stream's start
    last_cpu: list[tuple[float, float]] = []
    errors: list[str] = []

    def cpu_seconds() -> float:
        times = process.cpu_times()
        return times.user + times.system

    def read_errors() -> None:
        for line in iter(process.stderr.readline, b""):
            if b"listening to" in line and not started:
                started.append((time.monotonic(), cpu_seconds()))
            errors.append(line.decode())

    reader = threading.Thread(target=read_errors)
    reader.start()
    for line in iter(process.stdout.readline, b""):
        arrivals.append((time.monotonic(), json.loads(line)))
        try:
            last_cpu.append((time.monotonic(), cpu_seconds()))
        except psutil.NoSuchProcess:
            pass
    process.wait()
    ended = time.monotonic()
    reader.join()
    if process.returncode != 0 or not started:
        raise SystemExit(f"ser listen failed ({process.returncode}):\n{''.join(errors)[-3000:]}")
    start_wall, start_cpu = started[0]
    due = np.minimum(hop * np.arange(1, len(arrivals) + 1), duration)
    due_delays = np.array([moment - start_wall for moment, _ in arrivals]) - due
    window_delays = np.array([moment - start_wall - row["end"] for moment, row in arrivals if row["speech"]])
    going_on = np.array([moment - start_wall - row["end"] for (moment, row), when in zip(arrivals, due) if row["speech"] and abs(row["end"] - when) < 1e-3])
    wall, cpu = last_cpu[-1][0] - start_wall, last_cpu[-1][1] - start_cpu
    return {
        "seconds": round(duration, 1),
        "hop_seconds": hop,
        "rows": len(arrivals),
        "speech_rows": int(sum(row["speech"] for _, row in arrivals)),
        "due_to_row_ms": {"median": round(1000 * float(np.median(due_delays))), "p95": round(1000 * float(np.percentile(due_delays, 95))), "max": round(1000 * float(due_delays.max()))},
        "window_end_to_row_ms": {"median": round(1000 * float(np.median(window_delays))), "p95": round(1000 * float(np.percentile(window_delays, 95)))},
        "speech_going_on_window_end_to_row_ms": {"median": round(1000 * float(np.median(going_on))), "p95": round(1000 * float(np.percentile(going_on, 95))), "rows": int(going_on.size)},
        "cpu_percent_of_one_core": round(100 * cpu / wall, 1),
        "ended_after_audio_s": round(ended - start_wall - duration, 2),
    }


def memory_run(minutes: float, workdir: Path, model: str | None) -> dict:
    """``ser listen --input BURSTS --format jsonl`` in a new process, as fast as it reads: its
    rows, its resident memory when the first row arrives and its peak (the kernel's
    ``ru_maxrss`` of the finished child, from ``os.wait4``)."""
    import psutil

    recording = workdir / f"bursts-{minutes:g}min.wav"
    write_tone_bursts(recording, minutes * 60)
    errors = workdir / "memory-run.err"
    command = [*SER, "listen", "--input", str(recording), "--format", "jsonl", *(["--model", model] if model else [])]
    with errors.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=_environment(), stdout=subprocess.PIPE, stderr=stderr)
        count = speech = 0
        first_row_mb = 0.0
        started = time.monotonic()
        for line in process.stdout:
            if count == 0:
                first_row_mb = psutil.Process(process.pid).memory_info().rss / 2**20
            count += 1
            speech += bool(json.loads(line)["speech"])
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"the {minutes} min run failed:\n{errors.read_text()[-3000:]}")
    return {"minutes": minutes, "rows": count, "speech_rows": speech, "first_row_mb": round(first_row_mb, 1),
            "stream_seconds": round(time.monotonic() - started, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def render(realtime: dict, memory: list[dict], load_before: tuple, load_after: tuple) -> str:
    delays, windows, going_on = realtime["due_to_row_ms"], realtime["window_end_to_row_ms"], realtime["speech_going_on_window_end_to_row_ms"]
    lines = [
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other work, Python {platform.python_version()}. "
        f"Load average (1, 5, 15 min) before: {', '.join(f'{value:.2f}' for value in load_before)}; "
        f"after: {', '.join(f'{value:.2f}' for value in load_after)}.",
        "",
        f"`ser listen --input REC --realtime` on {realtime['seconds']:g} s of speech and pauses, hop {realtime['hop_seconds']:g} s, "
        f"window 3 s: {realtime['rows']} rows, {realtime['speech_rows']} of them speech.",
        "",
        "| measure | median | 95th percentile | goal |",
        "|---|---:|---:|---|",
        f"| due -> row (end of the hop to the row on stdout), all {realtime['rows']} rows | {delays['median']} ms | {delays['p95']} ms | |",
        f"| window end -> row, the {going_on['rows']} speech rows whose speech goes on at the hop's end | {going_on['median']} ms | {going_on['p95']} ms | <= 150 ms / 300 ms |",
        f"| window end -> row, all {realtime['speech_rows']} speech rows (a window that ends with the speech waits for its hop's end) | {windows['median']} ms | {windows['p95']} ms | |",
        "",
        f"CPU while listening: **{realtime['cpu_percent_of_one_core']:g}% of one core** (goal <= 15%). The run ended "
        f"{realtime['ended_after_audio_s']:+.2f} s after the audio did; the latest row came {delays['max']} ms after its due time.",
        "",
        "`ser listen --input BURSTS --format jsonl`, streamed as fast as it reads, a new process each:",
        "",
        "| streamed | rows | speech rows | time | resident at the first row | peak resident |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {run['minutes']:g} min of tone bursts | {run['rows']} | {run['speech_rows']} | {run['stream_seconds']:.0f} s | "
        f"{run['first_row_mb']:.0f} MB | **{run['peak_rss_mb']:.0f} MB** |"
        for run in memory
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ravdess", type=Path, help="The RAVDESS folder (Actor_XX/*.flac).")
    parser.add_argument("--seconds", type=float, default=None, help="Cut the realtime recording to this many seconds (default: all of it, 136 s).")
    parser.add_argument("--hop", type=float, default=1.0)
    parser.add_argument("--minutes", type=float, nargs="+", default=[5.0, 60.0], help="Lengths of the memory runs.")
    parser.add_argument("--model", default=None, help="Model file or bundled name (default: the bundled default).")
    parser.add_argument("--out", type=Path, default=PAGE)
    parser.add_argument("--no-write", action="store_true", help="Print the section only.")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ser-live-bench-") as folder:
        workdir = Path(folder)
        recording = workdir / "speech.wav"
        duration = write_recording(args.ravdess, recording, args.seconds)
        realtime = realtime_run(recording, duration, args.hop, args.model)
        print(json.dumps(realtime), flush=True)
        memory = []
        for minutes in args.minutes:
            memory.append(memory_run(minutes, workdir, args.model))
            print(json.dumps(memory[-1]), flush=True)
    text = render(realtime, memory, load_before, os.getloadavg())
    print(text)
    if not args.no_write:
        write_section(args.out, SECTION, text)


if __name__ == "__main__":
    main()
