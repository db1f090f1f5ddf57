"""What the Schemathesis fuzz tests share: bounds, determinism, the platform's checks,
and a runner that turns a Schemathesis run into one pytest assertion.

Both faces (the control plane and the gateway) promise the same for bad input: a 4xx
in the shape ``{"error": {"code", "message", "details"}}``, 400s naming the bad field,
never a 5xx. The checks here say exactly that, next to Schemathesis' own conformance
checks (documented status, content type and body; schema-breaking input refused).

The run is Schemathesis' engine, the one behind ``schemathesis run``: every phase
(schema examples, coverage of each constraint's edges, random fuzzing, and stateful
sequences that feed one response into the next request) over every operation. Its
pytest plugin's fixture-based loader does not work on pytest 9, and the schema needs a
platform that fixtures build, so the tests call the engine and report what it found.

Bounded and reproducible: ``SLIPWAY_TEST_FUZZ_EXAMPLES`` examples per operation in the
fuzzing phase (default 10; the other phases are bounded by the document), a fixed seed
(``SLIPWAY_TEST_FUZZ_SEED``) with derandomized generation so pytest-randomly's per-run seed
does not change what is sent, no Hypothesis database (nothing is written into the
repository and no past failure is silently replayed), and no deadline: timing is not
what these tests judge.
"""

from __future__ import annotations

import json
import os
import traceback
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.engine import events, from_schema
from schemathesis.specs.openapi.schemas import OpenApiSchema

# Arrow IPC bodies (tables: ingest, training sets) are bytes to the fuzzer, as any binary
# upload: sent as generated, so the routes see garbage streams as well as empty ones.
schemathesis.serializer.alias("application/vnd.apache.arrow.stream", "application/octet-stream")
# Code bundles (gzipped tars) likewise.
schemathesis.serializer.alias("application/gzip", "application/octet-stream")

DEFAULT_EXAMPLES = 10
DEFAULT_SEED = 17

# Schemathesis' checks that hold for this platform, plus the two below.
CHECKS = [
    "no_server_error",
    "error_shape",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
]


# SLIPWAY_TEST_ names: tests/conftest.py drops every other SLIPWAY_ variable per test.
def examples() -> int:
    """Examples per operation in the fuzzing phase: ``SLIPWAY_TEST_FUZZ_EXAMPLES`` or 10."""
    return int(os.environ.get("SLIPWAY_TEST_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))


def seed() -> int:
    return int(os.environ.get("SLIPWAY_TEST_FUZZ_SEED", DEFAULT_SEED))


def configure(
    schema: OpenApiSchema,
    *,
    headers: dict[str, str] | None = None,
    parameters: dict[str, str] | None = None,
    checks: tuple[str, ...] = (),
) -> OpenApiSchema:
    """Bound and fix ``schema``'s run; ``headers`` go with every request, ``parameters``
    are fixed values of the parameters they name; ``checks`` are registered checks to
    run next to :data:`CHECKS`."""
    config = schema.config
    config.seed = seed()
    config.generation.update(
        modes=list(GenerationMode), max_examples=examples(), database="none", deterministic=True
    )
    config.update(continue_on_failure=True, headers=headers, parameters=parameters)
    config.checks.update(included_check_names=[*CHECKS, *checks])
    return schema


def error_body(response: Response) -> dict[str, Any]:
    """The ``error`` object of ``response``, asserting the platform's error shape."""
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(
            f"{response.status_code} is not JSON: {response.content[:200]!r}"
        ) from None
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f"{response.status_code} is not an error object: {body!r}"
    assert set(error) == {"code", "message", "details"}, f"error keys {sorted(error)}: {body!r}"
    assert isinstance(error["code"], str) and error["code"], f"no error code: {body!r}"
    assert isinstance(error["message"], str) and error["message"], f"no message: {body!r}"
    assert isinstance(error["details"], dict), f"details is not an object: {body!r}"
    return error


@schemathesis.check
def error_shape(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx is the platform's error JSON, and every 400 / 422 names its field."""
    if 400 <= response.status_code < 500:
        error = error_body(response)
        if response.status_code in (400, 422):
            found = error["details"].get("field")
            assert isinstance(found, str) and found, f"a 400 that names no field: {error!r}"
    return None


@schemathesis.check
def no_server_error(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """No 5xx at all (Schemathesis' own check lets a documented 503 through)."""
    assert response.status_code < 500, f"{response.status_code}: {response.content[:500]!r}"
    return None


@dataclass
class Finding:
    operation: str
    check: str
    title: str
    message: str
    reproduce: str


@dataclass
class Report:
    cases: int = 0
    phases: dict[str, int] = field(default_factory=dict)  # requests per phase
    operations: set[str] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=dict)
    succeeded: set[str] = field(default_factory=set)  # operations that answered a 2xx
    findings: dict[tuple[str, str, str], Finding] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # distinct error -> times

    def summary(self) -> str:
        lines = [
            f"{len(self.findings)} distinct failure(s) and {len(self.errors)} error(s) in"
            f" {self.cases} requests (seed {seed()}, {examples()} fuzzing examples)"
        ]
        for finding in self.findings.values():
            lines += [
                f"- {finding.operation}: {finding.check}: {finding.title}",
                *(f"    {line}" for line in finding.message.splitlines()[:12]),
                f"    reproduce: {finding.reproduce[:1000]}",
            ]
        lines += [f"- error ({n}x): {error}" for error, n in self.errors.items()]
        return "\n".join(lines)


def run(schema: OpenApiSchema) -> Report:
    """Every phase of Schemathesis over ``schema``; what it sent and what failed."""
    report = Report()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _record(report, event)
        elif isinstance(event, events.NonFatalError):
            _error(report, f"{event.label}: {_describe(event.value)}")
        elif isinstance(event, events.FatalError):
            _error(report, f"fatal: {_describe(event.exception)}")
        elif isinstance(event, events.EngineFinished):
            for failure in event.failures:
                _error(report, f"{failure.title}: {failure.message}")
    return report


def _describe(exc: BaseException) -> str:
    """An exception the app raised (a 500 in production) with where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/slipway/" in f.filename]
    where = f" at {ours[-1].filename.split('/src/')[-1]}:{ours[-1].lineno}" if ours else ""
    return f"{type(exc).__name__}: {str(exc)[:300]}{where}"


def _error(report: Report, text: str) -> None:
    report.errors[text] = report.errors.get(text, 0) + 1


def _record(report: Report, event: events.ScenarioFinished) -> None:
    recorder = event.recorder
    for node in recorder.cases.values():
        report.operations.add(node.value.operation.label)
    phase = event.phase.value
    report.phases[phase] = report.phases.get(phase, 0) + len(recorder.interactions)
    for case_id, interaction in recorder.interactions.items():
        report.cases += 1
        if interaction.response is not None:
            status = interaction.response.status_code
            report.statuses[status] = report.statuses.get(status, 0) + 1
            if status < 300 and case_id in recorder.cases:
                report.succeeded.add(recorder.cases[case_id].value.operation.label)
    for case_id, checks in recorder.checks.items():
        for check in checks:
            info = check.failure_info
            if info is None:
                continue
            operation = recorder.cases[case_id].value.operation.label
            key = (operation, check.name, info.failure.title)
            report.findings.setdefault(
                key,
                Finding(operation, check.name, info.failure.title, info.failure.message,
                        info.code_sample),
            )  # fmt: skip
