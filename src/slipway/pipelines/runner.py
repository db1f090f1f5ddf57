"""The child process that runs one step's user code.

A step runs in a process of its own so that a timeout, a memory cap or a crash in user
code never takes the worker down with it. The parent writes a JSON spec; this module
loads the inputs, calls the function, stores the output in the artifact store and writes a
JSON result (the output's descriptor, or the user code's traceback).

    python -m slipway.pipelines.runner SPEC.json RESULT.json
"""

from __future__ import annotations

import inspect
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from slipway.core.artifacts import ArtifactStore
from slipway.pipelines import values
from slipway.registry import probe
from slipway.runtime.targets import resolve_target


def decode(encoded: Any, spec: dict[str, Any], artifacts: ArtifactStore) -> Any:
    if "ref" in encoded:
        return values.load(artifacts, spec["outputs"][encoded["ref"]], encoded["path"])
    if "param" in encoded:
        return spec["parameters"][encoded["param"]]
    if "list" in encoded:
        return [decode(v, spec, artifacts) for v in encoded["list"]]
    if "dict" in encoded:
        return {k: decode(v, spec, artifacts) for k, v in encoded["dict"].items()}
    return encoded["value"]


def arrange(fn: Any, decoded: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Bound arguments back into a call: positionals (and ``*args``) in order, then the
    keywords (and ``**kwargs``)."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    positional = True
    for name, param in inspect.signature(fn).parameters.items():
        if name not in decoded:
            if param.kind is not inspect.Parameter.VAR_POSITIONAL:
                positional = False
            continue
        value = decoded[name]
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            args.extend(value)
            positional = False
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            kwargs.update(value)
        elif positional and param.kind is not inspect.Parameter.KEYWORD_ONLY:
            args.append(value)
        else:
            kwargs[name] = value
    return args, kwargs


def main(spec_path: str, result_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    for entry in reversed(spec.get("code_paths", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    artifacts = ArtifactStore(spec["artifact_root"])
    # This process runs the step's user code already: a model registered here is checked
    # here too (slipway.registry.probe), not in yet another interpreter.
    probe.already_sandboxed()
    try:
        fn = resolve_target(spec["target"])
        decoded = {name: decode(arg, spec, artifacts) for name, arg in spec["inputs"].items()}
        args, kwargs = arrange(fn, decoded)
        output = values.save(artifacts, fn(*args, **kwargs), spec.get("objects", values.PREFIX))
    except BaseException:
        error = traceback.format_exc()
        print(error, file=sys.stderr, flush=True)
        Path(result_path).write_text(json.dumps({"ok": False, "error": error}))
        return 1
    Path(result_path).write_text(json.dumps({"ok": True, "output": output}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
