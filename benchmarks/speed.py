"""End-to-end speed of ser-classic against reference-style librosa code and openSMILE.

One run, on the same RAVDESS clips (``--actors`` x ``--per-actor``, 240 by default), times
decode + resample + features for:

- ser-classic's :class:`~ser_classic.features.FeatureExtractor` with 1 and 2 local workers and
  with the dask backend on a ``LocalCluster`` of 1 and 2 workers (no feature cache; pools and
  clusters are started by a short warm-up run first);
- ``benchmarks/reference_features.py``, the way typical SER projects compute the same feature families
  (one process, warmed up, on an evenly spread subset of ``--reference-clips`` clips);
- openSMILE eGeMAPSv02 and ComParE_2016 functionals (``opensmile`` package, ``num_workers=2``);

then runs the ``ser`` command as a child process: ``ser --help``, a one-clip ``ser predict`` in a
new process, ``ser features`` on a folder of the same clips with an empty cache (``--jobs 2``),
and ``ser predict`` over ``--many`` clips (default and ``--jobs 2``) and over the whole corpus
folder (wall time, clips/s, peak resident memory of the process tree and of its largest
process). The Markdown tables and issues 7's and 14's targets go to stdout and between the
``<!-- speed:begin -->`` / ``<!-- speed:end -->`` markers of ``--output``, with this command.

    python benchmarks/speed.py                                  # the numbers of docs/speed.md (~3 min)
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
from readme_section import write_section

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("SER_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data")) / "ravdess"
#: The ``ser`` command as users run it: the console script installed beside the interpreter
#: running this script (else the same entry point through ``-c``).
_SCRIPT = Path(sys.executable).with_name("ser")
SER = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-c", "from ser_classic.cli import main; main()"]
#: New ``ser features`` processes timed for the end-to-end row (the median is reported).
FEATURES_RUNS = 3


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

    extractor = FeatureExtractor(n_jobs=jobs)
    extractor.extract_files(clips[: 4 * jobs])  # imports, numba caches, worker start-up
    seconds = best_time(lambda: extractor.extract_files(clips), repeat)
    return Timing(f"ser-classic, {jobs} worker{'s' if jobs > 1 else ''}", len(clips), seconds)


def time_ser_classic_dask(clips: list[str], workers: int, repeat: int) -> Timing:
    from ser_classic.features import FeatureExtractor
    from ser_classic.parallel import parallel_backend

    with parallel_backend("dask", n_workers=workers):
        extractor = FeatureExtractor(n_jobs=-1)
        extractor.extract_files(clips[: 4 * workers])
        seconds = best_time(lambda: extractor.extract_files(clips), repeat)
    return Timing(f"ser-classic, dask LocalCluster, {workers} worker{'s' if workers > 1 else ''}", len(clips), seconds)


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


@dataclass
class Measured:
    """A finished child process: wall time, peak resident memory, exit code."""

    seconds: float
    tree_rss_mb: float  # peak of the summed RSS of the process and all its descendants
    largest_rss_mb: float  # peak RSS of any single one of them
    returncode: int


def run_measured(command: Sequence[str], *, interval: float = 0.02) -> Measured:
    """Run ``command`` (output discarded), sampling its process tree's memory every ``interval`` s."""
    import psutil

    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=PROJECT_ROOT)
    parent = psutil.Process(process.pid)
    tree_peak = largest_peak = 0
    while process.poll() is None:
        try:
            sizes = [p.memory_info().rss for p in [parent, *parent.children(recursive=True)]]
        except psutil.Error:  # a process ended between listing and reading
            sizes = []
        tree_peak, largest_peak = max(tree_peak, sum(sizes)), max(largest_peak, *sizes, 0)
        time.sleep(interval)
    return Measured(time.perf_counter() - start, tree_peak / 2**20, largest_peak / 2**20, process.returncode)


def median_wall(command: Sequence[str], runs: int) -> float:
    """Median wall time of ``runs`` runs of ``command`` (no memory sampling, which costs CPU)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=PROJECT_ROOT, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass
class CommandRun:
    """``ser`` as a user runs it, in child processes."""

    help_seconds: float
    one_clip_seconds: float
    features: Timing
    folder: Timing
    few_clips: int
    few_default: Measured  # ``--jobs -1``: few files run in the command's own process
    few_two_jobs: Measured  # ``--jobs 2``: the same three processes as the whole folder
    all_default: Measured


def features_run(clips: list[str]) -> Timing:
    """``ser features DIR --output f.csv --jobs 2`` in a new process, on a folder of links to the
    clips, with an empty feature cache: start-up, extraction and writing the table. The median
    of :data:`FEATURES_RUNS` runs, each with a new empty cache."""
    times = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "clips"
        folder.mkdir()
        for clip in clips:
            (folder / Path(clip).name).symlink_to(clip)
        for run in range(FEATURES_RUNS):
            cache = Path(scratch) / f"cache-{run}"
            command = [*SER, "features", str(folder), "--output", str(Path(scratch) / "f.csv"), "--jobs", "2", "--cache-dir", str(cache)]
            start = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=PROJECT_ROOT, check=True)
            times.append(time.perf_counter() - start)
    return Timing(
        "`ser features DIR --output f.csv --jobs 2` (empty cache), new process", len(clips), statistics.median(times),
        f"start-up included; median of {FEATURES_RUNS}",
    )


def command_runs(root: Path, clips: list[str], many: int, model: list[str]) -> CommandRun:
    """Start-up, one clip, ``ser features`` on the clips, ``many`` clips and the whole folder (with
    peak memory); ``model`` is ``[]`` (the bundled one) or ``["--model", PATH]``."""
    help_seconds = median_wall([*SER, "--help"], 5)
    one_clip = median_wall([*SER, "predict", clips[0], "--format", "csv", *model], 5)
    features = features_run(clips)
    total = len(list(root.rglob("*.flac")))
    with tempfile.TemporaryDirectory() as scratch:
        out = ["--output", str(Path(scratch) / "predictions.csv"), *model]
        few_default = run_measured([*SER, "predict", *clips[:many], *out])
        few_two_jobs = run_measured([*SER, "predict", *clips[:many], "--jobs", "2", *out])
        all_default = run_measured([*SER, "predict", str(root), *out])
    codes = [run.returncode for run in (few_default, few_two_jobs, all_default)]
    if any(codes):
        raise SystemExit(f"ser predict failed (exit codes {codes})")
    folder = Timing("`ser predict FOLDER` (default `--jobs -1`), new process", total, all_default.seconds, "start-up included")
    return CommandRun(help_seconds, one_clip, features, folder, many, few_default, few_two_jobs, all_default)


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


def scaling_table(local: list[Timing], dask: list[Timing]) -> str:
    """Clips/s and speed-up over one worker, per backend, for 1, 2, ... workers."""
    out = ["| workers | local pool, clips/s | speed-up | dask LocalCluster, clips/s | speed-up |", "|---:|---:|---:|---:|---:|"]
    for n, row in enumerate(local, start=1):
        cells = [f"{row.clips_per_second:.1f}", f"{row.clips_per_second / local[0].clips_per_second:.2f}x"]
        if dask:
            cells += [f"{dask[n - 1].clips_per_second:.1f}", f"{dask[n - 1].clips_per_second / dask[0].clips_per_second:.2f}x"]
        else:
            cells += ["", ""]
        out.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _verdict(ok: bool) -> str:
    return "holds" if ok else "**does not hold**"


def acceptance(two_workers: Timing, reference: Timing, egemaps: Timing | None, run: CommandRun | None) -> list[str]:
    """Issue 7's targets against this run's numbers."""
    rate = two_workers.clips_per_second
    lines = [
        f"- >= 100 clips/s on 2 cores: {rate:.0f} clips/s, {_verdict(rate >= 100)}",
        f"- >= 40x the reference-style code: {rate / reference.clips_per_second:.0f}x, "
        f"{_verdict(rate >= 40 * reference.clips_per_second)}",
    ]
    if egemaps is not None:
        ratio = rate / egemaps.clips_per_second
        lines.append(f"- >= 5x openSMILE eGeMAPS: {ratio:.1f}x, {_verdict(ratio >= 5)}")
    if run is not None:
        same_layout = run.all_default.tree_rss_mb / run.few_two_jobs.tree_rss_mb
        largest = run.all_default.largest_rss_mb / run.few_default.largest_rss_mb
        lines += [
            f"- `ser --help` <= 0.5 s: {run.help_seconds:.2f} s (median of 5), {_verdict(run.help_seconds <= 0.5)}",
            f"- one-clip `ser predict` <= 2 s, new process: {run.one_clip_seconds:.2f} s (median of 5), "
            f"{_verdict(run.one_clip_seconds <= 2)}",
            f"- peak RSS of `ser predict` over {run.folder.clips} clips within 1.5x of {run.few_clips} clips, "
            f"same two workers (process tree; `--jobs 2` for the {run.few_clips}): "
            f"{run.all_default.tree_rss_mb:.0f} MB vs {run.few_two_jobs.tree_rss_mb:.0f} MB ({same_layout:.2f}x), "
            f"{_verdict(same_layout <= 1.5)}; largest single process with the default `--jobs -1`: "
            f"{run.all_default.largest_rss_mb:.0f} MB vs {run.few_default.largest_rss_mb:.0f} MB ({largest:.2f}x), "
            f"{_verdict(largest <= 1.5)}. With `--jobs -1` the {run.few_clips} clips run in one process "
            f"({run.few_default.tree_rss_mb:.0f} MB) and the {run.folder.clips} in three "
            f"({run.all_default.tree_rss_mb:.0f} MB in all): memory follows the number of workers, not of files",
        ]
    return lines


def command_acceptance(run: CommandRun, reference: Timing, egemaps: Timing | None) -> list[str]:
    """Issue 14's targets: the commands end to end, a new process each, start-up included."""
    rate = run.features.clips_per_second
    lines = [
        f"- `ser features` on {run.features.clips} clips no cache has seen, 2 workers, >= 60 clips/s end to end: "
        f"{rate:.1f} clips/s ({run.features.seconds:.2f} s), {_verdict(rate >= 60)}",
        f"- the same >= 30x the reference-style code: {rate / reference.clips_per_second:.0f}x, "
        f"{_verdict(rate >= 30 * reference.clips_per_second)}",
    ]
    if egemaps is not None:
        ratio = rate / egemaps.clips_per_second
        lines.append(f"- the same >= 3x openSMILE eGeMAPS: {ratio:.2f}x, {_verdict(ratio >= 3)}")
    folder = run.folder.clips_per_second
    lines.append(
        f"- `ser predict` over the {run.folder.clips} clips >= 100 clips/s end to end: {folder:.1f} clips/s "
        f"({run.folder.seconds:.1f} s), {_verdict(folder >= 100)}"
    )
    return lines


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
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "speed.md", help="File whose speed section is rewritten.")
    parser.add_argument("--model", type=Path, default=None, help="Model of the `ser predict` runs (default: the bundled one).")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "benchmarks/speed.py", *(sys.argv[1:] if argv is None else argv)])

    load_before = os.getloadavg()
    clips = select_clips(args.data, args.actors, args.per_actor)
    local = [time_ser_classic(clips, workers, args.repeat) for workers in (1, 2)]
    dask = [] if args.skip_dask else [time_ser_classic_dask(clips, workers, args.repeat) for workers in (1, 2)]
    reference = time_reference(clips, args.reference_clips)
    rows = [*local, *dask[1:], reference]
    egemaps = None
    if not args.skip_opensmile:
        egemaps = time_opensmile(clips, "eGeMAPSv02", 2, args.repeat)
        rows += [egemaps, time_opensmile(clips, "ComParE_2016", 2, args.repeat)]
    model = [] if args.model is None else ["--model", str(args.model)]
    run = None if args.skip_command else command_runs(args.data, clips, args.many, model)
    if run is not None:
        rows += [run.features, run.folder]
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
            "Scaling with the number of workers (same clips, same run):",
            "",
            scaling_table(local, dask),
            "",
            "Targets of issue 7 in this run:",
            "",
            *acceptance(local[1], reference, egemaps, run),
            "",
            *(["Targets of issue 14 in this run (the commands as a user runs them):", "", *command_acceptance(run, reference, egemaps), ""] if run else []),
            f"Measured with `{command}` on {time.strftime('%Y-%m-%d')}.",
        ]
    )
    print(text)
    write_section(args.output, "speed", text)


if __name__ == "__main__":
    main()
