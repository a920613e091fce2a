"""Python functions as jobs: a :class:`concurrent.futures.Executor` over every backend.

>>> from jobfleet import Executor                                   # doctest: +SKIP
>>> with Executor(resources={"cores": 1, "walltime": "10m"}) as ex: # doctest: +SKIP
...     squares = list(ex.map(pow, range(50), [2] * 50))            # one array job

Each call (function and arguments) is pickled with cloudpickle into a directory
under the jobfleet home (``futures/<id>/``); its job runs
``python -m jobfleet.futures.run DIR`` with the interpreter chosen (default: this
one), which writes what became of the call beside it. ``map`` submits ONE array
job (split when the scheduler's arrays are smaller), ``batch()`` gathers separate
``submit`` calls into one array, and one thread per executor completes the futures
from the backend's monitor (one batched poll per backend, never one per future).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from jobfleet.arrays import MAX_ARRAY_SIZE, parse_array
from jobfleet.config import Config, load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import FilesRemovedError, SpecError, UnknownJobError
from jobfleet.futures.dispatch import Dispatcher
from jobfleet.futures.future import JobFuture
from jobfleet.futures.layout import RUN_MODULE, call_directory, new_call_directory
from jobfleet.futures.payload import Call, PayloadTooLarge, read_payload_header, write_calls
from jobfleet.futures.piped import stage_tasks
from jobfleet.futures.run import call_files
from jobfleet.resources import Resources
from jobfleet.spec import JobSpec
from jobfleet.states import JobState
from jobfleet.units import parse_memory

__all__ = ["RUN_MODULE", "Executor", "call_directory"]

#: The largest payload accepted by default (submitit's limit too).
DEFAULT_MAX_PAYLOAD = "1G"


def _resources(given: Resources | Mapping[str, Any] | None, base: Resources) -> Resources:
    """``given`` over ``base`` (the configuration's defaults): only the keys given change."""
    if given is None:
        return base
    if isinstance(given, Resources):
        return given
    return base.overlaid(given)


def checkpoint_after(walltime_s: int) -> float:
    """When a call with a ``checkpoint`` method is asked for it: a tenth of the walltime
    (at least 5 s, at most 2 minutes) before the walltime.

    >>> checkpoint_after(3600), checkpoint_after(60), checkpoint_after(8)
    (3480, 54.0, 3)
    """
    return walltime_s - min(max(walltime_s / 10, 5), 120)


def _python_path() -> dict[str, str]:
    """The environment that lets the job import what this program imports by name:
    the directory of the script being run, then ``$PYTHONPATH``."""
    paths = []
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if script:
        paths.append(str(Path(os.path.abspath(script)).parent))
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return {"PYTHONPATH": os.pathsep.join(paths)} if paths else {}


class Executor(concurrent.futures.Executor):
    """Run Python calls as jobs on any backend.

    Args:
        backend: the backend (default: the configuration's, ``auto``).
        profile: a profile of the configuration file.
        resources: what each job asks for: a :class:`Resources`, or a mapping such as
            ``{"cores": 2, "memory": "4G", "walltime": "1h"}`` over the configuration's.
        name: the jobs' name (default: the function's name).
        python: the interpreter the jobs run (default: this one, ``sys.executable``);
            it must have the same major.minor and cloudpickle as this one.
        max_concurrent: at most this many elements of a ``map`` array run at once.
        max_requeues: a callable with a ``checkpoint`` method, submitted with a walltime,
            is asked for a checkpoint before its walltime and goes on as a new attempt
            of the same job, up to this many times (default 3), instead of ending
            ``timeout`` (single jobs: ``submit``).
        max_payload: the largest pickled call accepted (default ``1G``).
        workers: run the calls of ``map`` and ``batch()`` as pipe tasks served by this
            many workers, submitted as ONE array job (docs/pipe.md), instead of one
            array element per chunk: for many short calls. ``submit`` outside a batch
            stays a job of its own.
        config: a configuration to use instead of loading one.
        fleet: a :class:`Fleet` to submit through (not closed by the executor).
    """

    def __init__(
        self,
        backend: str | None = None,
        profile: str | None = None,
        resources: Resources | Mapping[str, Any] | None = None,
        name: str | None = None,
        python: str | None = None,
        *,
        max_concurrent: int | None = None,
        max_requeues: int = 3,
        max_payload: str | int = DEFAULT_MAX_PAYLOAD,
        workers: int | None = None,
        config: Config | None = None,
        fleet: Fleet | None = None,
    ) -> None:
        if fleet is not None:
            config = fleet.config
        elif config is None:
            config = load_config(profile=profile)
        owns = fleet is None
        fleet = fleet if fleet is not None else Fleet(config)
        be = fleet.backend(backend)
        self._dispatcher = Dispatcher(fleet, be.name, owns_fleet=owns)
        self._resources = _resources(resources, config.resources)
        self._environment = config.environment
        self._name = name
        self._python = python or sys.executable
        self._max_concurrent = max_concurrent
        if isinstance(max_requeues, bool) or not isinstance(max_requeues, int) or max_requeues < 0:
            raise SpecError("max_requeues", f"must be a whole number >= 0, got {max_requeues!r}")
        self._max_requeues = max_requeues
        self._max_payload = parse_memory(max_payload, "max_payload")
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
        ):
            raise SpecError("workers", f"must be a whole number >= 1, got {workers!r}")
        self._workers = workers
        self._shutdown = False
        self._lock = threading.Lock()
        self._batch: list[tuple[Call, JobFuture]] | None = None

    # -- the standard interface -------------------------------------------------------

    @property
    def fleet(self) -> Fleet:
        """The fleet the jobs are submitted through."""
        return self._dispatcher.fleet

    @property
    def backend(self) -> str:
        """The backend the jobs run on."""
        return self._dispatcher.backend

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> JobFuture:
        """Run ``fn(*args, **kwargs)`` as a job (inside ``batch()``: as an element of
        the batch's array); its future.

        Raises:
            RuntimeError: after :meth:`shutdown`.
            SpecError: the call pickles to more than ``max_payload``.
        """
        call = Call(fn, args, kwargs)
        with self._lock:
            self._check_open()
            if self._batch is not None:
                future = JobFuture(self._dispatcher)
                self._batch.append((call, future))
                return future
        return self._submit([[call]], array=False, name=self._job_name(fn))[0]

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        """``fn`` over the iterables, as ONE array job (``chunksize`` calls per element;
        several arrays when the scheduler's are smaller); the results in order.

        As the standard library's: the iterables are read at once; ``timeout`` counts
        from this call; leaving the loop early (or an error) cancels the calls that
        have not started.
        """
        if chunksize < 1:
            raise SpecError("chunksize", f"must be at least 1, got {chunksize}")
        calls = [Call(fn, tuple(args)) for args in zip(*iterables, strict=False)]
        with self._lock:
            self._check_open()
        chunks = [calls[i : i + chunksize] for i in range(0, len(calls), chunksize)]
        futures = self._submit(chunks, array=True, name=self._job_name(fn)) if chunks else []
        return self._results(futures, timeout)

    def _results(self, futures: list[JobFuture], timeout: float | None) -> Iterator[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            for future in futures:
                left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                yield future.result(left)
        finally:
            self._dispatcher.cancel_waiting([f for f in futures if not f.done()])

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new calls; ``cancel_futures``: cancel the calls whose jobs have not
        started; ``wait``: return once every call has ended."""
        with self._lock:
            self._shutdown = True
        pending = self._dispatcher.pending()
        if cancel_futures:
            self._dispatcher.cancel_waiting(pending)
        if wait:
            concurrent.futures.wait(pending)
        self._dispatcher.close()

    # -- jobfleet's additions -----------------------------------------------------------

    def options(self, **resources: Any) -> Executor:
        """An executor for the same backend with these resources changed
        (``cores=``, ``memory=``, ``walltime=``, ...); it shares this one's thread."""
        other = object.__new__(Executor)
        other.__dict__.update(self.__dict__)
        other._resources = _resources(resources, self._resources)
        other._lock = threading.Lock()
        other._batch = None
        return other

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Gather the ``submit`` calls made inside into one array job, submitted when
        the block ends (not at all when it raises: its futures are cancelled)."""
        with self._lock:
            self._check_open()
            if self._batch is not None:
                raise RuntimeError("batch() blocks of one executor do not nest")
            gathered: list[tuple[Call, JobFuture]] = []
            self._batch = gathered
        try:
            yield
        except BaseException:
            for _, future in gathered:
                future.cancel()
            raise
        finally:
            with self._lock:
                self._batch = None
        kept = [(c, f) for c, f in gathered if not f.cancelled()]
        if kept:
            name = self._job_name(kept[0][0].fn)
            self._submit([[c] for c, _ in kept], array=True, name=name, into=[f for _, f in kept])

    @classmethod
    def attach(cls, job_id: str, *, fleet: Fleet | None = None) -> JobFuture:
        """A future for the call of an existing job made by ``submit`` (e.g. after this
        program crashed); ``attach_all`` for the calls of a ``map`` or ``batch`` job."""
        futures = cls.attach_all(job_id, fleet=fleet)
        if len(futures) != 1 or futures[0].index is not None:
            raise SpecError(
                "job_id",
                f"job {job_id} runs {len(futures)} calls; use Executor.attach_all({job_id!r})",
            )
        return futures[0]

    @classmethod
    def attach_all(cls, job_id: str, *, fleet: Fleet | None = None) -> list[JobFuture]:
        """Futures for every call of an existing job, in the order they were given."""
        own = fleet is None
        fleet = fleet if fleet is not None else Fleet()
        try:
            record = fleet.records([job_id])[0]
        except UnknownJobError:
            if own:
                fleet.close()
            raise
        directory = call_directory(record.spec.get("command", ()))
        if directory is None:
            if own:
                fleet.close()
            raise SpecError("job_id", f"job {job_id} does not run a Python call of an Executor")
        if record.cleaned_at is not None:
            if own:
                fleet.close()
            raise FilesRemovedError(job_id, record.cleaned_at, "its calls went with them")
        dispatcher = Dispatcher(fleet, record.backend, owns_fleet=own)
        indices: list[int | None] = list(record.elements) if record.elements else [None]
        futures = []
        for index in indices:
            calls = int(read_payload_header(call_files(directory, index)[0]).get("calls", 1))
            for position in range(calls):
                future = JobFuture(dispatcher, directory)
                future.job_id, future.index, future.position = job_id, index, position
                futures.append(future)
        dispatcher.track(job_id, futures)
        dispatcher.close()  # its thread ends once these futures are done
        return futures

    # -- submitting ---------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def _job_name(self, fn: Callable[..., Any]) -> str:
        if self._name:
            return self._name
        name = getattr(fn, "__name__", "") or "call"
        return "call" if name.startswith("<") else name

    def _spec(self, directory: Path, name: str, indices: int | None, checkpoints: bool) -> JobSpec:
        array = None
        if indices is not None:
            limit = f"%{self._max_concurrent}" if self._max_concurrent else ""
            array = parse_array(f"1-{indices}{limit}")
        env = _python_path()
        walltime = self._resources.walltime_s
        requeues = 0
        if checkpoints and walltime and indices is None and self._max_requeues:
            env["JOBFLEET_CHECKPOINT_AFTER_S"] = f"{checkpoint_after(walltime):g}"
            requeues = self._max_requeues
        return JobSpec(
            [self._python, "-m", RUN_MODULE, str(directory)],
            name=name,
            workdir=os.getcwd(),
            env=env,
            resources=self._resources,
            environment=self._environment,
            array=array,
            retries=requeues,
            retry_on=(JobState.TIMEOUT,),
        )

    def _submit(
        self,
        chunks: Sequence[Sequence[Call]],
        *,
        array: bool,
        name: str,
        into: Sequence[JobFuture] | None = None,
    ) -> list[JobFuture]:
        """Write the payloads, submit (one job, or arrays of at most the backend's
        size), track; the futures of the calls in order."""
        if array and self._workers is not None:
            return self._submit_piped(chunks, into)
        dispatcher = self._dispatcher
        largest = dispatcher.fleet.backend(dispatcher.backend).capabilities.max_array_size
        per_array = min(largest or MAX_ARRAY_SIZE, MAX_ARRAY_SIZE)
        given = iter(into) if into is not None else None
        home = Path(dispatcher.fleet.registry.home)
        futures: list[JobFuture] = []
        for start in range(0, len(chunks), per_array):
            part = chunks[start : start + per_array]
            directory = new_call_directory(home)
            directory.mkdir(parents=True)
            mine = self._write_payloads(directory, part, array, given)
            checkpoints = any(callable(getattr(c.fn, "checkpoint", None)) for c in part[0])
            spec = self._spec(directory, name, len(part) if array else None, checkpoints)
            record = dispatcher.fleet.submit(spec, backend=dispatcher.backend)
            for future in mine:
                future.job_id = record.id
            dispatcher.track(record.id, mine)
            futures += mine
        return futures

    def _write_payloads(
        self,
        directory: Path,
        chunks: Sequence[Sequence[Call]],
        array: bool,
        given: Iterator[JobFuture] | None,
    ) -> list[JobFuture]:
        """Each chunk's payload (``<index>.in``, or ``call.in`` for a single job) and a
        future per call (the ``given`` ones of a batch, in order)."""
        futures: list[JobFuture] = []
        for n, chunk in enumerate(chunks, start=1):
            index = n if array else None
            try:
                write_calls(call_files(directory, index)[0], chunk, self._max_payload)
            except PayloadTooLarge as exc:
                raise SpecError("payload", str(exc)) from None
            for position in range(len(chunk)):
                future = next(given) if given is not None else JobFuture(self._dispatcher)
                future.directory, future.index, future.position = directory, index, position
                futures.append(future)
        return futures

    def _submit_piped(
        self, chunks: Sequence[Sequence[Call]], into: Sequence[JobFuture] | None
    ) -> list[JobFuture]:
        """Write the payloads, stage a pipe task per chunk, submit the workers as one
        array job, track; the futures of the calls in order."""
        dispatcher = self._dispatcher
        given = iter(into) if into is not None else None
        directory = new_call_directory(Path(dispatcher.fleet.registry.home))
        directory.mkdir(parents=True)
        futures = self._write_payloads(directory, chunks, True, given)
        pipe = stage_tasks(directory, range(1, len(chunks) + 1), self._python)
        assert self._workers is not None
        job_id = pipe.submit(
            min(self._workers, len(chunks)), backend=dispatcher.backend,
            resources=self._resources, max_concurrent=self._max_concurrent,
            python=self._python, env=_python_path(), fleet=dispatcher.fleet,
        )  # fmt: skip
        for future in futures:
            future.job_id = job_id
        dispatcher.track(job_id, futures, pipe=pipe)
        return futures
