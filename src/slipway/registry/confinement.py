"""What a registered model's loader may reach: its own folder, nothing else.

An MLflow model's ``MLmodel`` file names the code and files its loader uses, and MLflow
joins those names to the model's folder without checking them: a flavor's ``code``
directory is put first on ``sys.path``, the pyfunc ``loader_module`` is imported by name,
an XGBoost ``model_class`` or a Keras ``keras_module`` is imported, and ``data``,
``python_model``, ``pickled_model``, artifacts and friends are opened. So
``code: ../../../../tmp/x/evilcode`` with ``loader_module: evilmod`` makes a loader import
a module nobody registered; an absolute path or a symlink does the same.

The digest recorded at registration covers every file under the model's folder
(recursively, dotfiles included): once every reference and every symlink resolves inside
the folder, every file a loader imports or reads from the model is a file the digest
covers. :func:`check_folder` is what makes that true. It refuses, with
:class:`InvalidInput` naming ``source``, the offending key and its value:

- a symlink (file or folder) whose target lies outside the folder, and anything that is
  neither a regular file, a folder nor such a link (a FIFO would hang the digest);
- a path-valued key of any flavor (``code``, ``data``, ``model_data``, ``python_model``,
  ``artifacts.<name>.path``, ...) that is absolute, contains ``..`` or resolves (after
  symlinks) outside the folder; any other key of a flavor named like a path (``*_path``,
  ``*_file``, ``*_dir``, ``*_data``, ...) whose value is absolute or climbs with ``..`` is
  refused the same way (an unknown flavor's path key is still a path);
- a module a loader imports by name (``loader_module``, ``model_class``,
  ``keras_module``, PyTorch's ``pickle_module_info.txt``, Keras' ``keras_module.txt``)
  that is not MLflow's own (``mlflow.*``), not the flavor's own library, and not found in
  the model's own ``code`` directory.

It runs at registration, before anything is recorded or any of the model's code runs,
and again before every load: a folder changed after registration, or a version
registered before the check existed, is refused before MLflow imports anything.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterator
from importlib.machinery import PathFinder
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from slipway.core.errors import InvalidInput

# Flavor keys whose values MLflow's loaders join to the model's folder and read or import.
PATH_KEYS = frozenset(
    {
        "code",
        "data",
        "model_data",
        "model_path",
        "model_file",
        "model_binary",
        "pickled_model",
        "python_model",
        "saved_model_dir",
        "serialized_explainer",
        "parameters_path",
    }
)
# Keys of other flavors that name paths, by the shape of their names.
PATH_LIKE = re.compile(r"(^|_)(path|paths|file|files|dir|dirs|directory|data|code|binary)$")
# Never joined to the folder: where an artifact was copied from, a models-from-code
# file's original location (MLflow loads its basename from the folder), a Hugging Face
# model's original name, and the user's own configuration (free-form, read by their code).
INFORMATIONAL_KEYS = frozenset({"uri", "model_code_path", "source_model_name", "model_config"})
# Loader modules MLflow itself names outside its own package.
KNOWN_LOADERS = frozenset({"databricks.feature_store.mlflow_model"})
# The libraries a flavor's ``model_class`` / ``keras_module`` may come from, besides its
# own name (``xgboost`` -> ``xgboost.sklearn.XGBClassifier``).
FLAVOR_LIBRARIES: dict[str, frozenset[str]] = {
    "tensorflow": frozenset({"tensorflow", "keras", "tf_keras"}),
    "keras": frozenset({"keras", "tf_keras", "tensorflow"}),
    "pytorch": frozenset({"torch", "pickle", "cloudpickle", "dill"}),
}
# Files in a flavor's data folder whose content is a module name MLflow imports.
MODULE_FILES = {"pytorch": "pickle_module_info.txt", "tensorflow": "keras_module.txt"}
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _refuse(key: str, value: object, why: str) -> InvalidInput:
    """The refusal naming what is wrong: an MLmodel key and its value, or a file."""
    what = f"{key} {value!r}" if key in ("symlink", "file") else f"MLmodel {key}: {value!r}"
    return InvalidInput(
        f"the model's {what} is refused: {why}",
        field="source",
        details={"key": key, "path": str(value)},
    )


def check_before_load(folder: str | os.PathLike[str]) -> None:
    """What every load of a registered model does first: :func:`check_folder`, and no
    ``__pycache__`` written into the model's folder from now on in this process. Python
    writes bytecode beside the modules it imports, so importing a model's ``code`` would
    add files under the digest: the next load of the same version — another gateway
    worker, a restart — would be refused as tampered. It stays off for the process
    because a model's code may import more of itself while it predicts."""
    check_folder(folder)
    sys.dont_write_bytecode = True


def check_folder(folder: str | os.PathLike[str]) -> None:
    """Refuse the model in ``folder`` unless everything its ``MLmodel`` and its symlinks
    reference lies inside ``folder`` (see the module docstring); reads names and the
    ``MLmodel`` file only, never imports or unpickles anything."""
    root = Path(os.path.realpath(folder))
    if not root.is_dir():
        raise InvalidInput(f"the model folder {os.fspath(folder)!r} does not exist", field="source")
    _check_links(root)
    mlmodel = root / "MLmodel"
    try:
        meta = yaml.safe_load(mlmodel.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise InvalidInput("the model's MLmodel file cannot be read", field="source") from None
    if not isinstance(meta, dict):
        raise InvalidInput("the model's MLmodel file is not a mapping", field="source")
    check_mlmodel(meta, root)


def _check_links(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):  # links are listed, never entered
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            relative = path.relative_to(root).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                target = os.path.realpath(path)
                if not _within(root, Path(target)):
                    raise _refuse("symlink", relative, f"it points outside the model ({target})")
            elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise _refuse("file", relative, "only regular files, folders and links")


def check_mlmodel(meta: dict[str, Any], root: Path) -> None:
    """Check the references of an already-read ``MLmodel`` against the folder ``root``
    (resolved): paths, artifacts and the modules its loaders import."""
    example = meta.get("saved_input_example_info")
    if isinstance(example, dict) and example.get("artifact_path"):
        _check_path(root, "saved_input_example_info.artifact_path", example["artifact_path"])
    flavors = meta.get("flavors") or {}
    if not isinstance(flavors, dict):
        raise _refuse("flavors", flavors, "it is not a mapping")
    for flavor, conf in flavors.items():
        if not isinstance(conf, dict):
            raise _refuse(f"flavors.{flavor}", conf, "it is not a mapping")
        _check_flavor(root, str(flavor), conf)


def _check_flavor(root: Path, flavor: str, conf: dict[str, Any]) -> None:
    where = f"flavors.{flavor}"
    for key in PATH_KEYS & conf.keys():
        for value in _paths(f"{where}.{key}", conf[key]):
            _check_path(root, f"{where}.{key}", value)
    artifacts = conf.get("artifacts")
    if artifacts is not None:
        if not isinstance(artifacts, dict):
            raise _refuse(f"{where}.artifacts", artifacts, "it is not a mapping")
        for name, info in artifacts.items():
            path = info.get("path") if isinstance(info, dict) else None
            _check_path(root, f"{where}.artifacts.{name}.path", path)
    code_path = conf.get("model_code_path")
    if code_path is not None:  # MLflow loads the file's basename from the folder
        _check_path(root, f"{where}.model_code_path", PurePosixPath(str(code_path)).name)
    for key, value in _path_like(where, conf, ""):
        if value.startswith("/") or ".." in PurePosixPath(value).parts:
            raise _refuse(key, value, "a path outside the model's folder")
    code_dir = _code_dir(root, conf)
    libraries = FLAVOR_LIBRARIES.get(flavor, frozenset()) | {flavor}
    if conf.get("loader_module") is not None:
        _check_module(f"{where}.loader_module", conf["loader_module"], code_dir, frozenset())
    if conf.get("model_class") is not None:
        module, _, _cls = str(conf["model_class"]).rpartition(".")
        _check_module(f"{where}.model_class", module or conf["model_class"], code_dir, libraries)
    if conf.get("keras_module") is not None:
        _check_module(f"{where}.keras_module", conf["keras_module"], code_dir, libraries)
    if flavor in MODULE_FILES:
        data = conf.get("model_data") or conf.get("data")
        spec = root / str(data or "data") / MODULE_FILES[flavor]
        if spec.is_file():
            name = spec.read_text(errors="replace").strip()
            _check_module(f"{where} {MODULE_FILES[flavor]}", name, code_dir, libraries)


def _paths(key: str, value: object) -> list[str]:
    """The paths a key names: one string, a list of them, or nothing (unset)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise _refuse(key, value, "a path must be a string or a list of strings")


def _path_like(key: str, value: object, name: str) -> Iterator[tuple[str, str]]:
    """Every string in a flavor's configuration held by a key named like a path (``name``:
    the nearest mapping key), with where it is; the informational keys are skipped."""
    if isinstance(value, str):
        if PATH_LIKE.search(name):
            yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            if str(k) not in INFORMATIONAL_KEYS:
                yield from _path_like(f"{key}.{k}", v, str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _path_like(f"{key}[{i}]", v, name)


def _within(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def _check_path(root: Path, key: str, value: object) -> Path:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise _refuse(key, value, "a path must be a non-empty string")
    pure = PurePosixPath(value)
    if pure.is_absolute():
        raise _refuse(key, value, "an absolute path")
    if ".." in pure.parts:
        raise _refuse(key, value, "'..' is not allowed")
    resolved = Path(os.path.realpath(root / value))
    if not _within(root, resolved):
        raise _refuse(key, value, f"it resolves outside the model's folder ({resolved})")
    return resolved


def _code_dir(root: Path, conf: dict[str, Any]) -> Path | None:
    """The flavor's own code directory (what MLflow puts on ``sys.path``), checked."""
    code = conf.get("code")
    if not code or not isinstance(code, str):
        return None
    return _check_path(root, "code", code)


def _check_module(key: str, name: object, code_dir: Path | None, libraries: frozenset[str]) -> None:
    """A module a loader imports must be MLflow's, the flavor's library's, or the
    model's own: found (without importing it) in the model's ``code`` directory."""
    if not isinstance(name, str) or not _MODULE.fullmatch(name):
        raise _refuse(key, name, "not a module name")
    top = name.split(".")[0]
    if top == "mlflow" or top in libraries or name in KNOWN_LOADERS:
        return
    if code_dir is not None and code_dir.is_dir():
        spec = PathFinder.find_spec(top, [str(code_dir)])
        if spec is not None:
            return
    raise _refuse(
        key,
        name,
        "it is neither MLflow's nor the flavor's own module, and the model's code"
        " directory does not hold it",
    )
