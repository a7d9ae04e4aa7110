"""Distributed evaluation on a Ray cluster: Ray's batch-inference pattern for ``kdviz evaluate --ray``.

A pool of Ray actors (:class:`ZooWorker`), each holding a modality's batch runner
(``kdviz.evaluation.pipeline.BatchRunner``: the zoo's models, with their tokenizers for texts) once on its device
(one GPU per worker where the cluster has GPUs, else ``threads`` CPU threads per worker), is mapped over input
batches. The runner reaches the workers through Ray's object store: the driver puts it there once (``ray.put``)
and every worker reads the same object when it starts. The test inputs do not: each task carries its own batch
(the inputs ``lo:hi`` and their labels), so a worker holds one batch at a time, never the whole test set.

The driver (``kdviz.evaluation.pipeline.run_plan``) keeps everything that makes a run reproducible: it decides
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from kdviz.errors import InvalidInputError

__all__ = ["ClusterOptions", "RayEvaluator", "ZooWorker", "evaluate_batches"]


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
class _Job:
    batch: int
    lo: int
    hi: int


class ZooWorker:
    """A Ray actor body: a batch runner (the zoo's models, held once) that evaluates the batch each call carries."""

    def __init__(self, runner: Any, threads: int) -> None:
        torch.set_num_threads(max(1, int(threads)))
        self.runner = runner

    def evaluate(self, lo: int, hi: int, inputs: Any, labels: np.ndarray | None) -> Any:
        """Rows of inputs ``lo:hi`` given as ``inputs``/``labels``, computed as a single process computes them."""
        return self.runner.evaluate(lo, hi, inputs, labels)

    def pid(self) -> int:
        """The worker's process id (to watch or stop it)."""
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
                "threads_per_worker": self.options.threads, "device": self.worker_device(None)}

    def _gpus(self, device: str | None) -> bool:
        if self.options.use_gpus is not None:
            return self.options.use_gpus
        return device != "cpu" and _ray().cluster_resources().get("GPU", 0) >= 1

    def worker_device(self, device: str | None) -> str:
        """The device a worker uses for a runner asking for ``device``: a GPU where the cluster has them."""
        return "cuda" if self._gpus(device) else "cpu"

    def _n_workers(self, device: str | None = None) -> int:
        if self.options.workers is not None:
            return max(1, int(self.options.workers))
        res = _ray().cluster_resources()
        if self._gpus(device):
            return max(1, int(res.get("GPU", 1)))
        return max(1, int(res.get("CPU", 1) // max(1, self.options.threads)))

    def start_workers(self, runner: Any, inputs: Any, labels: np.ndarray | None) -> None:
        """Put ``runner`` (its models) in the object store once and start the worker actors; ``inputs`` and
        ``labels`` stay here: each task is sent its own batch of them."""
        ray = _ray()
        self._device_req = runner.device
        self._batch = lambda job: (inputs[job.lo:job.hi], None if labels is None else labels[job.lo:job.hi])
        self._worker = (ZooWorker, (ray.put(runner.for_worker(self.worker_device(runner.device))), self.options.threads))
        self.actors = [self._new_actor() for _ in range(self._n_workers(runner.device))]

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
        from ray.exceptions import RayActorError, RayTaskError  # noqa: PLC0415  (ray is optional: imported on use)

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


def evaluate_batches(
    cluster: ClusterOptions | RayEvaluator | str, runner: Any, *, inputs: Any, labels: np.ndarray | None,
    jobs: Sequence[tuple[int, int, int]], facts: dict[str, Any] | None = None,
) -> Iterator[tuple[int, Any]]:
    """``(batch, frame)`` for every ``(batch, lo, hi)`` job, computed by ``runner`` on a Ray cluster's workers.

    ``cluster``: options (a cluster is joined or started, and left afterwards), an address string
    (``'local'`` = a local cluster), or a :class:`RayEvaluator` the caller opened (its workers are started
    here and stopped at the end). ``facts`` receives the cluster's description, the device its workers use,
    the batches retried and the workers lost.
    """
    if isinstance(cluster, str):
        cluster = ClusterOptions(address=None if cluster == "local" else cluster)
    owned = isinstance(cluster, ClusterOptions)
    evaluator = RayEvaluator(cluster) if owned else cluster
    if owned:
        evaluator.__enter__()
    try:
        evaluator.start_workers(runner, inputs, labels)
        if facts is not None:
            facts.update(evaluator.describe())
            facts["device"] = evaluator.worker_device(runner.device)
        yield from evaluator.run(jobs)
        if facts is not None:
            facts.update(retried_batches=list(evaluator.retried_batches), workers_lost=evaluator.workers_lost)
    finally:
        if owned:
            evaluator.__exit__(None, None, None)
        else:
            evaluator.stop_workers()


def _ray() -> Any:
    try:
        import ray  # noqa: PLC0415  (optional and slow to import: only --ray needs it)
    except ImportError as err:  # pragma: no cover - ray is in requirements.txt
        raise InvalidInputError("--ray needs the 'ray' package: pip install 'ray==2.60.0' (or kdviz[cluster])") from err
    return ray
