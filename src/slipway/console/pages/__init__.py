"""One module per console section; each has a ``router`` of :class:`ConsoleRoute` routes."""
