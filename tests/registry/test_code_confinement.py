"""A model's code and files come from its own folder, at registration and at load.

The attack from issue 20: an ``MLmodel`` whose ``code`` points outside the model's folder
(``../outside``, an absolute path, a symlink) and whose ``loader_module`` names a module
found there. MLflow puts that folder on ``sys.path`` and imports the module, which the
registration digest never covered. Here the outside module writes a marker file when it is
imported, so each test can tell whether it ran. Every model is real: saved with MLflow's own
``save_model`` into the artifact root, registered by its path, tampered by editing files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from slipway.core.artifacts import tree_hash
from slipway.core.errors import InvalidInput, NotFound
from slipway.core.settings import load_settings
from slipway.core.workspace import DEFAULT_WORKSPACE
from slipway.registry.confinement import check_folder
from slipway.registry.models import ModelTampered
from slipway.registry.predict import Batch, load_model
from slipway.registry.tables import ModelVersionRow
from slipway.services import Services

ROWS = pd.DataFrame({"a": [0.5, -1.0, 2.0], "b": [1.0, 0.25, -0.5]})


@pytest.fixture
def services(sqlite_url: str, tmp_path: Path) -> Iterator[Services]:
    """Overrides ``tests/registry/conftest.py``'s: the rule does not depend on the engine."""
    opened = Services.open(load_settings(home=tmp_path / "home", database={"url": sqlite_url}))
    yield opened
    opened.close()


class Outside:
    """A module outside every model's folder that records its own import."""

    def __init__(self, base: Path) -> None:
        self.name = f"evil_{uuid.uuid4().hex}"
        self.folder = base / "evilcode"
        self.folder.mkdir(parents=True)
        self.marker = base / "imported.marker"
        (self.folder / f"{self.name}.py").write_text(
            "import pathlib\n"
            f"pathlib.Path({str(self.marker)!r}).write_text('imported')\n"
            "def _load_pyfunc(path, model_config=None):\n"
            "    raise RuntimeError('the outside loader ran')\n"
        )

    @property
    def imported(self) -> bool:
        return self.marker.exists()


@pytest.fixture
def outside(tmp_path: Path) -> Outside:
    return Outside(tmp_path / "outside")


@pytest.fixture
def folder(services: Services) -> Callable[[], Path]:
    """A fresh, empty place for a model inside the artifact root (registrable by path)."""

    def make() -> Path:
        return Path(services.settings.artifact_root) / "saved" / uuid.uuid4().hex / "model"

    return make


def _signature() -> Any:
    return mlflow.models.infer_signature(ROWS, np.zeros(len(ROWS), dtype=np.int64))


def save_sklearn(path: Path) -> Path:
    x = pd.DataFrame({"a": np.linspace(-2, 2, 40), "b": np.linspace(1, -1, 40)})
    model = LogisticRegression().fit(x, (x["a"] + x["b"] > 0).astype(int))
    mlflow.sklearn.save_model(
        model, str(path), signature=_signature(), pip_requirements=["scikit-learn"]
    )
    return path


def save_pyfunc_with_code(path: Path, scratch: Path) -> tuple[Path, str]:
    """A PythonModel whose class lives in a module shipped with the model (code_paths):
    unpickling it imports that module from the model's own ``code`` folder."""
    module = f"own_{uuid.uuid4().hex}"
    source = scratch / f"src-{module}"
    source.mkdir(parents=True)
    (source / f"{module}.py").write_text(
        "import mlflow\n"
        "class Doubler(mlflow.pyfunc.PythonModel):\n"
        "    def predict(self, context, model_input, params=None):\n"
        "        return (model_input['a'] * 2).to_numpy()\n"
    )
    sys.path.insert(0, str(source))
    try:
        doubler = __import__(module).Doubler()
        mlflow.pyfunc.save_model(
            str(path),
            python_model=doubler,
            code_paths=[str(source / f"{module}.py")],
            signature=_signature(),
            pip_requirements=["mlflow"],
        )
    finally:
        sys.path.remove(str(source))
        sys.modules.pop(module, None)  # loading must find it in the model's folder
    return path, module


def save_custom_loader(path: Path, scratch: Path) -> tuple[Path, str]:
    """A pyfunc whose ``loader_module`` is the model's own module, in its ``code`` folder."""
    module = f"loader_{uuid.uuid4().hex}"
    source = scratch / f"src-{module}"
    source.mkdir(parents=True)
    (source / f"{module}.py").write_text(
        "class _Model:\n"
        "    def predict(self, model_input, params=None):\n"
        "        return (model_input['b'] + 1).to_numpy()\n"
        "def _load_pyfunc(path, model_config=None):\n"
        "    return _Model()\n"
    )
    data = scratch / f"data-{module}.txt"
    data.write_text("weights")
    mlflow.pyfunc.save_model(
        str(path),
        loader_module=module,
        data_path=str(data),
        code_paths=[str(source / f"{module}.py")],
        signature=_signature(),
        pip_requirements=["mlflow"],
    )
    return path, module


def edit_mlmodel(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    meta = yaml.safe_load((path / "MLmodel").read_text())
    change(meta)
    (path / "MLmodel").write_text(yaml.safe_dump(meta, sort_keys=False))


def pyfunc_conf(meta: dict[str, Any]) -> dict[str, Any]:
    conf: dict[str, Any] = meta["flavors"]["python_function"]
    return conf


def mlflow_versions(services: Services, name: str) -> int:
    return len(services.registry.mlflow.client.search_model_versions(f"name='{name}'"))


def predict(services: Services, name: str, version: int) -> list[float]:
    loaded = load_model(services.registry, name, version)
    arrays = [ROWS[c].to_numpy(dtype=np.float64) for c in ("a", "b")]
    return [float(v) for v in np.asarray(loaded.predict(Batch(["a", "b"], arrays, len(ROWS))))]


# -- models that keep to their folder -----------------------------------------------------


def test_a_scikit_learn_model_registers_and_loads(
    services: Services, folder: Callable[[], Path]
) -> None:
    path = save_sklearn(folder())
    version = services.registry.register("plain", str(path), actor="alice")
    assert len(predict(services, "plain", version.version)) == len(ROWS)
    assert len(predict(services, "plain", version.version)) == len(ROWS)  # loads again


def test_a_python_model_with_its_own_code_registers_and_loads(
    services: Services, folder: Callable[[], Path], tmp_path: Path
) -> None:
    path, module = save_pyfunc_with_code(folder(), tmp_path)
    assert (path / "code" / f"{module}.py").is_file()
    version = services.registry.register("own-code", str(path), actor="alice")
    assert predict(services, "own-code", version.version) == [1.0, -2.0, 4.0]
    assert Path(sys.modules[module].__file__ or "").resolve().is_relative_to(path.resolve())


def test_a_loader_module_in_the_models_own_code_registers_and_loads(
    services: Services, folder: Callable[[], Path], tmp_path: Path
) -> None:
    path, module = save_custom_loader(folder(), tmp_path)
    assert pyfunc_conf(yaml.safe_load((path / "MLmodel").read_text()))["loader_module"] == module
    version = services.registry.register("own-loader", str(path), actor="alice")
    assert predict(services, "own-loader", version.version) == [2.0, 1.25, 0.5]


def test_a_symlink_that_stays_inside_the_folder_is_allowed(
    services: Services, folder: Callable[[], Path]
) -> None:
    path = save_sklearn(folder())
    (path / "requirements-link.txt").symlink_to("requirements.txt")
    check_folder(path)


# -- models that reach outside ------------------------------------------------------------


def _code_outside_relative(path: Path, outside: Outside) -> str:
    """``code: ../<relative>/evilcode`` climbing out of the folder, the issue's attack."""
    relative = os.path.relpath(outside.folder, path)
    edit_mlmodel(
        path,
        lambda meta: pyfunc_conf(meta).update(code=relative, loader_module=outside.name),
    )
    return "flavors.python_function.code"


def _code_next_door(path: Path, outside: Outside) -> str:
    """``code: ../outside``: a sibling of the model folder, still inside the artifact
    root — outside the model, so outside what its digest covers."""
    sibling = path.parent / "outside"
    sibling.mkdir()
    (sibling / f"{outside.name}.py").write_text((outside.folder / f"{outside.name}.py").read_text())
    edit_mlmodel(
        path, lambda meta: pyfunc_conf(meta).update(code="../outside", loader_module=outside.name)
    )
    return "flavors.python_function.code"


def _code_absolute(path: Path, outside: Outside) -> str:
    edit_mlmodel(
        path,
        lambda meta: pyfunc_conf(meta).update(code=str(outside.folder), loader_module=outside.name),
    )
    return "flavors.python_function.code"


def _loader_module_outside(path: Path, outside: Outside) -> str:
    """No ``code`` at all: the loader module would come from wherever ``sys.path`` finds
    it (here: a folder put on it, as another model's code or the working directory is)."""
    sys.path.insert(0, str(outside.folder))
    edit_mlmodel(path, lambda meta: pyfunc_conf(meta).update(loader_module=outside.name))
    return "flavors.python_function.loader_module"


def _code_symlinked_outside(path: Path, outside: Outside) -> str:
    """``code: code`` as MLflow writes it, but ``code`` is a symlink to the outside."""
    (path / "code").symlink_to(outside.folder, target_is_directory=True)
    edit_mlmodel(
        path, lambda meta: pyfunc_conf(meta).update(code="code", loader_module=outside.name)
    )
    return "symlink"


def _file_symlinked_outside(path: Path, outside: Outside) -> str:
    """A weights file replaced by a symlink to a file elsewhere."""
    meta = yaml.safe_load((path / "MLmodel").read_text())
    weights = path / meta["flavors"]["sklearn"]["pickled_model"]
    weights.unlink()
    weights.symlink_to(outside.folder / f"{outside.name}.py")
    return "symlink"


def _weights_absolute(path: Path, outside: Outside) -> str:
    edit_mlmodel(
        path,
        lambda meta: meta["flavors"]["sklearn"].update(
            pickled_model=str(outside.folder / f"{outside.name}.py")
        ),
    )
    return "flavors.sklearn.pickled_model"


def _artifact_outside(path: Path, outside: Outside) -> str:
    edit_mlmodel(
        path,
        lambda meta: pyfunc_conf(meta).update(
            artifacts={"lookup": {"path": "../../../../etc/passwd", "uri": "x"}}
        ),
    )
    return "flavors.python_function.artifacts.lookup.path"


def _unknown_flavor_path(path: Path, outside: Outside) -> str:
    """A flavor this check has no list for: a key named like a path is still a path."""
    edit_mlmodel(
        path, lambda meta: meta["flavors"].update(custom={"weights_file": str(outside.folder)})
    )
    return "flavors.custom.weights_file"


def _model_class_outside(path: Path, outside: Outside) -> str:
    """XGBoost and LightGBM import their ``model_class``: only from their own library."""
    edit_mlmodel(
        path, lambda meta: meta["flavors"]["sklearn"].update(model_class=f"{outside.name}.Evil")
    )
    return "flavors.sklearn.model_class"


ATTACKS = [
    _code_outside_relative,
    _code_next_door,
    _code_absolute,
    _loader_module_outside,
    _code_symlinked_outside,
    _file_symlinked_outside,
    _weights_absolute,
    _artifact_outside,
    _unknown_flavor_path,
    _model_class_outside,
]


@pytest.fixture
def restore_sys_path() -> Iterator[None]:
    saved = list(sys.path)
    yield
    sys.path[:] = saved


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.__name__.strip("_"))
def test_a_model_reaching_outside_its_folder_is_refused_at_registration(
    services: Services,
    folder: Callable[[], Path],
    outside: Outside,
    attack: Callable[[Path, Outside], str],
    restore_sys_path: None,
) -> None:
    registry = services.registry
    registry.register("guarded", str(save_sklearn(folder())), actor="alice")
    path = save_sklearn(folder())
    key = attack(path, outside)

    with pytest.raises(InvalidInput) as refused:
        registry.register("guarded", str(path), actor="mallory")

    assert refused.value.field == "source"
    assert key in refused.value.message
    assert refused.value.details["key"] == key
    assert [v.version for v in registry.versions("guarded")] == [1]
    assert mlflow_versions(services, "guarded") == 1
    assert not outside.imported


def test_a_model_without_a_signature_is_refused_before_its_code_runs_to_infer_one(
    services: Services, folder: Callable[[], Path], outside: Outside
) -> None:
    """Inferring a signature runs the model (in a child); the outside code never gets
    that far."""
    path = folder()
    x = pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 1.0]})
    mlflow.sklearn.save_model(
        LogisticRegression().fit(x, [0, 1]),
        str(path),
        input_example=x,
        pip_requirements=["scikit-learn"],
    )
    edit_mlmodel(path, lambda meta: meta.pop("signature", None))
    _code_absolute(path, outside)

    with pytest.raises(InvalidInput) as refused:
        services.registry.register("unsigned", str(path), actor="mallory")

    assert refused.value.field == "source"
    assert not outside.imported
    with pytest.raises(NotFound):
        services.registry.versions("unsigned")


# -- at load --------------------------------------------------------------------------------


def _tamper_stored(services: Services, name: str, version: int, outside: Outside) -> Path:
    """Point the stored model's ``code`` outside, as the issue's attacker did."""
    key = services.registry.get(name, version).artifact_key
    stored = Path(services.registry.local_dir(key))
    relative = os.path.relpath(outside.folder, stored)
    edit_mlmodel(
        stored,
        lambda meta: pyfunc_conf(meta).update(code=relative, loader_module=outside.name),
    )
    return stored


def _rerecord_digest(services: Services, name: str, version: int) -> None:
    """Record the tampered files' digest, as for a version registered before the rule
    existed (the issue's attack did exactly that): only the confinement check is left."""
    key = services.registry.get(name, version).artifact_key
    digest = tree_hash(services.registry.artifacts.file_digests(key))
    with services.db.write() as session:
        row = session.get(ModelVersionRow, (DEFAULT_WORKSPACE, name, version))
        assert row is not None
        row.digest = digest


def test_a_model_changed_to_reach_outside_is_refused_at_load_before_it_imports(
    services: Services, folder: Callable[[], Path], outside: Outside, tmp_path: Path
) -> None:
    path, _module = save_pyfunc_with_code(folder(), tmp_path)
    version = services.registry.register("served", str(path), actor="alice").version
    assert predict(services, "served", version) == [1.0, -2.0, 4.0]
    _tamper_stored(services, "served", version, outside)

    with pytest.raises(ModelTampered):  # the digest alone already refuses it
        load_model(services.registry, "served", version)
    _rerecord_digest(services, "served", version)

    with pytest.raises(InvalidInput) as refused:
        load_model(services.registry, "served", version)
    assert refused.value.field == "source"
    assert refused.value.details["key"] == "flavors.python_function.code"
    with pytest.raises(InvalidInput):  # the registry's own loader (evaluation uses it)
        services.registry.load("served", version)
    assert not outside.imported


def test_the_tampered_model_really_runs_outside_code_without_the_check(
    services: Services, folder: Callable[[], Path], outside: Outside, tmp_path: Path
) -> None:
    """The control: MLflow's own loader, given the tampered folder, imports the outside
    module (in a child process, so this one stays clean) — the refusals above stop a real
    attack, not a folder MLflow would not have loaded anyway."""
    path, _module = save_pyfunc_with_code(folder(), tmp_path)
    version = services.registry.register("control", str(path), actor="alice").version
    stored = _tamper_stored(services, "control", version, outside)

    subprocess.run(
        [sys.executable, "-c", f"import mlflow.pyfunc; mlflow.pyfunc.load_model({str(stored)!r})"],
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        capture_output=True,
        timeout=300,
        check=False,  # the outside loader raises once it has run
    )
    assert outside.imported


def test_loading_a_models_code_writes_no_bytecode_into_its_folder(
    services: Services,
    folder: Callable[[], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python writes ``__pycache__`` beside what it imports: inside a stored model that
    is a file the digest never saw, and the next load (another worker) was refused."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as in a gateway worker
    path, _module = save_pyfunc_with_code(folder(), tmp_path)
    version = services.registry.register("compiled", str(path), actor="alice").version
    assert predict(services, "compiled", version) == [1.0, -2.0, 4.0]
    assert not list(path.rglob("__pycache__"))
    assert predict(services, "compiled", version) == [1.0, -2.0, 4.0]


@pytest.mark.s3
def test_on_an_object_store_the_copy_is_checked_before_registration(
    s3_root: str, tmp_path: Path, outside: Outside
) -> None:
    services = Services.open(load_settings(home=tmp_path / "home", artifacts={"root": s3_root}))
    try:
        good = save_sklearn(tmp_path / "good")
        services.artifacts.put_dir("mlflow/saved/good", good)
        services.registry.register("remote", "mlflow-artifacts:/saved/good", actor="alice")
        bad = save_sklearn(tmp_path / "bad")
        key = _code_absolute(bad, outside)
        services.artifacts.put_dir("mlflow/saved/bad", bad)

        with pytest.raises(InvalidInput) as refused:
            services.registry.register("remote", "mlflow-artifacts:/saved/bad", actor="mallory")

        assert refused.value.field == "source"
        assert refused.value.details["key"] == key
        assert [v.version for v in services.registry.versions("remote")] == [1]
        assert not outside.imported
    finally:
        services.close()


# -- through the gateway --------------------------------------------------------------------


def test_the_gateway_refuses_a_version_reaching_outside_and_keeps_serving(
    services: Services,
    folder: Callable[[], Path],
    outside: Outside,
    tmp_path: Path,
    restore_sys_path: None,
) -> None:
    """The issue's attack end to end: a version registered before the rule, its code
    pointing outside, deployed (staging needs no approval). The gateway refuses to load
    it, imports nothing, and its endpoint keeps answering with the version it had."""
    from tests.serving.conftest import Platform, start_gateway  # the serving suite's own

    registry = services.registry
    good = registry.register("gated", str(save_pyfunc_with_code(folder(), tmp_path)[0]), actor="a")
    bad = registry.register("gated", str(save_pyfunc_with_code(folder(), tmp_path)[0]), actor="a")
    _tamper_stored(services, "gated", bad.version, outside)
    _rerecord_digest(services, "gated", bad.version)

    def spec(version: int) -> dict[str, Any]:
        return {"name": "gated", "variants": [{"name": "main", "model": f"gated:{version}"}]}

    settle = Platform(services, {}).settle
    running, stop = start_gateway(services)
    try:
        services.endpoints.create(spec(good.version), actor="test")
        assert settle("gated").status == "InService"
        row = {"dataframe_records": [{"a": 1.5, "b": 0.0}]}
        url = f"{running.url}/endpoints/gated/invocations"
        assert httpx.post(url, json=row).json()["predictions"] == [3.0]

        services.endpoints.update("gated", spec(bad.version), actor="mallory")
        described = settle("gated")

        assert described.status == "InService" and described.active_version == 1
        reason = services.endpoints.history("gated")[1].outcome_reason
        assert "flavors.python_function.code" in reason, reason
        assert httpx.post(url, json=row).json()["predictions"] == [3.0]
        assert not outside.imported
    finally:
        stop()
