"""Start-up cost of the ``ser`` command: what it imports, and the pieces rewritten to import less.

Import lists are read from ``python -X importtime`` in a child process, so these tests fail
when a module-level import of a heavy library creeps back in.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ser_classic.features.cache import file_sha256
from ser_classic.models import card_path, read_card
from ser_classic.parallel import ordered_map

SER = [sys.executable, "-X", "importtime", "-c", "from ser_classic.cli import main; main()"]


def imported_modules(arguments: list[str]) -> set[str]:
    """Modules imported by ``ser ARGUMENTS`` (run to completion; its output is discarded)."""
    result = subprocess.run([*SER, *arguments], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_help_imports_no_numeric_library() -> None:
    modules = imported_modules(["--help"])
    assert "ser_classic.cli" in modules
    assert {"numpy", "scipy", "pandas", "sklearn", "librosa", "joblib", "numba"} & modules == set()


def test_one_clip_prediction_imports_only_what_it_uses(angry_clip: Path) -> None:
    modules = imported_modules(["predict", str(angry_clip), "--format", "csv"])
    assert {"scipy.fft", "sklearn", "soundfile"} <= modules
    unused = {
        "librosa",  # the extractor's librosa functions are ported (features/dsp.py): no numba, no LLVM
        "numba",
        "llvmlite",
        "sklearn.cluster",
        "matplotlib",
        "gradio",
        "distributed",
    }
    assert unused & modules == set()


def _modules_after(code: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", f"{code}; import sys; print(' '.join(sys.modules))"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return set(result.stdout.split())


def test_what_the_command_imports_before_forking_its_helper_is_light() -> None:
    """``ser predict`` forks its extraction helper after these imports: all they import delays
    the helper, whose own imports (SciPy's FFT and signal modules) are the longest path of a one-clip run."""
    modules = _modules_after("import ser_classic.cli, ser_classic.model_file, ser_classic.outputs, ser_classic.parallel, ser_classic.prediction")
    assert {"numpy", "ser_classic.features.extractor"} <= modules
    assert {"scipy", "pandas", "sklearn", "librosa", "numba", "joblib"} & modules == set()


def test_extracting_features_imports_neither_librosa_nor_scikit_learn_nor_pandas(angry_clip: Path) -> None:
    modules = _modules_after(
        "from ser_classic import audio; from ser_classic.features import FeatureConfig; "
        f"from ser_classic.features.extractor import extract_vector; extract_vector(audio.load({str(angry_clip)!r}), FeatureConfig())"
    )
    assert {"scipy.fft", "scipy.signal", "soundfile"} <= modules
    assert {"librosa", "numba", "llvmlite", "sklearn", "pandas"} & modules == set()


def _item_and_pid(item: int) -> tuple[int, int]:
    return item, os.getpid()


def test_all_cores_on_a_few_items_runs_in_this_process() -> None:
    results = list(ordered_map(_item_and_pid, list(range(12)), n_jobs=-1))
    assert results == [(item, os.getpid()) for item in range(12)]


HELPER_RUN = """
import os, sys
from ser_classic.parallel import helper_process, ordered_map

def item_and_pid(item):
    return item, os.getpid()

n_jobs, n_items = int(sys.argv[1]), int(sys.argv[2])
with helper_process(os.getpid, n_jobs=n_jobs, n_items=n_items):
    results = list(ordered_map(item_and_pid, list(range(n_items)), n_jobs=n_jobs))
print([item for item, _ in results] == list(range(n_items)), sorted({pid == os.getpid() for _, pid in results}))
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2 or not sys.platform.startswith("linux"), reason="the helper needs two cores and fork")
@pytest.mark.parametrize(("n_jobs", "in_this_process"), [(-1, False), (2, False), (1, True)])
def test_helper_process_runs_a_few_calls_in_order_in_one_forked_process(n_jobs: int, in_this_process: bool) -> None:
    result = subprocess.run([sys.executable, "-c", HELPER_RUN, str(n_jobs), "5"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", f"[{in_this_process}]"]


HELPER_DIES = """
import os
from functools import partial
from ser_classic.parallel import helper_process, ordered_map

def item_and_pid(item):
    return item, os.getpid()

with helper_process(partial(os._exit, 3), n_jobs=-1, n_items=3):  # the helper dies on its first task
    results = list(ordered_map(item_and_pid, [0, 1, 2], n_jobs=-1))
print(results == [(item, os.getpid()) for item in range(3)])
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2 or not sys.platform.startswith("linux"), reason="the helper needs two cores and fork")
def test_a_helper_that_dies_leaves_its_items_to_this_process() -> None:
    result = subprocess.run([sys.executable, "-c", HELPER_DIES], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True"]
    assert "helper process ended unexpectedly" in result.stderr

POOL_RUN = """
import os, sys, time
from ser_classic.parallel import ordered_map

warmed = []

def item_pid_warmed(item):
    time.sleep(0.002)  # work, so that the second worker gets some
    return item, os.getpid(), bool(warmed)

results = list(ordered_map(item_pid_warmed, list(range(100)), n_jobs=2, warm_up=lambda: warmed.append(True)))
pids = {pid for _, pid, _ in results}
print([item for item, _, _ in results] == list(range(100)), os.getpid() not in pids, len(pids), all(w for _, _, w in results))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
def test_a_local_pool_is_forked_after_the_warm_up_and_keeps_the_input_order() -> None:
    """Workers start as copies of this process once it is warm: what the warm-up built is theirs."""
    result = subprocess.run([sys.executable, "-c", POOL_RUN], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "True", "2", "True"]


POOL_KILLED = """
import multiprocessing, os, signal, time
from ser_classic.parallel import ordered_map

def slow(item):
    time.sleep(0.05)
    return item

results = ordered_map(slow, list(range(400)), n_jobs=2)
next(results)
print(" ".join(str(child.pid) for child in multiprocessing.active_children()), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
def test_forked_workers_end_when_their_parent_is_killed_outright() -> None:
    result = subprocess.run([sys.executable, "-c", POOL_KILLED], capture_output=True, text=True, timeout=120)
    workers = [int(pid) for pid in result.stdout.split()]
    assert result.returncode == -9 and len(workers) == 2
    assert _all_end(workers)


def _all_end(pids: list[int], seconds: float = 10.0) -> bool:
    """Whether every process in ``pids`` ends (or is a zombie) within ``seconds``."""
    import psutil

    def running(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + seconds
    while any(map(running, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(map(running, pids))


HELPER_GC = """
import gc, os
from ser_classic.parallel import helper_process, ordered_map

def collector_state(item):
    return os.getpid(), gc.isenabled(), len(gc.get_objects(generation=2)) < gc.get_freeze_count()

with helper_process(os.getpid, n_jobs=2, n_items=1):
    [(pid, enabled, frozen)] = ordered_map(collector_state, [0], n_jobs=2)
print(pid != os.getpid(), enabled, frozen)
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2 or not sys.platform.startswith("linux"), reason="the helper needs two cores and fork")
def test_the_helper_collects_garbage_again_after_its_warm_up() -> None:
    """The warm-up runs without garbage collections; what it built is frozen, and the calls
    that follow run with the collector on."""
    result = subprocess.run([sys.executable, "-c", HELPER_GC], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "True", "True"]


def _ser(*arguments: str) -> subprocess.CompletedProcess:
    """``ser ARGUMENTS`` in a new process, as users run it (so the helper process is used)."""
    command = [sys.executable, "-c", "from ser_classic.cli import main; main()", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_one_clip_prediction_is_the_same_with_the_helper_and_in_one_process(angry_clip: Path) -> None:
    with_helper = _ser("predict", str(angry_clip), "--format", "csv")
    one_process = _ser("predict", str(angry_clip), "--format", "csv", "--jobs", "1")
    assert with_helper.returncode == one_process.returncode == 0, with_helper.stderr + one_process.stderr
    assert with_helper.stdout == one_process.stdout
    assert with_helper.stdout.count("\n") == 2


def test_a_model_that_fails_to_unpickle_fails_before_any_output(small_model_path: Path, angry_clip: Path, tmp_path: Path) -> None:
    """The card vouches for the file, so it is unpickled (while the helper warms up): its
    error must still come before the CSV header, in one line, with exit code 2."""
    model = tmp_path / "vouched.joblib"
    shutil.copy(card_path(small_model_path), card_path(model))
    model.write_bytes(pickle.dumps({"format": "not ours"}))
    card = read_card(model)
    card["artifact"]["sha256"] = file_sha256(model)
    card_path(model).write_text(json.dumps(card))
    result = _ser("predict", str(angry_clip), "--model", str(model), "--format", "csv")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a ser-classic model artifact" in lines[0] and str(model) in lines[0]


SERVER_RUN = """
import os, sys, time
from ser_classic.parallel import ordered_map, worker_server


def item_and_process(item):
    time.sleep(0.01)  # work, so that the second worker gets some
    return item, os.getpid(), os.getppid(), {"ser_classic.features.dsp", "scipy.fft", "scipy.signal"} <= set(sys.modules)


if __name__ == "__main__":
    with worker_server(["ser_classic.features.preload"], n_jobs=2):
        results = list(ordered_map(item_and_process, list(range(100)), n_jobs=2))
    pids = {pid for _, pid, _, _ in results}
    parents = {parent for _, _, parent, _ in results}
    print([item for item, *_ in results] == list(range(100)), len(pids), len(parents), os.getpid() not in parents,
          all(preloaded for *_, preloaded in results), "scipy" in sys.modules)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forkserver and the parent-death signal")
def test_a_pool_inside_the_worker_server_is_forked_from_the_preloaded_server(tmp_path: Path) -> None:
    """Two workers, both children of one server (not of this process), with the preloaded
    modules already in them, and results in input order; this process never imports SciPy."""
    script = tmp_path / "server_run.py"
    script.write_text(SERVER_RUN)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "2", "1", "True", "True", "False"]


def test_the_worker_preload_leaves_nothing_for_a_clip_to_import(angry_clip: Path, tmp_path: Path) -> None:
    """Workers forked from the server start with every module that the calls they are handed
    (a file's features, read by the worker or ahead of it) use: unpickled and run here after
    the preload, they import nothing. A file read ahead gives the same vector as one read by
    the worker."""
    code = (
        "import pickle, sys, ser_classic.features.preload; from functools import partial; from pathlib import Path; "
        "before = set(sys.modules); "
        "from ser_classic.features import files; from ser_classic.features.cache import FeatureCache; "
        "from ser_classic.features.config import FeatureConfig; "
        f"cache = FeatureCache(Path({str(tmp_path)!r}), FeatureConfig()); "
        "call = pickle.loads(pickle.dumps(partial(files._file_vector, config=FeatureConfig(), cache=cache))); "
        f"ahead = files._read_ahead({str(angry_clip)!r}, config=FeatureConfig(), cache=None); "
        "uncached = pickle.loads(pickle.dumps(partial(files._file_vector, config=FeatureConfig(), cache=None))); "
        f"same = (uncached(ahead) == uncached({str(angry_clip)!r})).all() and (call(ahead) == uncached(ahead)).all(); "
        "print(type(ahead).__name__, same, sorted(set(sys.modules) - before))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["Decoded", "True", "[]"], result.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forkserver and the parent-death signal")
def test_ser_features_killed_outright_leaves_no_server_or_worker(actor_01: Path, tmp_path: Path) -> None:
    """SIGKILL gives the command no chance to end anything: its server and workers end by themselves."""
    import psutil

    command = [sys.executable, "-c", "from ser_classic.cli import main; main()", "features", str(actor_01),
               "--output", str(tmp_path / "f.csv"), "--jobs", "2", "--cache-dir", str(tmp_path / "cache")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + 60
    while len(parent.children(recursive=True)) < 4 and time.monotonic() < deadline:  # tracker, server, 2 workers
        time.sleep(0.02)
    children = parent.children(recursive=True)
    process.kill()
    process.wait()
    assert len(children) >= 4
    assert _all_end([child.pid for child in children])


POOL_LOST = """
import os, sys, time
from contextlib import nullcontext
from ser_classic.parallel import ordered_map, worker_server


def square_or_die(item):
    if item == 37:
        os._exit(9)  # as a crash in C code or the out-of-memory killer would end it
    time.sleep(0.002)
    return item * item


if __name__ == "__main__":
    server = worker_server([], n_jobs=2) if sys.argv[1] == "server" else nullcontext()
    with server:
        results = list(ordered_map(square_or_die, list(range(100)), n_jobs=2, on_lost=lambda item: -item))
    print(results == [-37 if item == 37 else item * item for item in range(100)])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
@pytest.mark.parametrize("where", ["server", "fork"])
def test_an_item_that_kills_its_worker_gets_the_lost_result_and_the_rest_go_on(where: str, tmp_path: Path) -> None:
    script = tmp_path / "pool_lost.py"
    script.write_text(POOL_LOST)
    result = subprocess.run([sys.executable, str(script), where], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True"]
    assert "tried again one at a time" in result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forkserver")
def test_ser_features_goes_on_when_a_worker_is_killed(actor_01: Path, tmp_path: Path) -> None:
    """A worker killed in the middle (as the out-of-memory killer would) loses no file: its
    files are extracted again and the table is whole."""
    import pandas as pd
    import psutil

    output = tmp_path / "f.csv"
    command = [sys.executable, "-c", "from ser_classic.cli import main; main()", "features", str(actor_01),
               "--output", str(output), "--jobs", "2", "--cache-dir", str(tmp_path / "cache")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    command_process = psutil.Process(process.pid)
    deadline = time.monotonic() + 60
    workers: list[psutil.Process] = []
    while not workers and time.monotonic() < deadline:  # the server's children
        workers = [child for child in command_process.children(recursive=True) if child.ppid() != process.pid]
        time.sleep(0.01)
    assert workers
    workers[0].kill()
    try:
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()  # a command that hangs must not outlive the test
    assert process.returncode == 0, stderr[-2000:]
    assert len(pd.read_csv(output)) == len(list(actor_01.glob("*.flac")))
    assert "tried again one at a time" in stderr
