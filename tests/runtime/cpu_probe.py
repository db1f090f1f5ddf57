"""What a capped child sees and uses (run forked, or as a script by ``run_child``)."""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import sys
import time


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def probe(out: str) -> int:
    """Two busy processes for a while: with a one-core cap their CPU time together cannot
    exceed the wall time; without it, on two idle cores, it would be about twice that."""
    from threadpoolctl import threadpool_info

    context = multiprocessing.get_context("fork")
    started = time.monotonic()
    spinners = [context.Process(target=_spin, args=(0.8,)) for _ in range(2)]
    for spinner in spinners:
        spinner.start()
    for spinner in spinners:
        spinner.join()
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "w") as f:
        json.dump(
            {
                "cores": sorted(os.sched_getaffinity(0)),
                "omp": os.environ.get("OMP_NUM_THREADS"),
                "pools": sorted({p["num_threads"] for p in threadpool_info()}),
                "cpu": usage.ru_utime + usage.ru_stime,
                "wall": wall,
            },
            f,
        )
    return 0


if __name__ == "__main__":
    sys.exit(probe(sys.argv[1]))
