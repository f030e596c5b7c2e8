"""How the stack launches a JVM: the ``java`` on PATH, tuned to start fast rather than run fast."""

from __future__ import annotations

from avrolake.spark import JAVA_FIX
from avrolake_dev.local.proc import require_tool

__all__ = ["FAST_START", "JAVA_FIX", "java_command"]

# The services handle test-sized traffic: C1 only, a serial GC and no perf counters start them in a
# few seconds on two cores and keep them small.
FAST_START = (
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-XX:-UsePerfData",
    "-Xss512k",
    "-Djava.awt.headless=true",
)


def java_command(max_heap: str, *args: str) -> list[str]:
    """``java`` with the fast-start flags and a heap cap, then ``args``.

    Raises ``LocalStackError`` when ``java`` is not on PATH.
    """
    return [require_tool("java", JAVA_FIX), f"-Xmx{max_heap}", *FAST_START, *args]
