"""The web demo under load: throughput, latency and the server's memory over many requests.

Starts the demo as a user does (``python app_gradio.py --port P``, or ``ser app`` with
``--launcher ser``) in a child process with a Gradio temporary folder of its own, waits until
it answers, then sends ``--requests`` analyses (default 1000) to its ``/analyze`` endpoint
through ``gradio_client``, ``--concurrency`` at a time (default 8), cycling over the RAVDESS
clips of the data folder. Every ``--every`` requests (default 100) it waits for the requests
in flight, then records the batch's throughput, p50/p95 latency and failures, the resident
memory of the server (with its child processes, if any) and the size of its Gradio temporary
folder (uploads and output files). A request fails when it raises or its result has an error.

Each concurrent worker is one client session (``--sessions worker``, as 8 open pages), or
every request opens a new session (``--sessions request``, as one visitor after another).

    python benchmarks/demo_load.py ../shared/data/ravdess                  # the table of docs/demo.md
    python benchmarks/demo_load.py ../shared/data/ravdess --requests 300 --output ''  # a quick look

The table goes to stdout and between the ``<!-- demo-load:begin -->`` / ``<!-- demo-load:end -->``
markers of ``--output`` (docs/demo.md); ``--json`` also keeps the raw numbers. The server is
stopped at the end, also after an error or Ctrl-C. Exit code 1 when a request failed or the
memory grew more than ``--growth-limit-mb`` between the ``--warm-up``-th request and the last.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from itertools import cycle, islice
from pathlib import Path
from typing import Any

from readme_section import write_json, write_section

from ser_classic.demo import DEFAULT_CONCURRENCY

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from demo_support import free_port, serve  # noqa: E402  (one way to serve the demo for the tests and this benchmark)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("SER_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data")) / "ravdess"
SECTION = "demo-load"
#: Importing Gradio and the library on a busy 2-core machine can take a while.
START_TIMEOUT_SECONDS = 180.0


@dataclass
class Checkpoint:
    """The state after ``requests`` answered requests; the batch is those since the previous one."""

    requests: int
    seconds: float
    throughput: float
    p50_seconds: float
    p95_seconds: float
    failures: int
    rss_mb: float
    temp_mb: float
    temp_files: int


def resident_mb(pid: int) -> float:
    """Resident memory of process ``pid`` and all its descendants, in MB (10^6 bytes)."""
    import psutil

    parent = psutil.Process(pid)
    total = 0
    for process in [parent, *parent.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 1e6


def folder_size(folder: Path) -> tuple[float, int]:
    """Size in MB (10^6 bytes) and number of the files under ``folder``."""
    sizes = [path.stat().st_size for path in folder.rglob("*") if path.is_file()]
    return sum(sizes) / 1e6, len(sizes)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (linear interpolation)."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class LoadClient:
    """Sends analyses to the demo: one gradio_client session per worker thread, or one per request."""

    def __init__(self, url: str, model: str | None, *, session_per_request: bool) -> None:
        self.url, self.model, self.session_per_request = url, model, session_per_request
        self._local = threading.local()

    def _client(self) -> Any:
        from gradio_client import Client

        if self.session_per_request or not hasattr(self._local, "client"):
            self._local.client = Client(self.url, verbose=False, download_files=False)
        return self._local.client

    def ask(self, clip: Path) -> tuple[float, str]:
        """Latency in seconds of one analysis of ``clip``, and its failure ('' when it succeeded)."""
        from gradio_client import handle_file

        client = self._client()
        started = time.perf_counter()
        try:
            outputs = client.predict(handle_file(str(clip)), *([self.model] if self.model else []), api_name="/analyze")
            error = outputs[2].get("error", "") if isinstance(outputs[2], dict) else "no result"
        except Exception as exception:  # a failed request is counted, not fatal
            error = f"{type(exception).__name__}: {exception}"
        return time.perf_counter() - started, error


def run_load(
    load: LoadClient, clips: Sequence[Path], *, pid: int, temp_dir: Path, requests: int, concurrency: int, every: int
) -> tuple[list[Checkpoint], list[float], list[str]]:
    """Send ``requests`` analyses in batches of ``every``, printing a checkpoint after each batch.

    Returns the checkpoints (the first one before any request), every latency in seconds and
    the failures.
    """
    checkpoints = [Checkpoint(0, 0.0, 0.0, 0.0, 0.0, 0, resident_mb(pid), *folder_size(temp_dir))]
    print(_row(checkpoints[0]), flush=True)
    latencies: list[float] = []
    failures: list[str] = []
    clip_cycle = cycle(clips)
    done = 0
    pool = ThreadPoolExecutor(max_workers=concurrency)
    try:
        while done < requests:
            batch = list(islice(clip_cycle, min(every, requests - done)))
            started = time.perf_counter()
            answers = list(pool.map(load.ask, batch))
            seconds = time.perf_counter() - started
            batch_latencies = [latency for latency, _ in answers]
            latencies += batch_latencies
            errors = [f"{clip.name}: {error}" for clip, (_, error) in zip(batch, answers, strict=True) if error]
            failures += errors
            done += len(batch)
            checkpoint = Checkpoint(
                done,
                seconds,
                len(batch) / seconds,
                percentile(batch_latencies, 0.5),
                percentile(batch_latencies, 0.95),
                len(errors),
                resident_mb(pid),
                *folder_size(temp_dir),
            )
            checkpoints.append(checkpoint)
            print(_row(checkpoint), flush=True)
    finally:  # on Ctrl-C or an error, the requests not sent yet are dropped
        pool.shutdown(wait=True, cancel_futures=True)
    return checkpoints, latencies, failures


def _row(checkpoint: Checkpoint) -> str:
    if checkpoint.requests == 0:
        return f"| 0 (started) | | | | | {checkpoint.rss_mb:.0f} | {checkpoint.temp_mb:.1f} ({checkpoint.temp_files}) |"
    return (
        f"| {checkpoint.requests} | {checkpoint.throughput:.2f} | {checkpoint.p50_seconds:.2f} | "
        f"{checkpoint.p95_seconds:.2f} | {checkpoint.failures} | {checkpoint.rss_mb:.0f} | "
        f"{checkpoint.temp_mb:.1f} ({checkpoint.temp_files}) |"
    )


TABLE_HEADER = (
    "| requests answered | requests/s (last batch) | p50 latency (s) | p95 latency (s) | failed | server RSS (MB) "
    "| Gradio temp folder (MB, files) |\n|---:|---:|---:|---:|---:|---:|---:|"
)


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """Totals of a run: throughput, latency over all requests, failures, memory growth after warm-up."""
    checkpoints = [Checkpoint(**row) for row in results["checkpoints"]]
    by_count = {checkpoint.requests: checkpoint for checkpoint in checkpoints}
    warm = by_count.get(results["warm_up"], checkpoints[min(1, len(checkpoints) - 1)])
    last = checkpoints[-1]
    latencies = results["latencies"]
    return {
        "throughput": last.requests / sum(checkpoint.seconds for checkpoint in checkpoints),
        "p50_seconds": percentile(latencies, 0.5),
        "p95_seconds": percentile(latencies, 0.95),
        "failures": len(results["failures"]),
        "growth_after_warm_up_mb": last.rss_mb - warm.rss_mb,
        "warm_up": warm.requests,
        "last": last.requests,
        "peak_temp_mb": max(checkpoint.temp_mb for checkpoint in checkpoints),
    }


def markdown(results: dict[str, Any], *, limit_mb: float) -> str:
    """The results as the section of docs/demo.md."""
    totals = summary(results)
    verdict = "met" if totals["failures"] == 0 and totals["growth_after_warm_up_mb"] < limit_mb else "**not met**"
    return "\n".join(
        [
            f"`{results['command']}` ({results['cores']} cores, load average {results['load_average']:.1f} at the start; "
            f"demo `--concurrency {results['server_concurrency']}`, {results['concurrency']} requests at a time, "
            f"one client session per {results['sessions']}, {results['n_clips']} different RAVDESS clips in turn):",
            "",
            TABLE_HEADER,
            *[_row(Checkpoint(**row)) for row in results["checkpoints"]],
            "",
            f"Over all {totals['last']} requests: {totals['throughput']:.2f} requests/s, latency p50 "
            f"{totals['p50_seconds']:.2f} s and p95 {totals['p95_seconds']:.2f} s (waiting in the queue included), "
            f"{totals['failures']} failed. Resident memory from request {totals['warm_up']} to {totals['last']}: "
            f"{totals['growth_after_warm_up_mb']:+.0f} MB (goal: less than {limit_mb:g} MB, no failures: {verdict}). "
            f"Gradio's temporary folder held at most {totals['peak_temp_mb']:.1f} MB.",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, nargs="?", default=DEFAULT_DATA, help="RAVDESS folder (Actor_XX/*.flac).")
    parser.add_argument("--requests", type=int, default=1000, help="Analyses to send.")
    parser.add_argument("--concurrency", type=int, default=8, help="Requests in flight at once.")
    parser.add_argument("--every", type=int, default=100, help="Requests between two measurements.")
    parser.add_argument("--warm-up", type=int, default=200, help="Requests after which memory should stop growing.")
    parser.add_argument("--growth-limit-mb", type=float, default=50.0, help="Allowed growth after the warm-up.")
    parser.add_argument("--sessions", choices=["worker", "request"], default="worker", help="One client session per worker or per request.")
    parser.add_argument("--launcher", choices=["app_gradio", "ser"], default="app_gradio", help="python app_gradio.py or ser app.")
    parser.add_argument("--model", default=None, help="Model name in the picker; the demo's first by default.")
    parser.add_argument("--server-concurrency", type=int, default=None, help="The demo's --concurrency; its default if not given.")
    parser.add_argument("--output", type=str, default=str(PROJECT_ROOT / "docs" / "demo.md"), help="Page to write ('' for none).")
    parser.add_argument("--json", type=Path, default=None, help="Also write the raw results here.")
    parser.add_argument("--log", type=Path, default=None, help="The server's output (a temporary file by default).")
    args = parser.parse_args(argv)

    clips = sorted(args.data.glob("Actor_*/*.flac"))
    if not clips:
        raise SystemExit(f"{args.data}: no Actor_XX/*.flac clips")
    port = free_port()
    launcher = [sys.executable, "app_gradio.py"] if args.launcher == "app_gradio" else [str(Path(sys.executable).with_name("ser")), "app"]
    server_concurrency = args.server_concurrency or DEFAULT_CONCURRENCY
    command = [*launcher, "--port", str(port), "--concurrency", str(server_concurrency)]
    with tempfile.TemporaryDirectory(prefix="ser-demo-load-") as scratch:
        temp_dir = Path(scratch) / "gradio"
        temp_dir.mkdir()
        log_path = args.log or Path(scratch) / "server.log"
        print(f"$ {shlex.join(command)}  (GRADIO_TEMP_DIR={temp_dir})", flush=True)
        load_average = os.getloadavg()[0]
        with serve(command, port, log_path, environment={"GRADIO_TEMP_DIR": str(temp_dir)}, timeout_seconds=START_TIMEOUT_SECONDS) as (url, server):
            pid = server.pid
            load = LoadClient(url, args.model, session_per_request=args.sessions == "request")
            print(TABLE_HEADER, flush=True)
            checkpoints, latencies, failures = run_load(
                load, clips, pid=pid, temp_dir=temp_dir, requests=args.requests, concurrency=args.concurrency, every=args.every
            )
    results = {
        "command": shlex.join(["python", "benchmarks/demo_load.py", *(argv if argv is not None else sys.argv[1:])]),
        "cores": os.cpu_count(),
        "load_average": load_average,
        "server_concurrency": server_concurrency,
        "concurrency": args.concurrency,
        "sessions": args.sessions,
        "n_clips": min(len(clips), args.requests),
        "warm_up": args.warm_up,
        "checkpoints": [asdict(checkpoint) for checkpoint in checkpoints],
        "latencies": latencies,
        "failures": failures,
    }
    text = markdown(results, limit_mb=args.growth_limit_mb)
    print(text.split("\n")[-1])
    for failure in failures[:20]:
        print(f"failed: {failure}")
    if args.json:
        write_json(args.json, results)
    if args.output:
        write_section(Path(args.output), SECTION, text)
    totals = summary(results)
    return 1 if totals["failures"] or totals["growth_after_warm_up_mb"] >= args.growth_limit_mb else 0


if __name__ == "__main__":
    sys.exit(main())
