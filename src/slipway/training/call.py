"""Run a ``module:function`` training entry point with hyperparameters as keywords.

python -m slipway.training.call pkg.train:fit '{"n_estimators": 100}'
"""

from __future__ import annotations

import json
import sys

from slipway.runtime.targets import resolve_target


def main(target: str, hyperparameters: str) -> int:
    fn = resolve_target(target)
    fn(**json.loads(hyperparameters))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
