"""Running a model's own code at registration, in a child process.

Registering a model sometimes means running it: a model logged without a signature gets
one inferred from its input example and its prediction on that example, and a model
declared to return probabilities is loaded to learn its classes; a monitoring baseline
built from a version's training data is scored by that version. Loading an MLflow model
unpickles the user's files, and unpickling runs their code. The registering process is
the control plane — it holds the database connection and whatever credentials the
platform was started with — so that code never runs in it. It runs here instead:

- in a child forked from the platform's fork server (a process that only imported MLflow,
  pandas, scikit-learn and the like: no database connection, no open files of the
  platform's), in its own process group, killed after ``timeout`` seconds and capped at
  ``memory_mb`` (:func:`slipway.runtime.childproc.run_forked`); ``python -m
  slipway.registry.probe REQUEST ANSWER`` runs the same check in a fresh interpreter;
- with an environment holding only what Python needs (no ``SLIPWAY_*`` settings,
  database URL, tokens or cloud credentials: the fork server's environment is cleared);
- on a local copy of the model's files, its answer a JSON document the parent checks
  (a YAML mapping for the new ``MLmodel``, a list of JSON values for the classes) or a
  Parquet file of one column (the predictions): nothing comes back unpickled.

A process that is itself a sandbox for user code — a pipeline step's child, which
declares it with :func:`already_sandboxed` — runs the checks in place: the model's code
gains nothing there that the step's own code did not have.

A model that fails, hangs or dies there is refused with a 400 naming the field
(``signature``, ``output`` or ``model``) and what it printed last; nothing is recorded.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from slipway.core.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

    from slipway.registry.service import Registry

TIMEOUT_SECONDS = 300.0
MEMORY_MB = 4096
OUTPUT_TAIL = 2000  # characters of the child's output quoted in a refusal
PREDICTION = "prediction"

# What a Python interpreter needs from the environment to start and import the platform's
# dependencies; everything else (credentials, settings, URLs) stays behind.
_KEPT = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "VIRTUAL_ENV")


# Set in a process that is itself a sandbox for user code (a pipeline step's child, see
# slipway.pipelines.runner): the model's code may run right there, and a step that
# registers a model does not pay for another interpreter.
_sandboxed = False


def already_sandboxed() -> None:
    """Declare this process a user-code sandbox: checks run in it, not in a child."""
    global _sandboxed
    _sandboxed = True


def child_environment() -> dict[str, str]:
    env = {name: os.environ[name] for name in _KEPT if name in os.environ}
    return env | {"MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONDONTWRITEBYTECODE": "1"}


def run(
    operation: str,
    local: str,
    *,
    field: str,
    timeout: float | None = None,
    memory_mb: int | None = None,
    **arguments: Any,
) -> dict[str, Any]:
    """``operation`` on the model in ``local``, in a child; its JSON answer. A refusal,
    a failure, a timeout or a crash raises :class:`InvalidInput` naming ``field``."""
    from slipway.runtime.childproc import run_forked  # the child never imports it

    if _sandboxed:
        document = _answer({"operation": operation, "local": local, "field": field, **arguments})
        if document.get("error") is not None:
            raise InvalidInput(str(document["error"]), field=field)
        return document
    with tempfile.TemporaryDirectory(prefix="slipway-probe-") as tmp:
        request, answer = Path(tmp) / "request.json", Path(tmp) / "answer.json"
        request.write_text(
            json.dumps({"operation": operation, "local": local, "field": field, **arguments})
        )
        printed: list[str] = []
        outcome = run_forked(
            "slipway.registry.probe",
            "forked_main",
            (str(request), str(answer)),
            env=child_environment(),
            log=printed.append,
            timeout=TIMEOUT_SECONDS if timeout is None else timeout,
            memory_mb=MEMORY_MB if memory_mb is None else memory_mb,
            replace_env=True,
        )
        tail = "".join(printed)[-OUTPUT_TAIL:].strip()
        if outcome.stopped is not None:
            raise InvalidInput(
                f"running the model to check it {outcome.stopped}", field=field
            ) from None
        if not answer.exists():
            said = f": {tail}" if tail else ""
            raise InvalidInput(
                f"running the model to check it ended with exit code {outcome.returncode}"
                f" and no answer{said}",
                field=field,
            )
        try:
            document = json.loads(answer.read_text())
        except ValueError:
            raise InvalidInput("the model's check answered no JSON", field=field) from None
    if not isinstance(document, dict):
        raise InvalidInput("the model's check answered no JSON object", field=field)
    error = document.get("error")
    if error is not None:
        raise InvalidInput(str(error), field=field)
    return document


def score(registry: Registry, name: str, version: int, table: pa.Table) -> pa.ChunkedArray | None:
    """The predictions of ``name`` version ``version`` (digest verified) on ``table``, made
    in a child: a binary classifier's positive-class score, or what the model returns;
    None when it returns no single prediction column. Failures name ``model``."""
    import pyarrow.parquet as pq

    registered = registry.verify(name, version)
    local = registry.local_dir(registered.artifact_key)
    with tempfile.TemporaryDirectory(prefix="slipway-score-") as tmp:
        data, out = Path(tmp) / "input.parquet", Path(tmp) / "prediction.parquet"
        pq.write_table(table, data)
        answer = run(
            "score",
            local,
            field="model",
            name=name,
            version=version,
            signature=registered.signature,
            output=registered.output.value,
            data=str(data),
            out=str(out),
        )
        if not answer.get("scored"):
            return None
        try:
            scored = pq.read_table(out)
        except (OSError, ValueError):
            raise InvalidInput("the model's predictions could not be read", field="model") from None
    if scored.column_names != [PREDICTION] or scored.num_rows != table.num_rows:
        raise InvalidInput(
            f"the model returned {scored.num_rows} predictions for {table.num_rows} rows",
            field="model",
        )
    return scored[PREDICTION]


# -- in the child -------------------------------------------------------------------------


def _signature(local: str) -> dict[str, Any]:
    """The model's MLmodel with a signature inferred from its input example."""
    from mlflow.models import Model, infer_signature
    from mlflow.pyfunc import load_model

    model = Model.load(str(Path(local) / "MLmodel"))
    example = model.load_input_example(local)
    prediction = load_model(local).predict(example)
    model.signature = infer_signature(example, prediction)
    return {"mlmodel": model.to_yaml()}


def _classes(local: str, output: str) -> dict[str, Any]:
    from slipway.registry.models import Output
    from slipway.registry.outputs import declared_classes

    meta = yaml.safe_load((Path(local) / "MLmodel").read_text())
    return {"classes": declared_classes(local, meta, Output.parse(output))}


def _score(request: dict[str, Any]) -> dict[str, Any]:
    """Predict on the rows in ``data``; write ``prediction`` (a binary classifier's
    score, or what the model returns) to ``out``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from slipway.registry.models import Output
    from slipway.registry.outputs import Scores
    from slipway.registry.predict import load_folder, predictions_table, to_batch

    loaded = load_folder(
        str(request["name"]),
        int(request["version"]),
        request["local"],
        request["signature"],
        Output.parse(request["output"]),
    )
    raw = loaded.predict(to_batch(pq.read_table(request["data"]), loaded.schema))
    if isinstance(raw, Scores) and raw.probabilities.shape[1] == 2:
        column: Any = pa.array(raw.probabilities[:, 1])
    else:
        column = predictions_table(raw, PREDICTION).get(PREDICTION)
    if column is None:
        return {"scored": False}
    pq.write_table(pa.table({PREDICTION: column}), request["out"])
    return {"scored": True}


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    operation, local = request["operation"], request["local"]
    try:
        if operation == "signature":
            return _signature(local)
        if operation == "classes":
            return _classes(local, request["output"])
        if operation == "score":
            return _score(request)
        return {"error": f"unknown operation {operation!r}"}
    except InvalidInput as exc:
        return {"error": exc.message}
    except Exception as exc:  # the user's code, whatever it raises
        return {"error": f"the model failed: {type(exc).__name__}: {exc}"}


def forked_main(request_path: str, answer_path: str) -> int:
    """The child's entry when forked from the platform's fork server (which has MLflow,
    pandas and scikit-learn imported, so a check costs a fork, not an interpreter's start):
    it works in the request's folder, as a fresh interpreter started there would."""
    os.chdir(Path(request_path).parent)
    return main([request_path, answer_path])


def main(argv: list[str]) -> int:
    request_path, answer_path = argv
    request = json.loads(Path(request_path).read_text())
    document = _answer(request)
    Path(answer_path).write_text(json.dumps(document, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
