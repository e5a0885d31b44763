"""Running one function over many items: in this process, a local process pool, or a dask cluster.

Results come back in input order, as they finish, so callers can stream them to an output.
:func:`ordered_map` runs locally (processes forked from this one, or joblib's loky pool where
forking is unsafe) unless it is called inside :func:`parallel_backend` ``("dask", ...)``, which
sends the same calls, in tasks of several items, to a dask.distributed cluster, whatever its
size: a ``LocalCluster`` on this machine, or an existing cluster joined through its scheduler's
address.
Inside :func:`helper_process`, calls that would run in this process run in a forked helper
process instead, which warms up while this process does other work (the CLI loads the model
meanwhile). Inside :func:`worker_server`, the workers of local pools are forked from a server
process started on entry, which imports what they need while this process does its own start.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any, TypeVar

from .errors import SERError
from .interruption import STOP_SIGNALS, leave_stop_signals_to_parent

__all__ = ["BACKENDS", "MIN_ITEMS_PER_WORKER", "PREFETCH_ITEMS", "helper_process", "ordered_map", "parallel_backend", "resolve_jobs", "worker_server"]

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Where :func:`ordered_map` can run its calls.
BACKENDS = ("local", "dask")
#: With ``n_jobs < 0`` ("all cores"), a local pool gets one worker process per this many items,
#: and none below twice as many: a new worker costs CPU (an interpreter importing numpy and SciPy
#: and warming the extractor up, about 0.8 s; 2 s when this was measured, while the extractor
#: still loaded numba), so two workers pay off from about 160 clips on two cores, and fewer
#: finish sooner in this process.
MIN_ITEMS_PER_WORKER = 80

#: dask's nannies start workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also fixes glibc's
#: mmap threshold: every array above 128 kB is then mapped and unmapped anew, and extraction
#: runs at half speed (all system time). Unset (``None``) for the LocalCluster started here;
#: see docs/speed.md for workers started by hand.
_MALLOC_TRIM_SETTING = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"

_log = logging.getLogger(__name__)
_dask_client: ContextVar[Any] = ContextVar("ser_classic_dask_client", default=None)
_helper: ContextVar[Any] = ContextVar("ser_classic_helper_process", default=None)
_server: ContextVar[Any] = ContextVar("ser_classic_worker_server", default=None)


def resolve_jobs(n_jobs: int | None) -> int:
    """Number of workers: ``None`` or ``1`` -> 1, ``-1`` -> every core, ``n`` -> ``n``."""
    import os

    if n_jobs is None or n_jobs == 0:
        return 1
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return n_jobs


def _local_workers(n_jobs: int | None, n_items: int) -> int:
    """Worker processes of a local :func:`ordered_map` over ``n_items`` items (1: this process)."""
    useful = n_items // MIN_ITEMS_PER_WORKER if n_jobs is not None and n_jobs < 0 else n_items
    return min(resolve_jobs(n_jobs), max(1, useful))


@contextmanager
def helper_process(warm_up: Callable[[], object], *, n_jobs: int | None, n_items: int) -> Iterator[None]:
    """Inside the block, :func:`ordered_map` calls that would run in this process run in one
    helper process instead, forked on entry, which first calls ``warm_up``.

    For a caller with other work to do before the calls: the helper pays the start-up costs of
    the calls (imports, compiled code) meanwhile, on another core. A fork is cheap, so unlike a
    pool worker the helper pays off from one item on. It is used only where ``n_jobs`` allows
    two processes or more, ``n_items`` (at least one) are too few for a pool, the backend is
    local, and forking is safe: on Linux, from a process running no other thread. Otherwise
    the block changes nothing. Stop signals (Ctrl-C, SIGTERM, SIGHUP) are left to this process,
    which ends the helper on leaving the block (or by dying: the helper ends with it). ``warm_up`` must be picklable; its result and
    its exceptions are dropped.
    """
    if not (
        n_items >= 1
        and resolve_jobs(n_jobs) >= 2
        and _local_workers(n_jobs, n_items) == 1
        and _dask_client.get() is None
        and _fork_is_safe()
    ):
        yield
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    helper = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"), initializer=_start_forked_worker)
    helper.submit(_warm_up_for_good, warm_up)  # forks the helper now
    token = _helper.set(helper)
    finished = False
    try:
        yield
        finished = True
    finally:
        _helper.reset(token)
        helper.shutdown(wait=finished, cancel_futures=not finished)


def _warm_up_for_good(warm_up: Callable[[], object]) -> None:
    """In the helper: ``warm_up`` without garbage collections, then ``gc.freeze()``.

    A warm-up builds what lives as long as the process (modules, compiled code): collecting
    during it costs about a tenth of its time and frees next to nothing, and later collections
    need not walk through what it built either.
    """
    import gc

    gc.disable()
    try:
        warm_up()
    finally:
        gc.freeze()
        gc.enable()


@contextmanager
def worker_server(preload: Sequence[str], *, n_jobs: int | None, n_items: int | None = None) -> Iterator[None]:
    """Inside the block, the local pools of :func:`ordered_map` fork their workers from a server
    process started on entry, which imports the modules named in ``preload`` while this process
    goes on with its own start (reading its inputs, loading a model): the workers then start
    ready as soon as both are done, instead of after the two.

    For a command's process: open the block first thing. The server is Python's ``forkserver``
    (one per process, kept until it exits; ``preload`` is the first block's), so the functions
    the workers call must be importable, and a script must open the block under
    ``if __name__ == "__main__":`` (a worker imports the main module, as with ``spawn``). The
    server ignores stop signals and ends with this process. The block changes nothing where no
    pool would run: ``n_jobs`` allows one process only, ``n_items`` (when known) are too few
    for a pool (:func:`helper_process` serves those), inside :func:`parallel_backend`
    ``("dask")``, or on a platform without ``forkserver`` (Windows).
    """
    import multiprocessing

    pool_ahead = resolve_jobs(n_jobs) >= 2 and (n_items is None or _local_workers(n_jobs, n_items) >= 2)
    if not pool_ahead or _dask_client.get() is not None or "forkserver" not in multiprocessing.get_all_start_methods():
        yield
        return
    import signal
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    # the server (and the resource tracker it starts) inherit the blocked signals: a stop sent
    # to the process group is this process's to handle; workers unblock them when they start
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    token = _server.set(context)
    try:
        yield
    finally:
        _server.reset(token)


def _fork_context() -> Any:
    """Where local workers are forked from: the :func:`worker_server`, else this process."""
    import multiprocessing

    return _server.get() or multiprocessing.get_context("fork")


@contextmanager
def parallel_backend(
    name: str = "local",
    *,
    scheduler: str | None = None,
    n_workers: int | None = None,
) -> Iterator[None]:
    """Run the :func:`ordered_map` calls made inside the block on ``name``.

    Parameters
    ----------
    name : {"local", "dask"}
        ``"local"``: this machine's process pool (what happens outside any block).
        ``"dask"``: a dask.distributed cluster (needs the ``dask`` extra); every call of
        :func:`ordered_map` then runs on all the cluster's worker threads, whatever its
        ``n_jobs``, even when the cluster has a single one.
    scheduler : str, optional
        Address of a running dask scheduler to join, e.g. ``"tcp://10.0.0.5:8786"``, waiting
        for it as long as dask's ``distributed.comm.timeouts.connect`` setting says (30 s unless
        set, e.g. by ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s``). When ``None``, a
        ``LocalCluster`` on loopback is started for the block and closed after it.
    n_workers : int, optional
        Worker processes of that ``LocalCluster`` (one thread each); every core by default.
        They are started with ``spawn``, so a script that opens the block must do so under
        ``if __name__ == "__main__":``.

    Raises
    ------
    SERError
        Unknown backend, dask not installed, or no scheduler answering at ``scheduler``.

    Examples
    --------
    >>> from ser_classic.parallel import parallel_backend
    >>> with parallel_backend("dask", scheduler="tcp://10.0.0.5:8786"):  # doctest: +SKIP
    ...     table = FeatureExtractor().extract_files(paths)
    """
    if name not in BACKENDS:
        raise SERError(f"unknown parallel backend {name!r}; choose from {list(BACKENDS)}")
    if name == "local":
        if scheduler is not None:
            raise SERError("a scheduler address needs the dask backend (--backend dask)")
        yield
        return
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise SERError('the dask backend needs dask.distributed: pip install "ser-classic[dask]"') from None
    cluster = None
    if scheduler is None:
        with dask.config.set({_MALLOC_TRIM_SETTING: None}):
            cluster = LocalCluster(
                n_workers=resolve_jobs(n_workers if n_workers is not None else -1),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=":0",  # any free port: never collides with a running cluster's 8787
            )
        client = Client(cluster, set_as_default=False)
    else:
        _check_address(scheduler)
        try:
            client = Client(scheduler, set_as_default=False)  # waits distributed.comm.timeouts.connect
        except (OSError, TimeoutError) as error:
            raise SERError(f"no dask scheduler answering at {scheduler} ({error})") from None
    token = _dask_client.set(client)
    try:
        yield
    finally:
        _dask_client.reset(token)
        client.close()
        if cluster is not None:
            cluster.close()


def _check_address(scheduler: str) -> None:
    """Raise :class:`SERError` unless ``scheduler`` reads as a dask address (``tcp://host:port``)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        protocol, location = parse_address(scheduler)
        if protocol in {"tcp", "tls"}:
            parse_host_port(location)
    except ValueError as error:
        raise SERError(f"not a dask scheduler address: {scheduler!r} ({error}); expected tcp://host:8786") from None


def ordered_map(
    function: Callable[..., Result],
    items: Sequence[Item],
    *,
    n_jobs: int | None = 1,
    progress: bool = False,
    description: str = "",
    warm_up: Callable[[], object] | None = None,
    prefetch: Callable[[Item], Item] | None = None,
    on_lost: Callable[[Item], Result] | None = None,
    **kwargs: Any,
) -> Iterator[Result]:
    """Yield ``function(item, **kwargs)`` for each item, in order.

    Locally, ``n_jobs`` worker processes (never more than items) run the calls in chunks; one
    worker means no pool: the calls run in this process (in the helper inside
    :func:`helper_process`). Inside :func:`worker_server` the workers are forked from the
    server; elsewhere, where forking is safe (Linux, no other thread in this process), from
    this process after it has called ``warm_up`` (imports, compiled code, caches), so they
    start ready and share what it built; elsewhere a joblib (loky) pool starts fresh
    interpreters. A negative ``n_jobs`` (``-1``: all cores) asks for as many workers as pay
    off: at most one per :data:`MIN_ITEMS_PER_WORKER` items. Inside
    :func:`parallel_backend` ``("dask")`` the calls run on the dask cluster instead, however
    few its workers or the items, and ``n_jobs``, ``warm_up`` and ``prefetch`` are unused. Local
    workers leave stop signals to this process (see :mod:`ser_classic.interruption`), which
    ends them. A progress bar on stderr counts finished items when ``progress`` is true.
    ``function`` and ``kwargs`` must be picklable for a pool, a helper or a cluster.

    ``prefetch``: for a pool forked from a :func:`worker_server`, which starts workers only
    once the server is ready, this process (idle meanwhile) replaces items, first to last, with
    ``prefetch(item)`` in a background thread, until the first results come in or
    :data:`PREFETCH_ITEMS` are done; ``function`` must take both kinds of item and give the same
    result for each. ``prefetch`` must not raise.

    ``on_lost``: when a forked pool's worker dies (killed, out of memory, a crash in C code),
    the items it may have held run again, one at a time; an item whose worker dies again gets
    ``on_lost(item)`` as its result, and the rest of the batch goes on. Without it, the death
    raises ``BrokenProcessPool``. On dask, the same once dask gives up on a task (see
    :func:`_dask_map`), and ``KilledWorker`` without it.
    """
    client = _dask_client.get()
    results: Iterator[Result]
    if client is not None:
        results = _dask_map(client, partial(function, **kwargs), items, on_lost)
    else:
        workers = _local_workers(n_jobs, len(items))
        helper = _helper.get()
        if workers == 1 and helper is not None:
            results = _helper_map(helper, partial(function, **kwargs), items)
        elif workers == 1:
            results = (function(item, **kwargs) for item in items)
        elif _server.get() is not None:
            results = _forked_map(partial(function, **kwargs), items, workers, prefetch, on_lost)
        elif _fork_is_safe():
            if warm_up is not None:
                warm_up()
            results = _forked_map(partial(function, **kwargs), items, workers, on_lost=on_lost)
        else:
            from joblib import Parallel, delayed

            _start_resource_tracker()
            pool = Parallel(n_jobs=workers, return_as="generator", batch_size="auto", initializer=leave_stop_signals_to_parent)
            results = pool(delayed(function)(item, **kwargs) for item in items)
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(items), desc=description, unit="file", leave=False)
    yield from results


def _helper_map(helper: Any, call: Callable[[Item], Result], items: Sequence[Item]) -> Iterator[Result]:
    """``call(item)`` for each item in the helper; if the helper dies (killed, out of memory),
    the items it had not returned run in this process, so the batch goes on."""
    from concurrent.futures.process import BrokenProcessPool

    done = 0
    try:
        for result in helper.map(call, items):
            yield result
            done += 1
    except BrokenProcessPool:
        _log.warning("the helper process ended unexpectedly; the %d remaining item(s) run in this process", len(items) - done)
        yield from (call(item) for item in items[done:])


def _fork_is_safe() -> bool:
    """Forking copies only the calling thread: safe on Linux when no other Python thread runs."""
    import threading

    return sys.platform == "linux" and threading.active_count() == 1


#: prctl(2) option: the signal a process gets when its parent thread ends.
_PR_SET_PDEATHSIG = 1
#: Chunks a forked pool has in flight per worker: enough to keep it busy while results are read.
_CHUNKS_IN_FLIGHT = 2
#: Most items per chunk: a chunk's results arrive together, and the last chunks set the tail.
_MAX_CHUNK = 8


def _forked_map(
    call: Callable[[Item], Result],
    items: Sequence[Item],
    workers: int,
    prefetch: Callable[[Item], Item] | None = None,
    on_lost: Callable[[Item], Result] | None = None,
) -> Iterator[Result]:
    """``call(item)`` for each item, in order, on ``workers`` forked processes (:func:`_fork_context`).

    Chunks of up to :data:`_MAX_CHUNK` items, at most :data:`_CHUNKS_IN_FLIGHT` per worker at
    a time, so memory holds a few chunks whatever the number of items. When the caller stops
    reading (an error, a stop signal), the chunks not started are dropped and the workers end
    after the ones they hold. ``prefetch`` and ``on_lost``: see :func:`ordered_map`.
    """
    from concurrent.futures.process import BrokenProcessPool

    items = list(items)  # the prefetching thread replaces items in this copy
    size = max(1, min(_MAX_CHUNK, -(-len(items) // (workers * 16))))
    done = 0
    with _prefetching(prefetch, items) as results_in:
        while done < len(items):
            try:
                with closing(_pool_results(call, items, done, len(items), size, workers, wait_for_workers=prefetch is not None)) as results:
                    for result in results:
                        results_in.set()
                        done += 1
                        yield result
            except BrokenProcessPool:
                if on_lost is None:
                    raise
                # the items the dead worker could have held, each alone in flight on one
                # worker: the one that ends its worker again is the cause
                suspects = min(len(items), done + workers * _CHUNKS_IN_FLIGHT * size)
                _log.warning("a worker process ended unexpectedly; its files are tried again one at a time")
                while done < suspects:
                    try:
                        with closing(_pool_results(call, items, done, suspects, 1, 1, in_flight=1)) as results:
                            for result in results:
                                done += 1
                                yield result
                    except BrokenProcessPool:
                        done += 1
                        yield on_lost(items[done - 1])


def _pool_results(
    call: Callable[[Item], Result],
    items: list[Item],
    start: int,
    end: int,
    size: int,
    workers: int,
    *,
    in_flight: int = _CHUNKS_IN_FLIGHT,
    wait_for_workers: bool = False,
) -> Iterator[Result]:
    """``call(item)`` for ``items[start:end]``, in order, on a new pool of ``workers`` (chunks of
    ``size``, ``in_flight`` per worker). Raises ``BrokenProcessPool`` after the results before a
    worker's death. ``wait_for_workers``: start the workers before cutting the first chunk (see
    :func:`_prefetching`)."""
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    from concurrent.futures.process import BrokenProcessPool

    chunks = (items[first : min(first + size, end)] for first in range(start, end, size))
    pool = ProcessPoolExecutor(workers, mp_context=_fork_context(), initializer=_start_forked_worker)
    finished = False
    try:
        if wait_for_workers:  # (waiting for the server) meanwhile items are prefetched
            for started in [pool.submit(int) for _ in range(workers)]:
                started.result()
        pending = deque(pool.submit(_call_chunk, call, chunk) for chunk in _take(chunks, workers * in_flight))
        while pending:
            results = pending.popleft().result()
            pending.extend(pool.submit(_call_chunk, call, chunk) for chunk in _take(chunks, 1))
            yield from results
        finished = True
    except BrokenProcessPool:
        _kill_workers(pool)
        raise
    finally:
        pool.shutdown(wait=finished, cancel_futures=not finished)


def _kill_workers(pool: Any) -> None:
    """End the workers left in a broken pool, outright.

    The pool ends them with SIGTERM, which workers leave to the command (see
    :func:`~ser_classic.interruption.leave_stop_signals_to_parent`); one left running, busy or
    blocked on a result nobody reads, would keep the pool's clean-up, and the command's exit,
    waiting for good.
    """
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()


#: Most items :func:`ordered_map` prefetches (a bound on the memory they hold).
PREFETCH_ITEMS = 256


@contextmanager
def _prefetching(prefetch: Callable[[Item], Item] | None, items: list[Item]) -> Iterator[Any]:
    """Inside the block, a thread replaces ``items[i]`` with ``prefetch(items[i])``, from the
    first, until the event yielded is set or :data:`PREFETCH_ITEMS` are done. A list slice
    taken meanwhile holds each item either way. The thread is ended on leaving the block."""
    import threading

    stop = threading.Event()
    if prefetch is None:
        yield stop
        return

    def replace() -> None:
        for index in range(min(len(items), PREFETCH_ITEMS)):
            if stop.is_set():
                return
            items[index] = prefetch(items[index])

    thread = threading.Thread(target=replace, name="ser-classic-prefetch", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join()


def _take(iterator: Iterator[Item], count: int) -> list[Item]:
    from itertools import islice

    return list(islice(iterator, count))


def _call_chunk(call: Callable[[Item], Result], chunk: Sequence[Item]) -> list[Result]:
    return [call(item) for item in chunk]


def _start_forked_worker() -> None:
    """In a forked worker: leave stop signals to the parent, and end when it ends (Linux's
    parent-death signal), even when it is killed outright and cannot end its workers.

    The parent is the process that forked the worker: this one, or the :func:`worker_server`,
    which ends when this one does. The server runs with the stop signals blocked; they are
    unblocked here, once handled."""
    import ctypes
    import os
    import signal

    parent = os.getppid()
    leave_stop_signals_to_parent()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    _let_the_server_end()
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        _keep_freed_memory(libc)
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(128 + signal.SIGTERM)


def _let_the_server_end() -> None:
    """Close this worker's copy of the pipe end that keeps the :func:`worker_server` running.

    The server runs until every process holding that end is gone, and hands it to each process
    it forks, so that they can use it too. Workers do not, and if they held it, a command killed
    outright would leave its server waiting for the workers, and the workers (which end with
    their parent, the server) waiting for it. A worker forked from this process after the
    server started holds a copy as well.
    """
    import os

    forkserver = sys.modules.get("multiprocessing.forkserver")  # not imported: no server was started
    server = getattr(forkserver, "_forkserver", None)
    alive_fd = getattr(server, "_forkserver_alive_fd", None)
    if alive_fd is not None:
        os.close(alive_fd)
        server._forkserver_alive_fd = None


#: mallopt(3) options of glibc, and the worker's values: blocks below the threshold come from
#: the heap, which keeps up to the trim threshold of freed memory for the next calls.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_WORKER_MMAP_THRESHOLD, _WORKER_TRIM_THRESHOLD = 32 << 20, 64 << 20


def _keep_freed_memory(libc: Any) -> None:
    """Let a worker reuse the memory of its last call instead of returning it to the system.

    A call (a clip's features) allocates and frees arrays of a few MB. glibc maps the larger
    ones anew each time, and the kernel zeroes every page on first touch; reused, the same calls
    run faster (docs/speed.md). A worker holds at most the trim threshold more. Where the C
    library is not glibc (no ``mallopt``), nothing changes.
    """
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _WORKER_MMAP_THRESHOLD)
        mallopt(_M_TRIM_THRESHOLD, _WORKER_TRIM_THRESHOLD)



def _start_resource_tracker() -> None:
    """Start loky's resource tracker, as its pools do, but deaf to SIGHUP.

    The tracker (one process beside the pool, removing what dead workers leave) ignores SIGINT
    and SIGTERM itself, not SIGHUP: a terminal that closes would end it with the workers, and
    the pool would print its tracebacks. A signal blocked when it is started stays blocked
    there; here, one that arrives meanwhile waits until the mask is restored.
    """
    import signal

    from joblib.externals.loky.backend.resource_tracker import ensure_running

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


#: Most items per task on a dask cluster: a third to half a second of work for 3-4 s clips, so
#: that a scheduler serving hundreds of worker cores gets a few thousand tasks a second at most.
_DASK_MAX_CHUNK = 32
#: Tasks per worker thread of the cluster over a whole map, when items are too few for
#: :data:`_DASK_MAX_CHUNK`: enough for the threads to share the work evenly.
_DASK_TASKS_PER_THREAD = 4


def _dask_map(client: Any, call: Callable[[Item], Result], items: Sequence[Item], on_lost: Callable[[Item], Result] | None) -> Iterator[Result]:
    """``call(item)`` for each item, in order, on the cluster of ``client``, whatever its size.

    Tasks of up to :data:`_DASK_MAX_CHUNK` items, at most :data:`_CHUNKS_IN_FLIGHT` per worker
    thread at a time; when the caller stops reading, the tasks not started are dropped. When a
    worker dies, dask runs its tasks on the others, and gives up on a task after more worker
    deaths than ``distributed.scheduler.allowed-failures`` (3 unless set): its items then run
    again one task at a time, and an item whose task dask gives up on too gets
    ``on_lost(item)`` as its result (without ``on_lost``, ``KilledWorker`` is raised).
    """
    from collections import deque
    from uuid import uuid4

    from dask.utils import funcname
    from distributed import KilledWorker

    threads = sum(client.nthreads().values())
    if threads == 0:
        _log.warning("the dask cluster has no worker yet: the work waits for one to join")
    size = max(1, min(_DASK_MAX_CHUNK, -(-len(items) // (max(1, threads) * _DASK_TASKS_PER_THREAD))))
    chunks = (list(items[first : first + size]) for first in range(0, len(items), size))
    name = funcname(call)  # names the tasks on dask's dashboard

    def submit(chunk: list[Item]) -> tuple[Any, list[Item]]:
        return client.submit(_call_chunk, call, chunk, key=f"{name}-{uuid4().hex}"), chunk

    pending = deque(submit(chunk) for chunk in _take(chunks, max(1, threads) * _CHUNKS_IN_FLIGHT))
    while pending:
        task, chunk = pending.popleft()
        try:
            results = task.result()
        except KilledWorker:
            if on_lost is None:
                raise
            _log.warning("dask workers died running %d file(s); they are tried again one at a time", len(chunk))
            results = [_alone_on_dask(submit, item, on_lost) for item in chunk]
        pending.extend(submit(chunk) for chunk in _take(chunks, 1))
        yield from results


def _alone_on_dask(submit: Callable[[list[Item]], tuple[Any, list[Item]]], item: Item, on_lost: Callable[[Item], Result]) -> Result:
    """``call(item)`` in a task of its own (``submit``), or ``on_lost(item)`` if dask gives up on it."""
    from distributed import KilledWorker

    task, _ = submit([item])
    try:
        return task.result()[0]
    except KilledWorker:
        return on_lost(item)
