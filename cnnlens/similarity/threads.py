"""Intra-op threads for the similarity math on a few cores.

Two rules, both measured on 2 cores: small work runs on one thread (a second
one gains little idle and loses up to 10x next to a busy process), and the
two sides of a pair run side by side, one core each (:func:`both`).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

import torch

__all__ = ["TUNED", "both", "small_threads"]

#: The one knob: ``CNNLENS_THREADS=plain`` in the environment (or ``TUNED = False``) runs
#: everything in turn on torch's own thread pool (no one-thread sections, nothing side by
#: side). ``bench/scale.py --threads plain`` measures what the tuning is worth.
TUNED = os.environ.get("CNNLENS_THREADS", "tuned") != "plain"

_SMALL = 640  # decompositions up to this size run on one thread (see small_threads)
_SMALL_FLOPS = 5e7  # and products up to this many flops (~1 ms on one core)


@contextmanager
def small_threads(size: int = 0, flops: float | None = None):
    """One intra-op thread for work on small (size x size) matrices.

    On 2 cores shared with another busy process, a 64 x 64 matmul takes 13 us on
    one thread and 8 ms on two (MKL waits a scheduler slice for the descheduled
    thread); eigh/svd of 200 x 200 take 4 ms vs 0.1-2 s, of 500 x 500 28 ms vs
    43 ms (up to 170 ms). Idle, two threads make a 500 x 500 eigh only 1.4x
    faster, which :func:`both` gets without the risk. Large decompositions keep
    all threads (eigh 2000: 0.7 s vs 1.2 s). With ``flops``, the test is the
    work of a GEMM instead: products under ~1 ms on one core gain little from a
    second thread when idle and can lose 10x next to a busy process (a
    (64 x 16384) @ (16384 x 64) product: 1.8 ms on one thread, 12 ms on two).
    """
    if not TUNED or ((flops > _SMALL_FLOPS) if flops is not None else (size > _SMALL)):
        yield
        return
    with _one_thread():
        yield


@contextmanager
def _one_thread():
    """One intra-op thread for the calling thread. torch keeps the count per thread
    (OpenMP), so each thread saves and restores its own, whatever the order in
    which overlapping sections on several threads end."""
    prev = torch.get_num_threads()
    if prev == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _on_one_thread(f: Callable, x):
    with _one_thread():
        return f(x)


_WORKER = "cnnlens-linalg"
_pool: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    global _pool
    _pool = None  # a forked child has no worker thread: the old pool would never run


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def both(f: Callable, a, b):
    """``(f(a), f(b))``: the two sides of a pair, side by side on one core each.

    Decompositions scale poorly to a second thread (LAPACK's reduction to
    tridiagonal form is memory bound), so two of them side by side beat two in
    turn, and unlike two threads inside one decomposition this costs nothing
    next to a busy process. Measured here (``bench/floors.py``; the busy-process
    figures with a spinning process beside it): eigh of 500 x 500 twice, 44 ms in
    turn on one thread, 30 ms in turn on two, 22 ms side by side; with a busy
    process 44 ms side by side, 65 ms (up to 200 ms) on two threads. At 2000 x
    2000: 1.29 s in turn on two threads, 1.18 s side by side.
    """
    global _pool
    if not TUNED or torch.get_num_threads() < 2 or \
            threading.current_thread().name.startswith(_WORKER):
        return f(a), f(b)
    if _pool is None:
        _pool = ThreadPoolExecutor(1, thread_name_prefix=_WORKER)
    with _one_thread():
        other = _pool.submit(_on_one_thread, f, b)
        try:
            first = f(a)
        finally:
            wait([other])
        return first, other.result()
