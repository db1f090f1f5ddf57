"""Online reads and the tracking server before and after a change, on the same data in
the same run: the library of ``--before`` (a commit, default the one before issue 19's
refactor) against the working tree's, each from its own source tree (``git archive`` +
``PYTHONPATH``), so the two differ only in ``src/``; the harness (bench/slipway_side.py,
bench/tracking.py) is the working tree's for both.

Online reads: each side ingests the 1M synthetic rows (100,000 keys) into its own online
store (SQLite file; Redis database), then ``FeatureStore.get_online_features`` of 10
features for 1 and 100 random keys, 5,000 calls after 500 warm-up ones, per process;
the sides alternate ``--rounds`` times (before first, then after first, ...), and the
table shows each side's median p50 / p99 over its rounds with every round beside it.

Tracking: ``bench/tracking.py --backends sqlite`` (the MLflow server as Slipway launches
it, ``log_metric`` and ``log_batch`` through ``MlflowClient``), once per side, after the
online rounds.

    .venv/bin/python bench/before_after.py [--before COMMIT] [--rounds 3] [--skip-tracking]

Writes ``bench/before_after_results.md`` and ``bench/.data/before_after.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH, DATA, RESULT_PREFIX, SYN_FEATURES, machine

ROOT = BENCH.parent
WORK = DATA / "before-after"
OUT = BENCH / "before_after_results.md"
RAW = DATA / "before_after.json"
DEFAULT_BEFORE = "88b0659^"  # the commit before issue 19 moved tables, resources and refs
REDIS_DB = {"before": 11, "after": 12}


def _redis_base() -> str:
    env = ROOT / ".services" / "env"
    for line in env.read_text().splitlines() if env.exists() else []:
        if line.startswith("SLIPWAY_TEST_REDIS_URL="):
            return line.split("=", 1)[1].rsplit("/", 1)[0]
    raise SystemExit("no test Redis: run scripts/services start first")


def _tree(commit: str) -> Path:
    """``src/`` of ``commit``, exported once under bench/.data."""
    sha = subprocess.run(
        ["git", "rev-parse", commit], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    tree = WORK / f"tree-{sha[:10]}"
    if not (tree / "src" / "slipway").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", sha, "src"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def _run(tree: Path, *argv: str, timeout: float = 900) -> list[dict[str, Any]]:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    env = {k: v for k, v in env.items() if not k.startswith("SLIPWAY_") or k == "SLIPWAY_HOME"}
    out = subprocess.run(
        [sys.executable, *argv], env=env, check=True, capture_output=True, text=True,
        timeout=timeout,
    ).stdout  # fmt: skip
    return [
        json.loads(line.removeprefix(RESULT_PREFIX))
        for line in out.splitlines()
        if line.startswith(RESULT_PREFIX)
    ]


def online(trees: dict[str, Path], rounds: int) -> dict[str, Any]:
    import redis

    base = _redis_base()
    side_script = str(BENCH / "slipway_side.py")
    urls: dict[tuple[str, str], str] = {}
    homes: dict[tuple[str, str], str] = {}
    for side, tree in trees.items():
        for kind in ("sqlite", "redis"):
            home = WORK / f"home-{side}-{kind}"
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir(parents=True)
            if kind == "redis":
                url = f"{base}/{REDIS_DB[side]}"
                client = redis.Redis.from_url(url)
                client.flushdb()
                client.close()
            else:
                url = f"sqlite:///{home / 'online.db'}"
            homes[side, kind], urls[side, kind] = str(home), url
            print(f"ingesting for {side} ({kind}) ...", flush=True)
            _run(tree, str(Path(__file__)), "setup-online", str(home), url)
    samples: dict[str, list[dict[str, Any]]] = {}
    order = list(trees)
    for n in range(rounds):
        for side in order if n % 2 == 0 else order[::-1]:
            for kind in ("sqlite", "redis"):
                print(f"round {n + 1}: {side} {kind} ...", flush=True)
                for result in _run(
                    trees[side], side_script, "online", homes[side, kind], urls[side, kind], kind
                ):
                    key = f"{side}|{kind}|{result['entities']}"
                    samples.setdefault(key, []).append(result)
    return samples


def tracking(trees: dict[str, Path]) -> dict[str, str]:
    reports: dict[str, str] = {}
    for side, tree in trees.items():
        out = WORK / f"tracking-{side}.md"
        print(f"tracking ({side}) ...", flush=True)
        _run(
            tree,
            str(BENCH / "tracking.py"),
            "--backends",
            "sqlite",
            "--out",
            str(out),
            timeout=1800,
        )
        reports[side] = out.read_text()
    return reports


def _fmt(values: list[float]) -> str:
    return "/".join(f"{v:.3f}" for v in values)


def report(r: dict[str, Any]) -> str:
    lines = [
        "## Before and after issue 19: online reads and the tracking server",
        "",
        f"Measured {r['measured_at']} by `.venv/bin/python bench/before_after.py` on"
        f" {r['machine']}; load average {r['load_at_start']} at the start,"
        f" {r['load_at_end']} at the end. *Before*: {r['before']} (`{r['before_sha']}`);"
        " *after*: the working tree. Each side runs its own `src/` under the same harness.",
        "",
        "`get_online_features`, 10 features, 5,000 calls per round after 500 warm-up"
        f" ones; median over {r['rounds']} alternating rounds (every round in brackets), ms:",
        "",
        "| store | keys per call | before p50 | after p50 | before p99 | after p99 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    online_samples = r["online"]
    for kind in ("sqlite", "redis"):
        for entities in ("1", "100"):
            row = [kind, entities]
            for stat in ("p50_ms", "p99_ms"):
                for side in ("before", "after"):
                    values = [s[stat] for s in online_samples[f"{side}|{kind}|{entities}"]]
                    row.append(f"{statistics.median(values):.3f} ({_fmt(values)})")
            lines.append("| " + " | ".join(row) + " |")  # p50 before, after; p99 before, after
    if r.get("tracking"):
        when = r.get("tracking_measured_at", r["measured_at"])
        lines += [
            "",
            f"Tracking server (`bench/tracking.py --backends sqlite`, measured {when}), before:",
            "",
        ]
        lines += _tables(r["tracking"]["before"])
        lines += ["", "after:", ""]
        lines += _tables(r["tracking"]["after"])
    return "\n".join(lines) + "\n"


def _tables(markdown: str) -> list[str]:
    """The tables of a tracking report (its headings and prose left out)."""
    return [line for line in markdown.splitlines() if line.startswith("|")]


def setup_online(home: str, url: str) -> None:
    """In a child process on one side's library: the online-only synthetic group with the
    1M rows, through the API both sides share (create a group, ingest a DataFrame)."""
    import pandas as pd
    from slipway_side import fresh_group, open_store, syn_group

    store = open_store(home, url)
    fresh_group(store, home, syn_group("syn", online=True, offline=False))
    store.ingest("syn", pd.read_parquet(SYN_FEATURES))


def main() -> None:
    if sys.argv[1:2] == ["setup-online"]:
        setup_online(*sys.argv[2:4])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default=DEFAULT_BEFORE)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-tracking", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report")
    parser.add_argument(
        "--tracking-only", action="store_true", help="re-measure the tracking server only"
    )
    args = parser.parse_args()
    if args.report_only:
        OUT.write_text(report(json.loads(RAW.read_text())))
        print(f"wrote {OUT}")
        return
    if args.tracking_only:
        saved = json.loads(RAW.read_text())
        saved["tracking"] = tracking({"before": _tree(args.before), "after": ROOT})
        saved["tracking_measured_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        RAW.write_text(json.dumps(saved, indent=1, default=str))
        OUT.write_text(report(saved))
        print(f"wrote {OUT}")
        return
    if not SYN_FEATURES.exists():
        subprocess.run([sys.executable, str(BENCH / "data.py")], check=True)
    before = _tree(args.before)
    trees = {"before": before, "after": ROOT}
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_at_start": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "before": args.before,
        "before_sha": before.name.removeprefix("tree-"),
        "rounds": args.rounds,
    }
    results["online"] = online(trees, args.rounds)
    if not args.skip_tracking:
        results["tracking"] = tracking(trees)
    results["load_at_end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    RAW.write_text(json.dumps(results, indent=1, default=str))
    OUT.write_text(report(results))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
