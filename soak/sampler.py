"""Resident memory and open file descriptors of every process of a running platform.

:class:`Sampler` reads ``/proc/PID/status`` (VmRSS) and ``/proc/PID/fd`` of the root
process and all its descendants every few seconds, on a thread of its own. A process is
known by its pid and its start time (``/proc/PID/stat``), so a pid reused by a new
process is a new series. :func:`verdicts` says per long-lived process whether it stayed
flat; :func:`write_report` writes the table (and a chart when matplotlib is there).

"Flat" is judged on medians, which one garbage collection or one burst of requests does
not move: the first quarter of the run is warm-up (imports, caches, pools filling); the
median of the last quarter is compared with the median of the second quarter. RSS may grow
by at most :data:`RSS_TOLERANCE` of its second-quarter median or :data:`RSS_FLOOR_KIB`,
whichever is larger (allocators keep freed pages; a short run sees warm-up's tail), and
open file descriptors by at most :data:`FD_TOLERANCE`. A leak of a few KiB per request
grows without bound and crosses that over a 30-minute run; noise does not.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

RSS_TOLERANCE = 0.10
RSS_FLOOR_KIB = 24 * 1024
FD_TOLERANCE = 8


@dataclass(frozen=True, order=True)
class Proc:
    pid: int
    started: int  # clock ticks after boot, from /proc/PID/stat: pid + this is unique
    label: str


@dataclass
class Sample:
    at: float  # seconds since sampling started
    values: dict[Proc, tuple[int, int]]  # RSS in KiB, open file descriptors


def _read(pid: int) -> tuple[Proc, int, int] | None:
    """One process's identity, RSS and open fds; ``None`` if it is gone meanwhile."""
    base = Path("/proc", str(pid))
    try:
        stat = (base / "stat").read_text()
        started = int(stat.rsplit(")", 1)[1].split()[19])
        rss = 0
        for line in (base / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        fds = len(os.listdir(base / "fd"))
        cmdline = (base / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return Proc(pid, started, f"{_short(cmdline)} [{pid}]"), rss, fds


def _short(cmdline: str) -> str:
    """``python -m slipway worker --id local-0`` → ``slipway worker --id local-0``."""
    words = cmdline.split()
    if words and "python" in Path(words[0]).name:
        words = words[1:]
        while words and words[0] in {"-m", "-B", "-u"}:
            words = words[1:]
    text = " ".join(words)
    for long, short in (
        ("-c from multiprocessing.resource_tracker import main", "mp resource_tracker"),
        ("-c from multiprocessing.forkserver import main", "mp forkserver"),
    ):
        if text.startswith(long):
            return short
    return text[:70]


@dataclass
class Sampler:
    """Samples the process tree under ``root`` every ``interval`` seconds until stopped."""

    root: int
    interval: float
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0

    def take(self) -> Sample:
        try:
            root = psutil.Process(self.root)
            pids = [self.root, *(p.pid for p in root.children(recursive=True))]
        except psutil.NoSuchProcess:
            pids = []
        values: dict[Proc, tuple[int, int]] = {}
        for pid in pids:
            read = _read(pid)
            if read is not None:
                values[read[0]] = (read[1], read[2])
        sample = Sample(time.monotonic() - self._t0, values)
        self.samples.append(sample)
        return sample

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.take()
            next_at += self.interval
            # Pacing to a fixed period (not a wait for a condition).
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Sampler:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


@dataclass(frozen=True)
class Verdict:
    proc: Proc
    rss_start: int  # KiB: the first sample after warm-up
    rss_end: int  # KiB: the last sample
    rss_q2: float  # KiB: median of the second quarter
    rss_q4: float  # KiB: median of the last quarter
    fds_start: int
    fds_end: int
    fds_q2: float
    fds_q4: float

    @property
    def rss_allowed(self) -> float:
        return max(self.rss_q2 * RSS_TOLERANCE, RSS_FLOOR_KIB)

    @property
    def rss_flat(self) -> bool:
        return self.rss_q4 - self.rss_q2 <= self.rss_allowed

    @property
    def fds_flat(self) -> bool:
        return self.fds_q4 - self.fds_q2 <= FD_TOLERANCE

    @property
    def flat(self) -> bool:
        return self.rss_flat and self.fds_flat


def quarters(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """The second and the last quarter of the samples (the first is warm-up)."""
    n = len(samples)
    return samples[n // 4 : n // 2], samples[3 * n // 4 :]


def verdicts(samples: list[Sample]) -> list[Verdict]:
    """One verdict per process seen in every sample from the second quarter on: the
    platform's long-lived processes. Short-lived ones (pipeline step processes) come and
    go and are counted by :func:`transient` instead."""
    if len(samples) < 8:
        raise AssertionError(f"only {len(samples)} samples: too few to judge a trend")
    q2, q4 = quarters(samples)
    steady = samples[len(samples) // 4 :]
    lived = set(steady[0].values).intersection(*(s.values for s in steady[1:]))
    found = []
    for proc in sorted(lived):
        found.append(
            Verdict(
                proc,
                rss_start=steady[0].values[proc][0],
                rss_end=steady[-1].values[proc][0],
                rss_q2=statistics.median(s.values[proc][0] for s in q2),
                rss_q4=statistics.median(s.values[proc][0] for s in q4),
                fds_start=steady[0].values[proc][1],
                fds_end=steady[-1].values[proc][1],
                fds_q2=statistics.median(s.values[proc][1] for s in q2),
                fds_q4=statistics.median(s.values[proc][1] for s in q4),
            )
        )
    return found


def transient(samples: list[Sample], verdicts_: list[Verdict]) -> set[Proc]:
    """Processes seen in some sample but not alive throughout the steady part."""
    seen = {p for s in samples for p in s.values}
    return seen - {v.proc for v in verdicts_}


def counts(samples: list[Sample]) -> tuple[float, float]:
    """Median number of processes in the tree over the second and over the last quarter."""
    q2, q4 = quarters(samples)
    return (
        statistics.median(len(s.values) for s in q2),
        statistics.median(len(s.values) for s in q4),
    )


def _mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def write_report(
    folder: Path, samples: list[Sample], found: list[Verdict], load: dict[str, object]
) -> Path:
    """``report.md`` (load figures, per-process table), ``samples.csv`` and, when
    matplotlib is installed, ``rss.png``; returns the report's path."""
    folder.mkdir(parents=True, exist_ok=True)
    short = transient(samples, found)
    before, after = counts(samples)
    lines = [
        "# Soak report",
        "",
        f"{len(samples)} samples over {samples[-1].at:.0f} s; first quarter is warm-up.",
        f"RSS may grow {RSS_TOLERANCE:.0%} of its Q2 median or "
        f"{_mib(RSS_FLOOR_KIB)} MiB (the larger); open fds by {FD_TOLERANCE}.",
        "",
        "## Load",
        "",
        *(f"- {k}: {v}" for k, v in load.items()),
        "",
        "## Processes alive throughout",
        "",
        "| process | RSS start MiB | RSS end MiB | RSS Q2 med | RSS Q4 med | growth MiB |"
        " fds start | fds end | fds Q2 | fds Q4 | flat |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for v in found:
        lines.append(
            f"| {v.proc.label} | {_mib(v.rss_start)} | {_mib(v.rss_end)} | {_mib(v.rss_q2)} |"
            f" {_mib(v.rss_q4)} | {_mib(v.rss_q4 - v.rss_q2)} | {v.fds_start} | {v.fds_end} |"
            f" {v.fds_q2:g} | {v.fds_q4:g} | {'yes' if v.flat else '**NO**'} |"
        )
    lines += [
        "",
        f"Processes in the tree (median): {before:g} in Q2, {after:g} in Q4; "
        f"{len(short)} short-lived processes (pipeline steps and the like) came and went.",
        "",
    ]
    report = folder / "report.md"
    report.write_text("\n".join(lines))
    with (folder / "samples.csv").open("w") as out:
        out.write("seconds,pid,process,rss_kib,fds\n")
        for s in samples:
            for proc, (rss, fds) in s.values.items():
                out.write(f'{s.at:.1f},{proc.pid},"{proc.label}",{rss},{fds}\n')
    _chart(folder / "rss.png", samples, found)
    return report


def _chart(path: Path, samples: list[Sample], found: list[Verdict]) -> None:
    """RSS and fds over time of each long-lived process, if matplotlib is installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    figure, (rss_axes, fd_axes) = plt.subplots(2, 1, figsize=(11, 9), sharex=True)
    for v in found:
        times = [s.at for s in samples if v.proc in s.values]
        rss_axes.plot(
            times,
            [s.values[v.proc][0] / 1024 for s in samples if v.proc in s.values],
            label=v.proc.label,
            linewidth=1,
        )
        fd_axes.plot(
            times, [s.values[v.proc][1] for s in samples if v.proc in s.values], linewidth=1
        )
    rss_axes.set_ylabel("RSS (MiB)")
    fd_axes.set_ylabel("open fds")
    fd_axes.set_xlabel("seconds")
    rss_axes.legend(fontsize=6, loc="center", ncol=2)
    rss_axes.set_title("Slipway soak: every long-lived process")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
