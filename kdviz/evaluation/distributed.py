"""Distributed evaluation on a Ray cluster: Ray's batch-inference pattern for ``kdviz evaluate --ray``.

A pool of Ray actors (:class:`ZooWorker`), each holding the zoo's models once on its device (one GPU per
worker where the cluster has GPUs, else ``threads`` CPU threads per worker), is mapped over input batches.
The models reach the workers through Ray's object store: the driver puts them there once (``ray.put``) and
every worker reads the same object when it starts. The test inputs do not: each task carries its own batch
(the inputs ``lo:hi`` and their labels), so a worker holds one batch at a time, never the whole test set.

Text zoos (``kdviz.evaluation.text``) run the same way through :class:`TextZooWorker` and
:func:`evaluate_text_batches`: the models with their tokenizers go to the object store once, each task carries
its batch's snippets.

The driver (``kdviz.evaluation.evaluate.evaluate_zoo``) keeps everything that makes a run reproducible: it decides
the batches, writes each finished batch to the resume cache and orders the rows, so a distributed run
writes exactly the table a single-process run writes, and either can resume the other's cache.

Faults: a worker that dies (node lost, process killed, ``ray.kill``) fails the task it was running; the
batch goes back to the queue and runs on another worker, and a replacement worker is started (at most
``max_worker_restarts`` in a run). Results are keyed by batch, so a batch is never counted twice.

Ray serialises objects with pickle between its own processes: run a cluster only on a private network
you trust (Ray's security guidance); kdviz never loads pickles from files (weights come from safetensors).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ClusterOptions", "ModelPayload", "RayEvaluator", "TextZooWorker", "ZooWorker", "evaluate_batches",
           "evaluate_text_batches"]


@dataclass(frozen=True)
class ClusterOptions:
    """Where and how to run: ``address`` None starts a local cluster on this machine; ``"auto"`` or
    ``"host:6379"`` joins a running one (``ray start --head``). ``workers`` default: one per GPU, else
    the cluster's CPUs // ``threads``."""

    address: str | None = None
    workers: int | None = None
    threads: int = 1  # torch CPU threads per worker (CPU workers reserve this many Ray CPUs)
    use_gpus: bool | None = None  # None: when the cluster has GPUs and the device is not 'cpu'
    max_worker_restarts: int | None = None  # default: as many as workers
    local_num_cpus: int | None = None  # CPUs of a local cluster started here (default: all)


@dataclass(frozen=True)
class ModelPayload:
    """What a worker needs of one zoo model (the fields ``compare_models`` reads, plus the module)."""

    id: str
    role: str
    arch: str
    alpha: float | None
    method: str
    module: Any


@dataclass(frozen=True)
class _Job:
    batch: int
    lo: int
    hi: int


class ZooWorker:
    """A Ray actor body: the zoo's models, held once; evaluates the batch each call carries."""

    def __init__(self, models: Sequence[ModelPayload], data: dict[str, np.ndarray], settings: Any,
                 device: str | None, threads: int, precision_emulated: bool = False) -> None:
        import torch

        torch.set_num_threads(max(1, int(threads)))
        self.teacher, self.students = models[0], list(models[1:])
        self.data, self.settings, self.device = data, settings, device  # data: the normalisation (mean, std)
        self.precision_emulated = precision_emulated

    def evaluate(self, lo: int, hi: int, x: np.ndarray, y: np.ndarray | None) -> Any:
        """Rows of inputs ``lo:hi`` given as ``x``/``y`` (:func:`kdviz.evaluation.batch.evaluate_batch`, as a
        single process runs it)."""
        from kdviz.evaluation.batch import evaluate_batch

        return evaluate_batch(
            self.teacher, self.students, x, y, np.arange(lo, hi), self.data["mean"], self.data["std"], self.settings,
            self.device, allow_emulated=self.precision_emulated,
        )

    def pid(self) -> int:
        return os.getpid()


class TextZooWorker:
    """A Ray actor body for a text zoo: the models with their tokenizers (``kdviz.analysis.text.TextEntry``), held
    once; evaluates the snippets each call carries (``kdviz.analysis.text.compare_text_batch``, exactly as
    ``kdviz.evaluation.text.evaluate_text_batch`` calls it in a single process)."""

    def __init__(self, entries: Sequence[Any], settings: Any, threads: int, lexicon: frozenset[str] | None,
                 max_length: int) -> None:
        import torch

        torch.set_num_threads(max(1, int(threads)))
        self.teacher, self.students = entries[0], list(entries[1:])
        self.settings, self.lexicon, self.max_length = settings, lexicon, max_length

    def evaluate(self, lo: int, hi: int, texts: Sequence[str], labels: np.ndarray | None) -> Any:
        from kdviz.analysis.text import compare_text_batch  # what kdviz.evaluation.text.evaluate_text_batch runs

        s = self.settings
        return compare_text_batch(self.teacher, self.students, list(texts), labels=labels,
                                  input_ids=list(range(lo, hi)), method=s.method, k=s.k, null_copies=s.null_copies,
                                  lexicon=self.lexicon, max_length=self.max_length, **s.method_params)

    def pid(self) -> int:
        return os.getpid()


@dataclass
class RayEvaluator:
    """A pool of :class:`ZooWorker` actors on a Ray cluster; ``run`` yields finished batches as they come.

    Use as a context manager (``with RayEvaluator(options) as ev: ...``): it joins or starts the cluster
    and shuts down only a cluster it started itself.
    """

    options: ClusterOptions = field(default_factory=ClusterOptions)
    actors: list[Any] = field(default_factory=list, init=False)
    retried_batches: list[int] = field(default_factory=list, init=False)
    workers_lost: int = field(default=0, init=False)
    _started_cluster: bool = field(default=False, init=False)
    _in_flight: dict[Any, tuple[Any, _Job]] = field(default_factory=dict, init=False)

    def busy_workers(self) -> list[tuple[int, Any]]:
        """``(batch, actor)`` of every batch sent and not yet collected, oldest first (to watch or stop a run)."""
        return [(job.batch, actor) for actor, job in list(self._in_flight.values())]

    def __enter__(self) -> RayEvaluator:
        ray = _ray()
        if not ray.is_initialized():
            if self.options.address is None:
                ray.init(num_cpus=self.options.local_num_cpus, include_dashboard=False,
                         _node_ip_address="127.0.0.1", log_to_driver=False)
            else:
                ray.init(address=self.options.address, log_to_driver=False)
            self._started_cluster = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop_workers()
        if self._started_cluster:
            _ray().shutdown()
            self._started_cluster = False

    def stop_workers(self) -> None:
        """End this pool's worker actors (and free the objects they held)."""
        ray = _ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []

    def describe(self) -> dict[str, Any]:
        """Cluster facts for the run record: address, nodes, resources, workers, device per worker."""
        ray = _ray()
        res = ray.cluster_resources()
        return {"ray_version": ray.__version__, "address": self.options.address or "local",
                "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
                "cpus": res.get("CPU", 0.0), "gpus": res.get("GPU", 0.0), "workers": self._n_workers(),
                "threads_per_worker": self.options.threads, "device": self._device(None)}

    def _gpus(self, device: str | None) -> bool:
        if self.options.use_gpus is not None:
            return self.options.use_gpus
        return device != "cpu" and _ray().cluster_resources().get("GPU", 0) >= 1

    def _device(self, device: str | None) -> str:
        return "cuda" if self._gpus(device) else "cpu"

    def _n_workers(self, device: str | None = None) -> int:
        if self.options.workers is not None:
            return max(1, int(self.options.workers))
        res = _ray().cluster_resources()
        if self._gpus(device):
            return max(1, int(res.get("GPU", 1)))
        return max(1, int(res.get("CPU", 1) // max(1, self.options.threads)))

    def start_workers(self, models: Sequence[ModelPayload], data: dict[str, np.ndarray], settings: Any,
                      device: str | None, *, allow_emulated: bool = False) -> None:
        """Put the models in the object store once and start the worker actors; ``data`` (``x``, ``y``, ``mean``,
        ``std``) stays here: each task is sent its own batch of ``x`` and ``y``."""
        ray = _ray()
        self._device_req = device
        x, y = data["x"], data.get("y")
        self._batch = lambda job: (x[job.lo:job.hi], None if y is None else y[job.lo:job.hi])
        static = {k: v for k, v in data.items() if k not in ("x", "y")}
        self._worker = (ZooWorker, (ray.put(list(models)), static, settings, self._device(device), self.options.threads,
                                    allow_emulated))
        self.actors = [self._new_actor() for _ in range(self._n_workers(device))]

    def start_text_workers(self, entries: Sequence[Any], texts: Sequence[str], labels: np.ndarray | None,
                           settings: Any, *, lexicon: frozenset[str] | None, max_length: int) -> None:
        """Text zoo workers (:class:`TextZooWorker`, CPU): models and tokenizers in the object store once; each
        task is sent its batch's snippets and labels."""
        ray = _ray()
        self._device_req = "cpu"
        texts = list(texts)
        self._batch = lambda job: (texts[job.lo:job.hi], None if labels is None else labels[job.lo:job.hi])
        self._worker = (TextZooWorker, (ray.put(list(entries)), settings, self.options.threads, lexicon, max_length))
        self.actors = [self._new_actor() for _ in range(self._n_workers("cpu"))]

    def _new_actor(self) -> Any:
        ray = _ray()
        gpus = self._gpus(self._device_req)
        body, args = self._worker
        cls = ray.remote(body).options(
            num_cpus=0 if gpus else self.options.threads, num_gpus=1 if gpus else 0, max_restarts=0,
        )
        return cls.remote(*args)

    def _submit(self, actor: Any, job: _Job) -> Any:
        return actor.evaluate.remote(job.lo, job.hi, *self._batch(job))

    def run(self, jobs: Sequence[tuple[int, int, int]]) -> Iterator[tuple[int, Any]]:
        """Evaluate ``(batch, lo, hi)`` jobs on the workers; yield ``(batch, frame)`` in completion order.

        A batch whose worker died is queued again (on any worker) and a replacement worker is started.
        A batch that raises an ordinary error stops the run with that error.
        """
        ray = _ray()
        from ray.exceptions import RayActorError, RayTaskError

        queue = deque(_Job(*j) for j in jobs)
        idle = list(self.actors)
        in_flight = self._in_flight
        in_flight.clear()
        restarts_left = (len(self.actors) if self.options.max_worker_restarts is None
                         else self.options.max_worker_restarts)
        while queue or in_flight:
            while queue and idle:
                job, actor = queue.popleft(), idle.pop(0)
                in_flight[self._submit(actor, job)] = (actor, job)
            if not in_flight:
                raise RuntimeError("kdviz evaluate --ray: every worker died and no restart is left")
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            actor, job = in_flight.pop(ref)
            try:
                frame = ray.get(ref)
            except RayActorError:
                self.workers_lost += 1
                self.retried_batches.append(job.batch)
                queue.appendleft(job)
                if actor in self.actors:
                    self.actors.remove(actor)
                if restarts_left > 0:
                    restarts_left -= 1
                    replacement = self._new_actor()
                    self.actors.append(replacement)
                    idle.append(replacement)
                elif not self.actors:
                    raise RuntimeError(
                        f"kdviz evaluate --ray: every worker died ({self.workers_lost} lost); finished batches "
                        "are in the cache, rerun to resume"
                    ) from None
                continue
            except RayTaskError as err:
                raise err.as_instanceof_cause() from None
            idle.append(actor)
            while queue and idle:  # keep every worker busy while the caller handles this batch
                nxt, a = queue.popleft(), idle.pop(0)
                in_flight[self._submit(a, nxt)] = (a, nxt)
            yield job.batch, frame


def _run_on(
    cluster: ClusterOptions | RayEvaluator | str, jobs: Sequence[tuple[int, int, int]], facts: dict[str, Any] | None,
    start: Callable[[RayEvaluator], None], *, device: str | None = None,
) -> Iterator[tuple[int, Any]]:
    """Join (or use) a cluster, ``start`` its workers, yield every job's ``(batch, frame)``, then stop the workers
    (and leave a cluster joined here); ``facts`` gets the cluster's description, retries and lost workers."""
    if isinstance(cluster, str):
        cluster = ClusterOptions(address=None if cluster == "local" else cluster)
    owned = isinstance(cluster, ClusterOptions)
    evaluator = RayEvaluator(cluster) if owned else cluster
    if owned:
        evaluator.__enter__()
    try:
        start(evaluator)
        if facts is not None:
            facts.update(evaluator.describe())
            if device is not None:
                facts["device"] = device
        yield from evaluator.run(jobs)
        if facts is not None:
            facts.update(retried_batches=list(evaluator.retried_batches), workers_lost=evaluator.workers_lost)
    finally:
        if owned:
            evaluator.__exit__(None, None, None)
        else:
            evaluator.stop_workers()


def evaluate_batches(
    cluster: ClusterOptions | RayEvaluator | str, *, teacher: Any, students: Sequence[Any], data: dict[str, Any],
    settings: Any, device: str | None, jobs: Sequence[tuple[int, int, int]], allow_emulated: bool = False,
    facts: dict[str, Any] | None = None,
) -> Iterator[tuple[int, Any]]:
    """``(batch, frame)`` for every ``(batch, lo, hi)`` job, computed on a Ray cluster.

    ``cluster``: options (a cluster is joined or started, and left afterwards), an address string
    (``'local'`` = a local cluster), or a :class:`RayEvaluator` the caller opened (its workers are started
    here and stopped at the end). ``facts`` receives the cluster's description, the batches retried and
    the workers lost.
    """
    models = [ModelPayload(str(m.id), "teacher" if i == 0 else str(getattr(m, "role", "student")), str(m.arch),
                           m.alpha, str(getattr(m, "method", "kd")), m.module)
              for i, m in enumerate([teacher, *students])]
    yield from _run_on(cluster, jobs, facts,
                       lambda ev: ev.start_workers(models, data, settings, device, allow_emulated=allow_emulated))


def evaluate_text_batches(
    cluster: ClusterOptions | RayEvaluator | str, *, teacher: Any, students: Sequence[Any], texts: Sequence[str],
    labels: np.ndarray | None, settings: Any, lexicon: frozenset[str] | None, max_length: int,
    jobs: Sequence[tuple[int, int, int]], facts: dict[str, Any] | None = None,
) -> Iterator[tuple[int, Any]]:
    """``(batch, frame)`` for every ``(batch, lo, hi)`` job of a text zoo, on a Ray cluster (as
    :func:`evaluate_batches`; ``teacher``/``students`` are ``kdviz.analysis.text.TextEntry``)."""
    yield from _run_on(cluster, jobs, facts,
                       lambda ev: ev.start_text_workers([teacher, *students], texts, labels, settings,
                                                        lexicon=lexicon, max_length=max_length),
                       device="cpu")


def _ray() -> Any:
    try:
        import ray
    except ImportError as err:  # pragma: no cover - ray is in requirements.txt
        raise ValueError("--ray needs the 'ray' package: pip install 'ray==2.60.0' (or kdviz[cluster])") from err
    return ray
