"""Resource caps for a child process running user code: memory and CPUs.

Memory is an address-space limit (``RLIMIT_AS``): an allocation past it fails inside the
child, which dies or raises ``MemoryError``; the worker survives.

CPUs are enforced the way ``docker run --cpuset-cpus`` does, without privileges: the child
is pinned (``sched_setaffinity``) to ``ceil(cpus)`` of the cores the worker may use, so
however many threads or processes the code starts, together they get at most that many
cores. Native thread pools are sized to match — through the usual environment variables
for a fresh interpreter (a training job), and through ``threadpoolctl`` and pyarrow for a
child forked from the warm server, whose BLAS and Arrow pools exist already — so the code
does not run 16 threads on one core. A fraction rounds up to a whole core: a CFS quota
would need a writable cgroup, which a worker does not usually have.
"""

from __future__ import annotations

import math
import os
import resource
import sys

# What numerical and data libraries read to size their thread pools.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "RAYON_NUM_THREADS",
    "POLARS_MAX_THREADS",
    "LOKY_MAX_CPU_COUNT",
)


def cores_for(cpus: float, allowed: set[int], salt: int) -> set[int] | None:
    """The cores a child asking for ``cpus`` is pinned to, or ``None`` when it may use all
    of ``allowed`` anyway. ``salt`` (the child's pid) rotates the choice, so children of
    several workers on one machine spread over the cores instead of piling onto core 0."""
    wanted = max(1, math.ceil(cpus))
    ordered = sorted(allowed)
    if wanted >= len(ordered):
        return None
    start = salt % len(ordered)
    return {ordered[(start + i) % len(ordered)] for i in range(wanted)}


def thread_env(cpus: float | None) -> dict[str, str]:
    """Environment variables sizing native thread pools to ``cpus`` (none when unset)."""
    if cpus is None:
        return {}
    threads = str(max(1, math.ceil(cpus)))
    return dict.fromkeys(THREAD_VARIABLES, threads)


def apply_in_child(*, memory_mb: int | None, cpus: float | None) -> None:
    """Cap the calling process (a child about to run user code)."""
    if memory_mb:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if cpus is None:
        return
    cores = cores_for(cpus, os.sched_getaffinity(0), os.getpid())
    if cores is not None:
        os.sched_setaffinity(0, cores)
    os.environ.update(thread_env(cpus))


def resize_loaded_pools(cpus: float | None) -> None:
    """Shrink the thread pools of libraries already loaded in a forked child (BLAS and
    OpenMP through threadpoolctl, Arrow's CPU pool); what loads later reads the
    environment :func:`apply_in_child` set."""
    if cpus is None:
        return
    threads = max(1, math.ceil(cpus))
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    if "pyarrow" in sys.modules:
        import pyarrow

        pyarrow.set_cpu_count(threads)
