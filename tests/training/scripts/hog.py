"""Allocates far more memory than its job's cap allows."""

blocks = [bytearray(64 * 1024 * 1024) for _ in range(40)]
print(len(blocks))
