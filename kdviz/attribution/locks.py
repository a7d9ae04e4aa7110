"""Locks that keep concurrent sessions from stepping on one shared model.

captum registers hooks on the model while it runs and the dashboard shares one cached model object between
sessions, so attribution calls on the same model object are serialised by a per-model lock
(:func:`model_lock`). Holding it also holds the process-wide :data:`TRACE_GATE` shared: ``torch.fx`` tracing
(behind the inference twin's Conv+BN folding) patches ``nn.Module`` for every thread, so no forward pass may
run while a model is traced.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

__all__ = ["TRACE_GATE", "ModelGuard", "TraceGate", "model_lock"]


class TraceGate:
    """Keeps torch.fx tracing apart from every forward pass of the process.

    ``torch.fx.symbolic_trace`` patches ``nn.Module.__call__`` and ``__getattr__`` on the class, for every
    thread: a forward pass that runs in another session while a model is traced goes through the tracer and
    fails ("module is not installed as a submodule"). Forward passes hold the gate shared (re-entrant per
    thread); a trace holds it alone. A waiting trace lets no new forward pass in, and gives up after
    ``timeout`` seconds (the caller then copies the model unfused, which needs no trace) so nested model locks
    cannot deadlock.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0
        self._local = threading.local()

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the gate for forward passes (many threads at once).

        Yields
        ------
        None
        """
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            with self._cond:
                while self._writer or self._waiting:
                    self._cond.wait()
                self._readers += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                with self._cond:
                    self._readers -= 1
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self, timeout: float = 10.0) -> Iterator[bool]:
        """Hold the gate alone.

        Parameters
        ----------
        timeout : float, default 10.0
            Seconds to wait for the running forward passes to finish.

        Yields
        ------
        bool
            True when the gate is held alone, False when ``timeout`` passed without it.
        """
        holds = getattr(self._local, "depth", 0) > 0
        with self._cond:
            if holds:
                self._readers -= 1  # this thread's own forward passes are paused while it traces
            self._waiting += 1
            got = self._cond.wait_for(lambda: not self._writer and self._readers == 0, timeout=timeout)
            self._waiting -= 1
            if got:
                self._writer = True
            elif holds:
                self._readers += 1
            self._cond.notify_all()
        try:
            yield got
        finally:
            if got:
                with self._cond:
                    self._writer = False
                    if holds:
                        self._readers += 1
                    self._cond.notify_all()


TRACE_GATE = TraceGate()


class ModelGuard:
    """Context manager: ``model``'s own lock, then the trace gate shared (see :class:`TraceGate`)."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self._gates: threading.local = threading.local()

    def __enter__(self) -> ModelGuard:
        self.lock.acquire()
        gate = TRACE_GATE.shared()
        try:
            gate.__enter__()
        except BaseException:
            self.lock.release()
            raise
        stack = getattr(self._gates, "stack", None)
        if stack is None:
            stack = self._gates.stack = []
        stack.append(gate)
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            self._gates.stack.pop().__exit__(None, None, None)
        finally:
            self.lock.release()


_LOCKS: weakref.WeakKeyDictionary[nn.Module, ModelGuard] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(model: nn.Module) -> ModelGuard:
    """The lock that serialises attribution calls on ``model`` (one per model object, re-entrant).

    Holding it also keeps torch.fx tracing elsewhere in the process from running during the forward passes.

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    ModelGuard
        A context manager.
    """
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = ModelGuard(threading.RLock())
        return lock
