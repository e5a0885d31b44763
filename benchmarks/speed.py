"""End-to-end speed of ser-classic against reference-style librosa code and openSMILE.

One run, on the same RAVDESS clips (``--actors`` x ``--per-actor``, 240 by default), times
decode + resample + features for:

- ser-classic's :class:`~ser_classic.features.FeatureExtractor` with 1 and 2 local workers (no
  feature cache; the worker pool is started by a short warm-up run first), and with the dask
  backend on a 2-worker ``LocalCluster``;
- ``benchmarks/reference_features.py``, the way typical SER projects compute the same groups
  (one process, warmed up, on an evenly spread subset of ``--reference-clips`` clips);
- openSMILE eGeMAPSv02 and ComParE_2016 functionals (``opensmile`` package, ``num_workers=2``);

then runs the ``ser`` command as a child process: ``ser --help``, a cold one-clip ``ser predict``,
and ``ser predict`` over ``--many`` clips and over the whole corpus folder (wall time, clips/s,
peak resident memory of the process tree). The Markdown table goes to stdout and between the
``<!-- speed:begin -->`` / ``<!-- speed:end -->`` markers of ``--output``, with this command.

    python benchmarks/speed.py                                  # the README numbers (~6 min)
    python benchmarks/speed.py --skip-opensmile --skip-dask --repeat 1

The load average is printed with the numbers: other work on the machine slows every row.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("SER_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data")) / "ravdess"
BEGIN, END = "<!-- speed:begin -->", "<!-- speed:end -->"
#: The ``ser`` command, run by the interpreter running this script.
SER = [sys.executable, "-c", "from ser_classic.cli import main; main()"]


@dataclass
class Timing:
    """One row of the table: what ran, on how many clips, in how many seconds."""

    name: str
    clips: int
    seconds: float
    note: str = ""

    @property
    def clips_per_second(self) -> float:
        return self.clips / self.seconds


def select_clips(root: Path, actors: int, per_actor: int) -> list[str]:
    """``per_actor`` clips spread evenly over each of the first ``actors`` actors' sorted files."""
    clips = []
    for actor in range(1, actors + 1):
        files = sorted((root / f"Actor_{actor:02d}").glob("*.flac"))
        if len(files) < per_actor:
            raise SystemExit(f"{root / f'Actor_{actor:02d}'}: {len(files)} clips, {per_actor} needed")
        picks = np.linspace(0, len(files) - 1, per_actor).round().astype(int)
        clips += [str(files[i]) for i in picks]
    return clips


def best_time(run: Callable[[], object], repeat: int) -> float:
    """Shortest wall time of ``repeat`` calls (the least disturbed by other work)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def time_ser_classic(clips: list[str], jobs: int, repeat: int) -> Timing:
    from ser_classic.features import FeatureExtractor
    from ser_classic.parallel import MIN_ITEMS_PER_WORKER

    extractor = FeatureExtractor(n_jobs=jobs)
    extractor.extract_files(clips[: MIN_ITEMS_PER_WORKER * jobs])  # imports, numba caches, worker start-up
    seconds = best_time(lambda: extractor.extract_files(clips), repeat)
    return Timing(f"ser-classic, {jobs} worker{'s' if jobs > 1 else ''}", len(clips), seconds)


def time_ser_classic_dask(clips: list[str], workers: int, repeat: int) -> Timing:
    from ser_classic.features import FeatureExtractor
    from ser_classic.parallel import parallel_backend

    with parallel_backend("dask", n_workers=workers):
        extractor = FeatureExtractor(n_jobs=-1)
        extractor.extract_files(clips[: 4 * workers])
        seconds = best_time(lambda: extractor.extract_files(clips), repeat)
    return Timing(f"ser-classic, dask LocalCluster, {workers} workers", len(clips), seconds)


def time_reference(clips: list[str], n_clips: int) -> Timing:
    sys.path.insert(0, str(Path(__file__).parent))
    from reference_features import reference_features

    subset = [clips[i] for i in np.linspace(0, len(clips) - 1, n_clips).round().astype(int)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant-Q chroma warns about short signals per clip
        for path in clips[:2]:  # numba compilation and caches of pyin, HPSS, beat tracking
            reference_features(path)
        start = time.perf_counter()
        for path in subset:
            reference_features(path)
        seconds = time.perf_counter() - start
    return Timing("reference-style librosa, 1 process", n_clips, seconds, f"{n_clips} of the clips, warmed up")


def time_opensmile(clips: list[str], feature_set: str, workers: int, repeat: int) -> Timing:
    import opensmile

    smile = opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, feature_set),
        feature_level=opensmile.FeatureLevel.Functionals,
        mixdown=True,
        num_workers=workers,
    )
    smile.process_files(clips[: 2 * workers])
    seconds = best_time(lambda: smile.process_files(clips), repeat)
    return Timing(f"openSMILE {feature_set} functionals, num_workers={workers}", len(clips), seconds, "at 48 kHz")


def run_measured(command: Sequence[str], *, interval: float = 0.02) -> tuple[float, float, int]:
    """Run ``command``; its wall time (s), peak RSS of the whole process tree (MB, sampled
    every ``interval`` s) and exit code. Output is discarded."""
    import psutil

    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=PROJECT_ROOT)
    parent = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(interval)
    return time.perf_counter() - start, peak / 2**20, process.returncode


def median_wall(command: Sequence[str], runs: int) -> float:
    return statistics.median(run_measured(command)[0] for _ in range(runs))


def command_rows(root: Path, clips: list[str], many: int) -> tuple[list[Timing], list[str]]:
    """``ser`` as a user runs it: start-up, one clip, ``many`` clips, the whole folder."""
    rows, lines = [], []
    n_help = 5
    help_seconds = median_wall([*SER, "--help"], n_help)
    one_clip = median_wall([*SER, "predict", clips[0], "--format", "csv"], 3)
    lines.append(f"- `ser --help`: {help_seconds:.2f} s (median of {n_help} runs)")
    lines.append(f"- `ser predict` on one clip, new process: {one_clip:.2f} s (median of 3 runs)")
    total = len(list(root.rglob("*.flac")))
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "predictions.csv"
        few_seconds, few_rss, code_few = run_measured([*SER, "predict", *clips[:many], "--output", str(out)])
        all_seconds, all_rss, code_all = run_measured([*SER, "predict", str(root), "--output", str(out)])
    if code_few or code_all:
        raise SystemExit(f"ser predict failed (exit codes {code_few}, {code_all})")
    rows.append(Timing("`ser predict` folder, default jobs, new process", total, all_seconds, "includes start-up"))
    lines.append(
        f"- peak RSS of `ser predict` (process tree): {few_rss:.0f} MB over {many} clips, "
        f"{all_rss:.0f} MB over {total} clips (ratio {all_rss / few_rss:.2f})"
    )
    return rows, lines


def cpu_model() -> str:
    """The processor's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def table(rows: list[Timing], reference: Timing | None, opensmile: Timing | None) -> str:
    header = "| what (decode + resample + features) | clips | seconds | clips/s | vs reference | vs eGeMAPS | note |"
    out = [header, "|---|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        ratio_reference = f"{row.clips_per_second / reference.clips_per_second:.1f}x" if reference else ""
        ratio_smile = f"{row.clips_per_second / opensmile.clips_per_second:.1f}x" if opensmile else ""
        out.append(
            f"| {row.name} | {row.clips} | {row.seconds:.1f} | {row.clips_per_second:.1f} | "
            f"{ratio_reference} | {ratio_smile} | {row.note} |"
        )
    return "\n".join(out)


def write_section(output: Path, text: str) -> None:
    """Replace the text between the markers of ``output`` (or append it with the markers)."""
    section = f"{BEGIN}\n{text}\n{END}"
    old = output.read_text() if output.is_file() else ""
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + section + old[old.index(END) + len(END):]
    else:
        new = old + ("\n" if old else "") + section + "\n"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(new)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="RAVDESS speech folder (Actor_XX/*.flac).")
    parser.add_argument("--actors", type=int, default=10)
    parser.add_argument("--per-actor", type=int, default=24)
    parser.add_argument("--reference-clips", type=int, default=24, help="Clips timed with the slow reference code.")
    parser.add_argument("--many", type=int, default=100, help="Clips of the smaller `ser predict` memory run.")
    parser.add_argument("--repeat", type=int, default=2, help="Runs per fast system; the best is kept.")
    parser.add_argument("--skip-opensmile", action="store_true")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--skip-command", action="store_true", help="Skip the `ser` child-process runs.")
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "docs" / "readme" / "speed.md")
    args = parser.parse_args(argv)
    command = "python benchmarks/speed.py " + shlex.join(sys.argv[1:] if argv is None else argv)

    load_before = os.getloadavg()
    clips = select_clips(args.data, args.actors, args.per_actor)
    rows = [time_ser_classic(clips, 1, args.repeat), time_ser_classic(clips, 2, args.repeat)]
    if not args.skip_dask:
        rows.append(time_ser_classic_dask(clips, 2, args.repeat))
    reference = time_reference(clips, args.reference_clips)
    rows.append(reference)
    egemaps = None
    if not args.skip_opensmile:
        egemaps = time_opensmile(clips, "eGeMAPSv02", 2, args.repeat)
        rows += [egemaps, time_opensmile(clips, "ComParE_2016", 2, args.repeat)]
    lines: list[str] = []
    if not args.skip_command:
        command_timings, lines = command_rows(args.data, clips, args.many)
        rows += command_timings
    load_after = os.getloadavg()

    import ser_classic

    text = "\n".join(
        [
            f"{len(clips)} RAVDESS clips ({args.actors} actors x {args.per_actor}, 48 kHz FLAC, ~3.7 s each), "
            f"{os.cpu_count()} cores ({cpu_model()}), "
            f"ser-classic {ser_classic.__version__}, Python {platform.python_version()}; "
            f"best of {args.repeat} runs for the fast rows. "
            f"Load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; "
            f"after: {', '.join(f'{v:.2f}' for v in load_after)}.",
            "",
            table(rows, reference, egemaps),
            "",
            *lines,
            "",
            f"Measured with `{command}` on {time.strftime('%Y-%m-%d')}.",
        ]
    )
    print(text)
    write_section(args.output, text)


if __name__ == "__main__":
    main()
