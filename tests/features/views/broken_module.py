"""A module whose own code fails while it is imported."""

raise RuntimeError("broken at import")
