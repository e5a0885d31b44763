"""Running one function over many items: in this process, or in a local process pool.

Results come back in input order, as they finish, so callers can stream them to an output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

__all__ = ["ordered_map", "resolve_jobs"]

Item = TypeVar("Item")
Result = TypeVar("Result")


def resolve_jobs(n_jobs: int | None) -> int:
    """Number of workers: ``None`` or ``1`` -> 1, ``-1`` -> every core, ``n`` -> ``n``."""
    import os

    if n_jobs is None or n_jobs == 0:
        return 1
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return n_jobs


def ordered_map(
    function: Callable[..., Result],
    items: Sequence[Item],
    *,
    n_jobs: int | None = 1,
    progress: bool = False,
    description: str = "",
    **kwargs: Any,
) -> Iterator[Result]:
    """Yield ``function(item, **kwargs)`` for each item, in order.

    With more than one job the calls run in a joblib (loky) process pool, in chunks; a progress
    bar on stderr counts finished items when ``progress`` is true.
    """
    workers = min(resolve_jobs(n_jobs), max(1, len(items)))
    if workers == 1:
        results: Iterator[Result] = (function(item, **kwargs) for item in items)
    else:
        from joblib import Parallel, delayed

        pool = Parallel(n_jobs=workers, return_as="generator", batch_size="auto")
        results = pool(delayed(function)(item, **kwargs) for item in items)
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(items), desc=description, unit="file", leave=False)
    yield from results
