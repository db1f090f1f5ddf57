"""Running the platform's processes: the supervisor behind ``slipway up``."""
