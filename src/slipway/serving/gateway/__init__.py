"""The gateway: the data plane that answers invocations for every endpoint."""
