"""``python -m slipway.api.tracking --host H --port P``: see :mod:`.serve`."""

from slipway.api.tracking.serve import main
from slipway.runtime.exit import exit_now

if __name__ == "__main__":
    exit_now(main())
