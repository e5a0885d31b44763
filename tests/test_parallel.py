"""The dask backend: the same calls on a dask.distributed cluster give the local results, and
run in the cluster's worker processes whatever its size.

Module-scoped ``LocalCluster``s on loopback, of two worker processes and of one worker with one
thread, play the clusters that ``--scheduler`` joins; ``ser features --backend dask`` starts
its own. A real ``ser`` process on dask shows dask's own start and shutdown messages only with
``--verbose``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dask
import distributed
import pandas as pd
import pytest
from dask.utils import key_split
from typer.testing import CliRunner

from ser_classic.cli import app
from ser_classic.parallel import ordered_map, parallel_backend


@pytest.fixture(scope="module")
def clips(ravdess_root: Path) -> list[Path]:
    """20 clips of two actors, every emotion, both intensities (one of them stereo in RAVDESS)."""
    files = sorted((ravdess_root / "Actor_01").glob("*.flac")) + sorted((ravdess_root / "Actor_02").glob("*.flac"))
    return files[::6][:20]


@contextmanager
def _local_cluster(n_workers: int, settings: dict[str, object] | None = None) -> Iterator[str]:
    """Address of a running cluster of ``n_workers`` processes (one thread each, loopback only),
    its scheduler made with these dask ``settings``.

    Its nannies get the dask setting that docs/speed.md asks for on hand-started
    workers; with dask's default they would also export MALLOC_TRIM_THRESHOLD_ into this
    process's environment, and so into every process it starts later.
    """
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None, **(settings or {})}):
        cluster = distributed.LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
        )
    with cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def scheduler_address() -> Iterator[str]:
    """A running 2-worker cluster."""
    with _local_cluster(2) as address:
        yield address


@pytest.fixture(scope="module")
def one_thread_scheduler_address() -> Iterator[str]:
    """A running cluster of one worker with one thread in all: the smallest the work still goes to."""
    with _local_cluster(1) as address:
        yield address


def _item_and_pid(item: int) -> tuple[int, int]:
    return item, os.getpid()


@pytest.mark.slow  # dask clusters
@pytest.mark.parametrize("cluster", ["one_thread_scheduler_address", "scheduler_address"], ids=["1 worker, 1 thread", "2 workers"])
def test_ordered_map_on_dask_runs_on_the_cluster_workers_whatever_its_size_in_input_order(cluster: str, request: pytest.FixtureRequest) -> None:
    address = request.getfixturevalue(cluster)
    with distributed.Client(address, set_as_default=False) as client:
        cluster_pids = set(client.run(os.getpid).values())
    with parallel_backend("dask", scheduler=address):
        results = list(ordered_map(_item_and_pid, list(range(40)), n_jobs=1))
    assert [item for item, _ in results] == list(range(40))
    assert os.getpid() not in cluster_pids
    assert {pid for _, pid in results} <= cluster_pids


def _kill_worker_on_7(item: int) -> int:
    if item == 7:
        os._exit(9)  # as a crash in C code or the out-of-memory killer would end it
    return item * item


@pytest.mark.slow  # a dask cluster, workers killed
def test_an_item_that_kills_its_dask_worker_gets_the_lost_result_and_the_rest_go_on(caplog: pytest.LogCaptureFixture) -> None:
    """dask gives up on a task after its first worker death here (``allowed-failures`` 0)."""
    with _local_cluster(2, {"distributed.scheduler.allowed-failures": 0}) as address, parallel_backend("dask", scheduler=address):
        results = list(ordered_map(_kill_worker_on_7, list(range(30)), on_lost=lambda item: -item))
        with pytest.raises(distributed.KilledWorker):
            list(ordered_map(_kill_worker_on_7, list(range(30))))
    assert results == [-7 if item == 7 else item * item for item in range(30)]
    assert "tried again one at a time" in caplog.text


def _malloc_trim_setting(item: int) -> str | None:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


@pytest.mark.slow  # a dask cluster
def test_local_cluster_workers_keep_glibc_default_malloc_thresholds() -> None:
    """dask's default MALLOC_TRIM_THRESHOLD_ halves extraction speed (see ser_classic.parallel)."""
    with parallel_backend("dask", n_workers=1):
        assert list(ordered_map(_malloc_trim_setting, [0, 1])) == [None, None]


@pytest.mark.slow  # a dask cluster
def test_ordered_map_is_local_again_after_the_dask_block(scheduler_address: str) -> None:
    with parallel_backend("dask", scheduler=scheduler_address):
        pass
    assert {pid for _, pid in ordered_map(_item_and_pid, [1, 2, 3])} == {os.getpid()}


@pytest.mark.slow  # a dask cluster
def test_predict_on_a_joined_cluster_equals_local(clips: list[Path], scheduler_address: str) -> None:
    paths = [str(path) for path in clips]
    runner = CliRunner()
    local = runner.invoke(app, ["predict", *paths, "--format", "csv", "--jobs", "1"])
    remote = runner.invoke(app, ["predict", *paths, "--format", "csv", "--backend", "dask", "--scheduler", scheduler_address])
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    local_rows = [line for line in local.stdout.splitlines() if line.startswith(("path,", "/"))]
    assert len(local_rows) == 1 + len(paths)
    assert [line for line in remote.stdout.splitlines() if line.startswith(("path,", "/"))] == local_rows


@pytest.mark.slow  # a dask cluster
def test_features_on_a_two_worker_local_cluster_equal_local(clips: list[Path], tmp_path: Path) -> None:
    manifest = tmp_path / "corpus.csv"
    pd.DataFrame({"path": [str(p) for p in clips], "label": "x", "speaker": [p.parent.name for p in clips]}).to_csv(
        manifest, index=False
    )
    runner = CliRunner()
    local_out, dask_out = tmp_path / "local.parquet", tmp_path / "dask.parquet"
    local = runner.invoke(app, ["features", str(manifest), "-o", str(local_out), "--jobs", "1", "--cache-dir", str(tmp_path / "c1")])
    remote = runner.invoke(
        app,
        ["features", str(manifest), "-o", str(dask_out), "--backend", "dask", "--jobs", "2", "--cache-dir", str(tmp_path / "c2")],
    )
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    local_table, dask_table = pd.read_parquet(local_out), pd.read_parquet(dask_out)
    assert len(local_table) == len(clips)
    pd.testing.assert_frame_equal(dask_table, local_table, check_exact=True)


@pytest.mark.slow  # a dask cluster
def test_features_of_a_folder_on_a_one_thread_cluster_run_on_its_worker(clips: list[Path], one_thread_scheduler_address: str, tmp_path: Path) -> None:
    folder = tmp_path / "ravdess"
    for clip in clips[:8]:
        (folder / clip.parent.name).mkdir(parents=True, exist_ok=True)
        (folder / clip.parent.name / clip.name).symlink_to(clip)
    runner = CliRunner()
    local_out, dask_out = tmp_path / "local.csv", tmp_path / "dask.csv"
    local = runner.invoke(app, ["features", str(folder), "-o", str(local_out), "--jobs", "1", "--cache-dir", str(tmp_path / "c1")])
    options = ["--backend", "dask", "--scheduler", one_thread_scheduler_address, "--cache-dir", str(tmp_path / "c2")]
    with distributed.Client(one_thread_scheduler_address, set_as_default=False) as client, distributed.get_task_stream(client) as tasks:
        remote = runner.invoke(app, ["features", str(folder), "-o", str(dask_out), *options])
        worker_addresses = set(client.scheduler_info()["workers"])
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    assert tasks.data, "no task ran on the cluster"
    assert {key_split(task["key"]) for task in tasks.data} == {"file_vector"}
    assert {task["worker"] for task in tasks.data} <= worker_addresses
    local_table, dask_table = pd.read_csv(local_out), pd.read_csv(dask_out)
    assert len(dask_table) == 8
    pd.testing.assert_frame_equal(dask_table, local_table, check_exact=True)


def _without_progress_bars(stderr: str) -> list[str]:
    """The stderr lines and fragments that are not a tqdm progress bar (redrawn after ``\r``)."""
    fragments = (fragment.strip() for fragment in re.split(r"[\r\n]", stderr))
    return [fragment for fragment in fragments if fragment and not re.match(r"features:\s+\d+%\|", fragment)]


@pytest.mark.slow  # a dask cluster, in a ser process
@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "--verbose"])
def test_dask_lifecycle_messages_show_only_with_verbose(verbose: bool, clips: list[Path], small_model_path: Path, tmp_path: Path) -> None:
    """A real ``ser`` process, whose logging is set up as users get it (not pytest's)."""
    command = [str(Path(sys.executable).with_name("ser")), "predict", *map(str, clips[:2]), "--model", str(small_model_path)]
    options = ["--format", "csv", "--backend", "dask", "--jobs", "1", "--cache-dir", str(tmp_path / "cache")]
    finished = subprocess.run([*command, *options, *(["--verbose"] if verbose else [])], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert len(finished.stdout.splitlines()) == 3
    messages = _without_progress_bars(finished.stderr)
    if verbose:
        assert any("Closing scheduler" in message for message in messages), messages
    else:
        assert messages == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--backend", "spark"], "unknown parallel backend 'spark'"),
        (["--scheduler", "tcp://127.0.0.1:8786"], "needs the dask backend"),
        (["--backend", "dask", "--scheduler", "tcp://127.0.0.1:9"], "no dask scheduler answering at tcp://127.0.0.1:9"),
        (["--backend", "dask", "--scheduler", "scheduler:port"], "not a dask scheduler address: 'scheduler:port'"),
    ],
)
def test_bad_backend_settings_fail_with_one_line(arguments: list[str], message: str, angry_clip: Path) -> None:
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        result = CliRunner().invoke(app, ["predict", str(angry_clip), "--format", "csv", *arguments])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
