"""Where the embedded stack listens and keeps its files, moved by ``AVROLAKE_*`` variables."""

from __future__ import annotations

from avrolake.settings import LocalPorts, local_state_dir, local_warehouse_dir

__all__ = ["LocalPorts", "local_state_dir", "local_warehouse_dir"]
