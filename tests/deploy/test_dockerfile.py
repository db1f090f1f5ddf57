"""The Dockerfile: a multi-stage build whose builder installs the locked dependencies with
uv and whose runtime stage runs every process as a non-root user, without compilers.

No test builds the image: its base image comes from a container registry, which the
machines that run this suite cannot reach (CI builds it, see README "Deploying"). What a
build would find out without a registry is checked here instead: the parsed instructions,
that the build context holds what the stages copy, that the lock is current for the
builder's `uv sync`, and that every package that sync installs has a wheel for the base
image's Python and platform (so the builder needs no compiler either)."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

from tests.deploy.dockerfile import Dockerfile, Stage, parse

REPO = Path(__file__).resolve().parents[2]
# The base image's C library: Debian 12 "bookworm" has glibc 2.36.
GLIBC_MINOR = {"bookworm": 36}
# A Python 3.11 release the base image may carry (markers compare the full version).
PATCH_RELEASE = 11


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse((REPO / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def builder(dockerfile: Dockerfile) -> Stage:
    return dockerfile.stage("builder")


@pytest.fixture(scope="module")
def runtime(dockerfile: Dockerfile) -> Stage:
    return dockerfile.stages[-1]


def test_multi_stage_build_from_one_slim_python(dockerfile: Dockerfile) -> None:
    assert [stage.name for stage in dockerfile.stages] == ["builder", "runtime"]
    base = dockerfile.global_args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.\d+-slim-[a-z]+", base), base
    # The environment's python links to the builder's interpreter: the same image runs it.
    assert {stage.base for stage in dockerfile.stages} == {base}


def test_runtime_runs_as_a_non_root_user(runtime: Stage) -> None:
    user = runtime.last("USER")
    assert user is not None, "the runtime stage sets no USER"
    uid, _, gid = user.value.partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can tell without the image's /etc/passwd.
    assert uid.isdigit() and int(uid) != 0, user.value
    assert gid == "" or (gid.isdigit() and int(gid) != 0), user.value
    assert uid == "10001"  # what the Helm chart's podSecurityContext runs as
    assert [u.value for u in runtime.all("USER")] == [user.value]  # no switching back


def test_runtime_has_no_compiler_no_uv_and_no_source(runtime: Stage) -> None:
    installed = " ".join(i.value for i in runtime.all("RUN"))
    assert "apt-get install" in installed
    toolchain = re.findall(
        r"(?<![\w/-])(gcc|g\+\+|cc|clang|make|build-essential|uv)(?![\w-])", installed
    )
    assert toolchain == []
    assert re.findall(r"\S+-dev\b", installed) == []  # no headers either
    copies = [i.value for i in runtime.all("COPY")]
    assert copies == ["--from=builder /opt/slipway/venv /opt/slipway/venv"]
    assert "/opt/slipway/venv/bin" in runtime.env()["PATH"]


def test_one_image_runs_every_process(runtime: Stage) -> None:
    entrypoint = runtime.last("ENTRYPOINT")
    command = runtime.last("CMD")
    assert entrypoint is not None and command is not None
    assert entrypoint.exec_form() == ["/usr/bin/tini", "--", "slipway"]
    assert command.exec_form() == ["up"]
    env = runtime.env()
    # Reached from outside the container: every plane listens on all interfaces, which
    # Slipway allows only with auth on.
    assert env["SLIPWAY_SERVER__HOST"] == env["SLIPWAY_TRACKING__HOST"] == "0.0.0.0"
    assert env["SLIPWAY_SERVING__HOST"] == "0.0.0.0"
    assert env["SLIPWAY_SERVER__AUTH"] == "true"
    assert env["SLIPWAY_HOME"] == "/var/lib/slipway"
    exposed = {int(p) for i in runtime.all("EXPOSE") for p in i.value.split()}
    assert exposed == {8420, 8421, 8422}


def _uv_syncs(builder: Stage) -> list[list[str]]:
    """The arguments of each `uv sync` the builder runs."""
    syncs = []
    for run in builder.all("RUN"):
        for command in run.value.split("&&"):
            words = command.split(";")[-1].split()
            if words[:2] == ["uv", "sync"]:
                syncs.append(words[2:])
    return syncs


def test_builder_installs_exactly_the_locked_dependencies(builder: Stage) -> None:
    syncs = _uv_syncs(builder)
    assert len(syncs) == 2  # dependencies first (their own layer), then the project
    for flags in syncs:
        assert {"--frozen", "--no-dev"} <= set(flags), flags
    assert "--no-install-project" in syncs[0]
    assert "--no-editable" in syncs[1]
    assert builder.env()["UV_PROJECT_ENVIRONMENT"] == "/opt/slipway/venv"
    assert builder.env()["UV_COMPILE_BYTECODE"] == "1"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves ``path`` out of the build context: the last pattern
    matching it or a folder above it decides; ``!`` patterns put it back."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatchcase(prefix, glob) for prefix in prefixes):
            ignored = not keep
    return ignored


def test_the_build_context_holds_what_the_stages_copy(dockerfile: Dockerfile) -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in lines if p.strip() and not p.startswith("#")]
    sources = [
        word
        for stage in dockerfile.stages
        for copy in stage.all("COPY")
        if not copy.value.startswith("--from=")
        for word in copy.value.split()[:-1]
    ]
    assert sources == ["pyproject.toml", "uv.lock", "README.md", "src"]
    for source in sources:
        assert (REPO / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is left out by .dockerignore"
    assert not _ignored("src/slipway/cli/main.py", patterns)
    # What stays out: the virtual environment, caches, tests, the services' data.
    for path in (".venv", ".tools", ".git", "tests", ".services", "src/slipway/__pycache__"):
        assert _ignored(path, patterns), path


def _uv() -> str:
    found = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    assert Path(found).is_file(), "no uv: `make env` installs it into .tools/bin"
    return found


def _platform_tags(python: tuple[int, int], glibc_minor: int, arch: str) -> set[Tag]:
    """The wheel tags CPython ``python`` installs on glibc 2.``glibc_minor`` on ``arch``."""
    platforms = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc_minor, 16, -1)]
    platforms += [f"manylinux2014_{arch}"]
    if arch == "x86_64":
        platforms += ["manylinux2010_x86_64", "manylinux1_x86_64"]
    platforms += [f"linux_{arch}"]
    return set(cpython_tags(python, platforms=platforms)) | set(
        compatible_tags(python, platforms=platforms)
    )


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_every_package_the_builder_installs_has_a_wheel_for_the_image(
    dockerfile: Dockerfile, builder: Stage, arch: str
) -> None:
    """The builder's `uv sync` (its extras, no dev group) against the lock: current with
    pyproject.toml (`--locked` fails on a stale lock, which `--frozen` would build from), and
    every package a wheel for the base image, so nothing is compiled in the builder."""
    base = dockerfile.global_args["PYTHON_IMAGE"]
    version, distribution = re.fullmatch(r"python:(3\.\d+)-slim-([a-z]+)", base).groups()  # type: ignore[union-attr]
    python = (3, int(version.split(".")[1]))
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert SpecifierSet(pyproject["project"]["requires-python"]).contains(f"{version}.0")

    extras = builder.args()["EXTRAS"].split()
    assert extras == ["s3"]
    optional = pyproject["project"]["optional-dependencies"]
    assert set(extras) <= set(optional)
    args = [_uv(), "export", "--locked", "--no-dev", "--no-editable", "--no-hashes"]
    args += ["--no-emit-project", "--no-header", "--no-annotate", "--format", "requirements.txt"]
    for extra in extras:
        args += ["--extra", extra]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_OFFLINE": "1"}
    run = subprocess.run(args, cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr

    machine = "aarch64" if arch == "aarch64" else "x86_64"
    environment = {
        "python_version": version,
        "python_full_version": f"{version}.{PATCH_RELEASE}",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": machine,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
    }
    installed = {}
    for line in run.stdout.splitlines():
        requirement, _, marker = line.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(environment):
            continue
        name, _, pinned = requirement.strip().partition("==")
        installed[name] = pinned
    assert {"mlflow", "s3fs", "psycopg-binary", "confluent-kafka"} <= set(installed)

    tags = _platform_tags(python, GLIBC_MINOR[distribution], arch)
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    entries = {(p["name"], p["version"]): p for p in lock["package"] if "version" in p}
    without_wheel = []
    for name, pinned in sorted(installed.items()):
        wheels = entries[(name, pinned)].get("wheels", [])
        files = [w["url"].rsplit("/", 1)[-1] for w in wheels]
        if not any(set(parse_wheel_filename(f)[3]) & tags for f in files):
            without_wheel.append(f"{name}=={pinned}")
    assert without_wheel == [], f"would be compiled from source on {arch}: {without_wheel}"
