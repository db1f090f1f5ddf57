"""Workers that claim work from the queue and run it: in local processes, or as Ray tasks."""
