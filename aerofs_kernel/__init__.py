"""AeroFS in a kernel: the public API (filled in by the kernel package)."""

from aerofs_kernel import _engine

__all__ = ["_engine"]
