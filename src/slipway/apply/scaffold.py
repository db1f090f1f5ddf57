"""``slipway init``: a model repository laid out for plan/apply and CI.

The files come from ``templates/`` beside this module (``*.tmpl``; ``package/`` becomes
the repository's Python package, ``github/`` its ``.github/``, ``gitignore`` its
``.gitignore``) with ``__NAME__`` and ``__PACKAGE__`` replaced. Nothing is written into a
folder that has files already, and nothing at all when the name is refused.
"""

from __future__ import annotations

from pathlib import Path

from slipway.core.errors import Conflict, InvalidInput
from slipway.core.names import validate_name

TEMPLATES = Path(__file__).resolve().parent / "templates"
_RENAMED = {"package": "__PACKAGE__", "github": ".github", "gitignore": ".gitignore"}


def package_name(name: str) -> str:
    """The Python package of a repository named ``name`` (``churn-model`` → ``churn_model``)."""
    return name.replace("-", "_")


def scaffold(folder: Path, name: str) -> list[Path]:
    """Write a model repository named ``name`` into ``folder`` (made if missing); the
    files written, relative to it."""
    validate_name(name, field="name")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise Conflict(f"{folder} exists and is not an empty folder; nothing was written")
    package = package_name(name)
    if not package.isidentifier():
        raise InvalidInput(f"{name!r} does not make a Python package name", field="name")
    planned: list[tuple[Path, str]] = []
    for source in sorted(TEMPLATES.rglob("*.tmpl")):
        written = source.relative_to(TEMPLATES).with_suffix("")  # without .tmpl
        relative = Path(
            *(_RENAMED.get(part, part).replace("__PACKAGE__", package) for part in written.parts)
        )
        text = source.read_text().replace("__NAME__", name).replace("__PACKAGE__", package)
        planned.append((relative, text))
    for relative, text in planned:
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return [relative for relative, _ in planned]
