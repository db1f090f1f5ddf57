"""The test suite's own figures: ``make test``'s wall time and its slowest tests.

Runs ``make test`` exactly as CI does (services started and stopped by it, two xdist
workers, random order), on the machine as it is, and writes ``bench/suite_results.md``
(a section of BENCHMARKS.md, see bench/report.py): wall time, the pytest summary line,
the random-order seed, and the 20 slowest test phases pytest printed. The target is 15
minutes on 2 cores; a run with other work on the machine says so in its load average.

    .venv/bin/python bench/suite.py
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import machine

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "suite_results.md"
TARGET_MINUTES = 15.0
_SUMMARY = re.compile(r"^=* ?(\d+ (?:passed|failed|error).*?) in [\d.]+s", re.MULTILINE)
_SEED = re.compile(r"Using --randomly-seed=(\d+)")
_DURATION = re.compile(r"^(\d+\.\d+)s (call|setup|teardown)\s+(\S+)$", re.MULTILINE)


def run(log: Path) -> tuple[float, int, str]:
    """``make test`` with its output teed to ``log``: (seconds, exit code, output)."""
    started = time.monotonic()
    with log.open("w") as sink:
        process = subprocess.Popen(
            ["make", "test"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        for line in process.stdout:
            sink.write(line)
            sys.stdout.write(line)
        code = process.wait()
    return time.monotonic() - started, code, log.read_text()


def report(seconds: float, code: int, output: str, measured: str, where: str) -> str:
    summary = _SUMMARY.findall(output)
    seed = _SEED.search(output)
    slowest = _DURATION.findall(output)[:20]
    verdict = "met" if code == 0 and seconds <= TARGET_MINUTES * 60 else "**missed**"
    lines = [
        "# Test suite (`make test`)",
        "",
        f"Measured {measured} on {where}.",
        "",
        "    .venv/bin/python bench/suite.py",
        "",
        "| wall time | target | exit code | pytest | random-order seed |",
        "|---:|---:|---:|---|---:|",
        f"| {seconds / 60:.1f} min ({seconds:.0f} s) | {TARGET_MINUTES:g} min: {verdict} | {code}"
        f" | {summary[-1] if summary else 'no summary line'} |"
        f" {seed.group(1) if seed else '-'} |",
        "",
        "Wall time covers all of `make test`: starting PostgreSQL, Redis and Kafka, ruff,"
        " mypy, the tests on two xdist workers, stopping the services.",
        "",
        "Slowest 20 test phases:",
        "",
        "| seconds | phase | test |",
        "|---:|---|---|",
        *(f"| {float(s):.1f} | {phase} | `{test}` |" for s, phase, test in slowest),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, default=BENCH / ".data" / "suite.log")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.log.parent.mkdir(exist_ok=True)
    where = machine()
    measured = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    seconds, code, output = run(args.log)
    args.out.write_text(report(seconds, code, output, measured, where))
    print(f"wrote {args.out} (full output in {args.log})")


if __name__ == "__main__":
    main()
