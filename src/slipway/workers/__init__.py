"""Local worker processes that claim work from the queue and run it."""
