"""A test split cut into batches, each computed once: finished batches are written to a folder and a rerun with
the same settings reads them back instead of computing them. Shared by the image/series and the text evaluation,
in one process or on Ray workers."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

__all__ = ["BatchRun", "EvalProgress", "Job", "batch_path", "run_batches", "write_atomic"]

Job = tuple[int, int, int]  # (batch index, first input, end input)


@dataclass(frozen=True)
class EvalProgress:
    """Reported after every batch: inputs done so far out of the total, and whether it came from cache."""

    batch: int
    n_batches: int
    done: int
    total: int
    resumed: bool
    elapsed_s: float

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass(frozen=True)
class BatchRun:
    """Every batch's rows in batch order, how many were computed and read back, and when the run started."""

    frame: pd.DataFrame
    computed: int
    resumed: int
    started: float

    @property
    def elapsed_s(self) -> float:
        return round(time.perf_counter() - self.started, 3)


def batch_path(folder: Path, lo: int, hi: int) -> Path:
    return folder / f"batch_{lo:06d}_{hi:06d}.parquet"


def write_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write to a temporary name and rename, so a stopped run never leaves a half-written batch behind."""
    tmp = path.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def run_batches(
    n: int,
    batch_size: int,
    folder: Path | None,
    *,
    compute: Callable[[list[Job]], Iterable[tuple[int, pd.DataFrame]]],
    desc: str,
    progress: Callable[[EvalProgress], None] | None = None,
    progress_bar: bool = True,
) -> BatchRun:
    """Run the batches of ``n`` inputs not already in ``folder`` through ``compute`` (it gets the jobs left and
    yields ``(batch index, rows)`` as each finishes, in any order); each is written to ``folder`` as it arrives."""
    n_batches = math.ceil(n / batch_size)
    jobs = [(b, b * batch_size, min(n, (b + 1) * batch_size)) for b in range(n_batches)]
    bounds = {b: (lo, hi) for b, lo, hi in jobs}
    frames: dict[int, pd.DataFrame] = {}
    start = time.perf_counter()
    done = computed = resumed = 0
    with tqdm(total=n_batches, desc=desc, unit="batch", disable=not progress_bar) as bar:

        def finished(b: int, frame: pd.DataFrame, from_cache: bool) -> None:
            nonlocal done
            lo, hi = bounds[b]
            if not from_cache and folder is not None:
                write_atomic(frame, batch_path(folder, lo, hi))
            frames[b] = frame
            done += hi - lo
            bar.update(1)
            if progress is not None:
                progress(EvalProgress(b, n_batches, done, n, from_cache, time.perf_counter() - start))

        todo = []
        for b, lo, hi in jobs:
            path = None if folder is None else batch_path(folder, lo, hi)
            if path is not None and path.exists():
                resumed += 1
                finished(b, pd.read_parquet(path), True)
            else:
                todo.append((b, lo, hi))
        if todo:
            for b, frame in compute(todo):
                computed += 1
                finished(b, frame, False)
    frame = pd.concat([frames[b] for b in sorted(frames)], ignore_index=True)
    return BatchRun(frame, computed, resumed, start)
