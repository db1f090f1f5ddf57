"""Online stores: the latest record per key, for low-latency reads at serving time."""
