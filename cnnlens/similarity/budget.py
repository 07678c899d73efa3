"""The memory budget of a similarity pass, and the plan that keeps within it.

Before the first forward pass the engine prices every form a group of layers can
take (streamed moments, kept activations with n x n Grams, per-batch minibatch
kernels) in bytes, and picks for each group the most exact one that fits the
budget. The plan is returned with the result (``MatrixResult.plan``), printed by
``similarity_matrix(..., dry_run=True)`` and shown by ``cl.Compare``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = ["AUTO_FRACTION", "BudgetError", "Plan", "PlanRow", "available_bytes", "give_back",
           "resolve_memory"]

#: ``memory="auto"``: this fraction of the memory available when the pass starts
#: (host RAM from /proc/meminfo's MemAvailable, or the CUDA device's free memory).
#: The rest is left to the models' own forwards, the kernel and everything else.
AUTO_FRACTION = 0.5


class BudgetError(MemoryError):
    """Even the leanest form of some layer's statistics does not fit the budget.

    Raised before any forward pass; the message names the layer and the bytes.
    """


def available_bytes(device=None) -> int:
    """Memory available now on ``device`` (host RAM for CPU)."""
    import torch

    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:  # macOS and others: total physical memory as a coarse stand-in
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


_LIBC = []


def give_back() -> None:
    """Return freed heap pages to the OS (glibc's ``malloc_trim``; elsewhere a no-op).

    The pairs stage frees many 10-100 MB float64 temporaries; glibc keeps the pages,
    and on the ResNet-50 pair the process grew to several times what it held (n=1024:
    2.85 GiB resident, 2.01 GiB after a trim). The engine trims after every row.
    """
    if not _LIBC:
        import ctypes
        try:
            _LIBC.append(ctypes.CDLL("libc.so.6").malloc_trim)
        except (OSError, AttributeError):
            _LIBC.append(None)
    if _LIBC[0] is not None:
        _LIBC[0](0)


def resolve_memory(memory, device=None) -> int:
    """``"auto"`` | int bytes -> bytes the statistics may hold."""
    if memory == "auto" or memory is None:
        return int(AUTO_FRACTION * available_bytes(device))
    if isinstance(memory, bool) or not isinstance(memory, int) or memory <= 0:
        raise ValueError(f"memory must be 'auto' or a positive number of bytes; got {memory!r}")
    return memory


def mib(b: float) -> str:
    return f"{b / 2 ** 20:,.0f} MiB" if b >= 2 ** 20 else f"{b / 1024:,.1f} KiB"


@dataclass(frozen=True)
class PlanRow:
    """One group of layers: which metrics it serves, in which form, for how many bytes."""

    reduce: str
    rows: int             # datapoints per image
    layers: int           # layers of both models in the group
    form: str             # "moments" | "kept" | "minibatch"
    metrics: tuple        # the metrics this form serves for the group
    bytes: int
    exact: bool
    why: str = ""


@dataclass
class Plan:
    """Every group's form and bytes; ``total`` never exceeds ``budget``."""

    budget: int
    n_images: int | None
    rows: list = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(r.bytes for r in self.rows)

    def form(self, metric: str) -> str:
        """"exact", "minibatch", "mixed" (by group) or "none" for a metric."""
        kinds = {("exact" if r.exact else "minibatch") for r in self.rows if metric in r.metrics}
        return "none" if not kinds else kinds.pop() if len(kinds) == 1 else "mixed"

    def summary(self) -> str:
        """One line for a status bar."""
        forms = ", ".join(f"{r.form} ({r.reduce}, {mib(r.bytes)})" for r in self.rows)
        return f"plan: {mib(self.total)} of {mib(self.budget)} budget; {forms}"

    def to_dict(self) -> dict:
        return {"budget": self.budget, "n_images": self.n_images,
                "rows": [r.__dict__ | {"metrics": list(r.metrics)} for r in self.rows]}

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        return cls(d["budget"], d["n_images"],
                   [PlanRow(**(r | {"metrics": tuple(r["metrics"])})) for r in d["rows"]])

    def __repr__(self) -> str:
        lines = [(f"Plan: {mib(self.total)} of a {mib(self.budget)} budget, "
                  f"n_images={self.n_images}")]
        for r in self.rows:
            kind = "exact" if r.exact else "estimator"
            why = f"  ({r.why})" if r.why else ""
            lines.append(f"  {r.form:<9} reduce={r.reduce:<9} rows/image={r.rows:<5} "
                         f"layers={r.layers:<4} {mib(r.bytes):>12}  {kind}  "
                         f"{', '.join(r.metrics)}{why}")
        return "\n".join(lines)
