"""Where independent runs execute: this machine's processes, or a Ray cluster.

Both engines map a picklable function over a list of tasks and return the
results in task order, so a run's results do not depend on the engine or on
how many workers it had: every task carries its own seeds.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any, Protocol, TypeVar

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from simulator.cluster import init_ray
from simulator.errors import EngineError

T = TypeVar("T")
R = TypeVar("R")
ENGINES = ("local", "ray")


class _OneThread:
    """``fn`` with BLAS limited to one thread.

    Matrix products summed in a different order differ in the last bits, which
    can flip an argmax between near-tied items; one BLAS thread in every task,
    whatever the engine, keeps runs bit-identical (and avoids oversubscribing
    the cores that the tasks already share).
    """

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, task: Any) -> Any:
        with threadpool_limits(limits=1):
            return self.fn(task)


class _Pickled:
    """``fn`` whose result travels back from a forked worker as plain pickle bytes.

    ``multiprocessing`` sends results with its ``ForkingPickler``, for which torch
    registers reductions that pass tensors through shared-memory file descriptors;
    that hand-over can hang a worker for good (seen with trained PPO agents).
    Plain pickle copies the tensors' bytes instead.
    """

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, task: Any) -> bytes:
        return pickle.dumps(self.fn(task), protocol=pickle.HIGHEST_PROTOCOL)


def _call_one_thread(fn: Callable[[Any], Any], task: Any) -> Any:
    return _OneThread(fn)(task)


class Engine(Protocol):
    """Maps a function over tasks; results come back in task order."""

    name: str

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], *, desc: str = "",
            progress: bool = True) -> list[R]:
        """``[fn(t) for t in tasks]``, run in parallel."""
        ...


class LocalEngine:
    """Forked worker processes on this machine (serial when ``workers`` is 1)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], *, desc: str = "",
            progress: bool = True) -> list[R]:
        """``[fn(t) for t in tasks]`` over ``workers`` processes, with a progress bar on stderr."""
        results: dict[int, R] = {}
        with tqdm(total=len(tasks), desc=desc, unit="run", disable=not progress, leave=False) as bar:
            if self.workers <= 1 or len(tasks) <= 1:
                one = _OneThread(fn)
                for j, task in enumerate(tasks):
                    results[j] = one(task)
                    bar.update()
            else:
                with ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)),
                                         mp_context=get_context("fork")) as pool:
                    futures = {pool.submit(_Pickled(_OneThread(fn)), task): j for j, task in enumerate(tasks)}
                    for fut in as_completed(futures):
                        results[futures[fut]] = pickle.loads(fut.result())
                        bar.update()
        return [results[j] for j in range(len(tasks))]




class RayEngine:
    """One Ray task per run, on an existing cluster (``address``) or a local Ray started on demand."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.ray = init_ray(address, num_cpus)

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], *, desc: str = "",
            progress: bool = True) -> list[R]:
        """``[fn(t) for t in tasks]`` as Ray tasks, gathered in task order."""
        remote = self.ray.remote(_call_one_thread)
        fn_ref = self.ray.put(fn)
        refs = [remote.remote(fn_ref, task) for task in tasks]
        index = {ref: j for j, ref in enumerate(refs)}
        results: dict[int, R] = {}
        pending = list(refs)
        with tqdm(total=len(tasks), desc=desc, unit="run", disable=not progress, leave=False) as bar:
            while pending:
                done, pending = self.ray.wait(pending, num_returns=1)
                for ref in done:
                    results[index[ref]] = self.ray.get(ref)
                    bar.update()
        return [results[j] for j in range(len(tasks))]


def make_engine(name: str = "local", *, workers: int | None = None, address: str | None = None) -> Engine:
    """The engine ``name`` (``local`` or ``ray``)."""
    if name == "local":
        if address:
            raise EngineError("--address only applies to --engine ray.")
        return LocalEngine(workers)
    if name == "ray":
        return RayEngine(address, workers)
    raise EngineError(f"unknown engine {name!r}; choose one of {list(ENGINES)}.")
