"""Running streaming queries until they end, one fails, or SIGTERM/SIGINT asks them to stop.

A signal handler runs in the main thread *between two bytecodes of whatever the main thread is
doing*, and that is almost always a py4j call (``awaitTermination``) blocked on the gateway socket.
A handler that itself calls into py4j (``query.stop()``) re-enters that socket: ``Py4JError`` or
``RuntimeError: reentrant call inside <_io.BufferedReader>``. So the handler only sets an event, the
main thread waits in short ``awaitTermination(timeout)`` slices, and stops the queries itself once
the event is set, outside any handler. pyspark's own SIGINT handler (installed with every new
SparkContext) makes the same py4j call from the handler, so ours is installed again after it.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from avrolake.cli.failures import root_cause
from avrolake.errors import PipelineError

if TYPE_CHECKING:
    from pyspark.sql.streaming import StreamingQuery

__all__ = [
    "StopRequest",
    "await_queries",
    "await_query",
    "foreach_batch_running",
    "stop_signals",
]

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
POLL_S = 1  # seconds one awaitTermination slice blocks: the delay before a stop starts
# How long a stop waits for a running foreachBatch function (silver's batch) to return before
# interrupting it anyway. Either way the checkpoint keeps the position; see ``_stop``.
BATCH_GRACE_S = 30.0


class StopRequest:
    """Set by SIGTERM/SIGINT once ``install``ed (see ``stop_signals``), read by the main thread."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None

    def set(self, signal_name: str) -> None:
        if self.signal_name is None:
            self.signal_name = signal_name
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only this: no py4j call, no logging (a handler may interrupt a logging call holding
        # the handler's lock).
        self.set(signal.Signals(signum).name)

    def install(self) -> None:
        """Make SIGTERM and SIGINT set this request. Call it again once Spark has started:
        creating a SparkContext installs pyspark's own SIGINT handler, which calls py4j
        (``cancelAllJobs``) from inside the handler and raises ``KeyboardInterrupt``.

        Off the main thread, where Python cannot install signal handlers (an embedding runner),
        this does nothing and the request is simply never set.
        """
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                signal.signal(sig, self._on_signal)


@contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """SIGTERM and SIGINT set the returned ``StopRequest`` for the ``with`` body, nothing more;
    the previous handlers come back afterwards.

    Entered before Spark starts, so a signal during start-up is not lost (nor kills the process
    half-way through launching the JVM); ``install`` it again once the session exists.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    request.install()
    try:
        yield request
    finally:
        for sig, handler in previous.items():  # None: set outside Python, so the default
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def foreach_batch_running() -> bool:
    """Whether a ``foreachBatch`` function is running in this process right now.

    The JVM calls it back into the driver's Python process, so its frame is visible here: under
    pyspark's ``ForeachBatchFunction.call``, whatever the function is.
    """
    try:
        from pyspark.sql.utils import ForeachBatchFunction

        code = ForeachBatchFunction.call.__code__
    except (ImportError, AttributeError):  # another pyspark layout: nothing to wait for
        return False
    for top in sys._current_frames().values():
        frame: FrameType | None = top
        while frame is not None:
            if frame.f_code is code:
                return True
            frame = frame.f_back
    return False


def _stop(running: Sequence[tuple[StreamingQuery, str]], reason: str, grace: float) -> None:
    """Stop the ``running`` queries once no ``foreachBatch`` function is running, or after
    ``grace`` seconds.

    ``stop()`` interrupts the stream thread. Interrupted JVM work (reading Kafka, writing Delta)
    is simply redone on restart: Delta's streaming sink and silver's MERGEs are idempotent per
    batch. But a foreachBatch function interrupted mid-way fails with its whole Python traceback
    as the message, and Spark's check of that message (``StreamExecution.isInterruptionException``:
    ``Py4JJavaError: An error occurred while calling((.|\\r\\n|\\r|\\n)*)…``, a regex that recurses
    once per character) overflows the stream thread's stack on a long one and prints a JVM trace.
    So the function is let finish, and if it takes longer than ``grace``, its error is made short
    before it is interrupted (``_short_callback_errors``). One grace for all the queries: which
    query a running function belongs to cannot be seen from here, and several busy queries would
    otherwise wait ``grace`` each.
    """
    for _, name in running:
        log.info("%s: stopping %s", reason, name)
    if foreach_batch_running():
        log.info("letting the running batch finish (at most %.0f s)", grace)
    deadline = time.monotonic() + grace
    while foreach_batch_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    _short_callback_errors()  # in case a batch function is still (or again) running
    for query, name in running:
        query.stop()  # the checkpoint keeps the position: the next run resumes exactly there
        log.info("%s stopped", name)


def _short_callback_errors() -> None:
    """From now on a Java error raised inside a foreachBatch function reaches the JVM as the
    Java exception itself, not as the Python traceback text around it (py4j's
    ``propagate_java_exceptions``, read at each callback): the interrupted function's error is
    then short, and Spark's regex has nothing to overflow on. Only for the stop: a batch that
    fails on its own keeps its traceback, which ``root_cause`` reads."""
    from pyspark import SparkContext

    parameters = getattr(SparkContext._gateway, "python_parameters", None)
    if parameters is not None and hasattr(parameters, "propagate_java_exceptions"):
        parameters.propagate_java_exceptions = True


def await_query(
    query: StreamingQuery,
    stop: StopRequest | None = None,
    *,
    poll_s: int = POLL_S,
    grace_s: float = BATCH_GRACE_S,
) -> int:
    """``await_queries`` of one query."""
    return await_queries([query], stop, poll_s=poll_s, grace_s=grace_s)


def _ended(query: StreamingQuery, wait_s: int | None) -> bool:
    """Whether ``query`` has ended, waiting up to ``wait_s`` seconds for it (None: only look);
    raises what a failed query failed with."""
    # awaitTermination raises for a failed query; isActive is false for a failed one too
    ended = bool(query.awaitTermination(wait_s)) if wait_s is not None else not query.isActive
    failure = query.exception() if ended else None
    if failure is not None:
        raise failure
    return ended


def await_queries(
    queries: Sequence[StreamingQuery],
    stop: StopRequest | None = None,
    *,
    poll_s: int = POLL_S,
    grace_s: float = BATCH_GRACE_S,
) -> int:
    """Wait until every query ended; return 0 when they finished or were stopped on request.

    A query that failed raises ``PipelineError`` naming it and the real cause (the full text
    chained for ``-v``), after the others were stopped as a signal stops them: they share the
    command's fate, since a job that retries must find every query stopped at a checkpoint.
    With a ``StopRequest`` (from ``stop_signals``) a signal stops them all (see ``_stop``);
    without one, this installs ``stop_signals`` itself. Available-now queries each end when they
    drained their source; the command ends with the last.

    A signal sent to the whole process group (``timeout``, some supervisors) reaches Spark's JVM
    too, which then shuts down under the queries: after a stop was asked for, that is a stop like
    any other (the checkpoints hold the positions), not a failure.
    """
    if stop is None:
        with stop_signals() as own:
            return await_queries(queries, own, poll_s=poll_s, grace_s=grace_s)
    stop.install()  # the session exists now: take SIGINT back from pyspark
    running = [(query, query.name) for query in queries]  # no py4j call after a failure
    for _, name in running:
        log.info("%s running; SIGTERM or Ctrl-C stops it", name)
    while running:
        # The first query's awaitTermination paces the loop (one slice); the others are looked
        # at in passing, so one failing is noticed within a slice whichever it is.
        for index, (query, name) in enumerate(list(running)):
            try:
                if _ended(query, poll_s if index == 0 else None):
                    running.remove((query, name))
            except Exception as error:  # the query's StreamingQueryException, or py4j's own
                if stop.requested:
                    log.info("Spark stopped under %s with the %s", name, stop.signal_name)
                    log.debug("how it stopped", exc_info=True)
                    return 0
                others = [(q, n) for q, n in running if q is not query]
                try:
                    _stop(others, f"{name} failed", grace_s)
                except Exception:  # the JVM may be gone: the failure above is what to report
                    log.debug("stopping the other queries failed too", exc_info=True)
                raise PipelineError(f"query {name} failed: {root_cause(str(error))}") from error
        if running and stop.requested:
            try:
                _stop(running, f"{stop.signal_name} received", grace_s)
            except Exception:
                log.info("Spark stopped under the queries with the %s", stop.signal_name)
                log.debug("how it stopped", exc_info=True)
            return 0  # however the stop ended the running batches, nothing is lost
    return 0
