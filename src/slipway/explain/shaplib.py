"""SHAP, imported on first use: heavy (numba, scipy, matplotlib), and only the "explain"
extra installs it.

Importing it builds its plot colour maps with matplotlib calls that matplotlib now
announces as deprecated (``PendingDeprecationWarning`` for ``set_bad``, ``set_over``,
``set_under``): noise about SHAP's plotting, which nothing here uses, so it is silenced
for the import alone.
"""

from __future__ import annotations

import warnings
from types import ModuleType


def shap() -> ModuleType:
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"The set_\w+ function will be deprecated",
            category=PendingDeprecationWarning,
        )
        import shap as module  # type: ignore[import-untyped]

    return module  # type: ignore[no-any-return]
