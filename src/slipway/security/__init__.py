"""API tokens with roles, and the audit log of every mutation."""
