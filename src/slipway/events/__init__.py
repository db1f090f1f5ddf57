"""Events put to work: triggers that start pipelines (and, later, alerts)."""
