"""How a stage waits for its queries: the signal handler only records the request; the main thread
stops the queries outside it, once no foreachBatch function runs; a failed query stops the others
and raises one line.

The query here is a stand-in that records the order of calls: what matters is *when* each call
happens relative to the signal, which a real stream cannot be made to show deterministically
(``tests/integration/test_pipeline_cli.py`` sends real signals to real streams).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from types import SimpleNamespace

import pytest
from pyspark import SparkContext
from pyspark.sql.utils import ForeachBatchFunction

from avrolake.cli import stopping
from avrolake.cli.stopping import await_queries, await_query, foreach_batch_running, stop_signals
from avrolake.errors import PipelineError


class RecordingQuery:
    """Answers like a ``StreamingQuery``; ``signal_on_await`` sends the signal while the main
    thread is inside ``awaitTermination``, as it is inside py4j for a real one. ``ends_after``:
    the query has ended at that many calls; ``failure``: it has failed with that."""

    def __init__(
        self,
        *,
        name: str = "avrolake-test",
        signal_on_await: int | None = None,
        ends_after: int | None = None,
        failure: Exception | None = None,
    ) -> None:
        self.name = name
        self.calls: list[str] = []
        self.signal_on_await = signal_on_await
        self.ends_after = ends_after
        self.failure = failure
        self.awaiting = False
        self.active = True

    def awaitTermination(self, timeout: int) -> bool:
        self.calls.append(f"await({timeout})")
        self.awaiting = True
        try:
            if self.signal_on_await is not None and self.calls.count(f"await({timeout})") == 1:
                os.kill(os.getpid(), self.signal_on_await)  # the handler runs before we return
            if self.failure is not None:
                raise self.failure
            return self.ends_after is not None and len(self.calls) >= self.ends_after
        finally:
            self.awaiting = False

    @property
    def isActive(self) -> bool:
        self.calls.append("isActive")
        ended = self.ends_after is not None and len(self.calls) >= self.ends_after
        return self.active and self.failure is None and not ended

    def stop(self) -> None:
        assert not self.awaiting, "stop() called from inside awaitTermination (a signal handler)"
        self.calls.append("stop")
        self.active = False

    def exception(self) -> Exception | None:
        return self.failure


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_query_from_the_main_thread(signum: int) -> None:
    query = RecordingQuery(signal_on_await=signum)
    assert await_query(query, poll_s=1) == 0
    assert query.calls == ["await(1)", "stop"]


def test_sigint_is_taken_back_from_pyspark() -> None:
    """Creating a SparkContext installs pyspark's SIGINT handler (py4j calls, then
    KeyboardInterrupt, from inside the handler): waiting on the query installs ours again."""
    pyspark_handler_ran: list[int] = []
    with stop_signals() as request:
        signal.signal(signal.SIGINT, lambda signum, _frame: pyspark_handler_ran.append(signum))
        query = RecordingQuery(signal_on_await=signal.SIGINT)
        assert await_query(query, request, poll_s=1) == 0
    assert pyspark_handler_ran == []
    assert query.calls == ["await(1)", "stop"]
    assert request.signal_name == "SIGINT"


def test_the_stop_lets_a_running_batch_function_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    polls = iter([True, True, True, False])
    monkeypatch.setattr(stopping, "foreach_batch_running", lambda: next(polls))
    query = RecordingQuery(signal_on_await=signal.SIGTERM)
    assert await_query(query, poll_s=1) == 0
    assert query.calls == ["await(1)", "stop"]
    assert next(polls, "drained") == "drained"  # asked until the function had returned


def test_the_stop_does_not_wait_beyond_the_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stopping, "foreach_batch_running", lambda: True)
    query = RecordingQuery(signal_on_await=signal.SIGTERM)
    begin = time.monotonic()
    assert await_query(query, poll_s=1, grace_s=0.3) == 0
    assert 0.3 <= time.monotonic() - begin < 2.0
    assert query.calls == ["await(1)", "stop"]


def test_the_stop_makes_callback_errors_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before interrupting, a Java error inside a foreachBatch function is set to reach the JVM
    as itself, not as a long Python traceback that Spark's interruption check chokes on."""
    parameters = SimpleNamespace(propagate_java_exceptions=False)
    monkeypatch.setattr(SparkContext, "_gateway", SimpleNamespace(python_parameters=parameters))
    assert await_query(RecordingQuery(signal_on_await=signal.SIGTERM), poll_s=1) == 0
    assert parameters.propagate_java_exceptions is True


def test_a_query_that_ends_by_itself_keeps_callback_errors_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parameters = SimpleNamespace(propagate_java_exceptions=False)
    monkeypatch.setattr(SparkContext, "_gateway", SimpleNamespace(python_parameters=parameters))
    assert await_query(RecordingQuery(ends_after=1), poll_s=1) == 0
    assert parameters.propagate_java_exceptions is False  # root_cause reads the traceback


def test_foreach_batch_running_sees_pyspark_calling_a_function() -> None:
    """The frame it looks for is pyspark's own wrapper of every foreachBatch function."""
    entered, release = threading.Event(), threading.Event()

    class BlockingBatch:  # the JVM's DataFrame handle: the first thing ``call`` touches
        def sparkSession(self) -> None:
            entered.set()
            release.wait(10)
            raise RuntimeError("batch done")

    function = ForeachBatchFunction(session=None, func=lambda _df, _batch_id: None)  # type: ignore[arg-type]

    def run_batch() -> None:
        with contextlib.suppress(RuntimeError):
            function.call(BlockingBatch(), 0)  # type: ignore[arg-type]

    assert not foreach_batch_running()
    worker = threading.Thread(target=run_batch)
    worker.start()
    assert entered.wait(10)
    assert foreach_batch_running()
    release.set()
    worker.join(10)
    assert not foreach_batch_running()


def test_a_query_that_ends_by_itself_is_not_stopped() -> None:
    query = RecordingQuery(ends_after=3)
    assert await_query(query, poll_s=1) == 0
    assert query.calls == ["await(1)", "await(1)", "await(1)"]


FOREACH_BATCH_FAILURE = RuntimeError(
    "[STREAM_FAILED] Query [id = 1, runId = 2] terminated with exception: "
    "[FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred in the user provided function in "
    "foreach batch sink. Reason: An exception was raised by the Python Proxy. Return Message: "
    "Traceback (most recent call last):\n"
    '  File "silver_io.py", line 1, in __call__\n'
    "    boom()\n"
    "ValueError: boom\n"
    " SQLSTATE: 39000 SQLSTATE: XXKST\n"
)


def test_a_failed_query_raises_one_line_with_the_cause() -> None:
    with pytest.raises(PipelineError) as caught:
        await_query(RecordingQuery(failure=FOREACH_BATCH_FAILURE), poll_s=1)
    assert str(caught.value) == "query avrolake-test failed: ValueError: boom"
    assert caught.value.__cause__ is FOREACH_BATCH_FAILURE  # the whole text, for -v


# -- several queries (silver: one per pipeline) ---------------------------------------------------


def test_a_signal_stops_every_query() -> None:
    """The first query's awaitTermination paces the wait; the others are looked at in passing.
    A signal stops them all, each outside the handler."""
    first = RecordingQuery(name="avrolake-silver-a", signal_on_await=signal.SIGTERM)
    second = RecordingQuery(name="avrolake-silver-b")
    assert await_queries([first, second], poll_s=1) == 0
    assert (first.calls, second.calls) == (["await(1)", "stop"], ["isActive", "stop"])


def test_one_failing_query_stops_the_others_and_fails_the_command() -> None:
    running = RecordingQuery(name="avrolake-silver-a")
    failed = RecordingQuery(name="avrolake-silver-b", failure=FOREACH_BATCH_FAILURE)
    with pytest.raises(PipelineError) as caught:
        await_queries([running, failed], poll_s=1)
    assert str(caught.value) == "query avrolake-silver-b failed: ValueError: boom"
    assert caught.value.__cause__ is FOREACH_BATCH_FAILURE
    assert (running.calls, failed.calls) == (["await(1)", "stop"], ["isActive"])

    # the first one failing (seen in its awaitTermination) stops the second just the same
    failed = RecordingQuery(name="avrolake-silver-a", failure=FOREACH_BATCH_FAILURE)
    running = RecordingQuery(name="avrolake-silver-b")
    with pytest.raises(PipelineError) as caught:
        await_queries([failed, running], poll_s=1)
    assert str(caught.value) == "query avrolake-silver-a failed: ValueError: boom"
    assert (failed.calls, running.calls) == (["await(1)"], ["stop"])


def test_available_now_queries_end_the_command_when_the_last_one_ended() -> None:
    """The first ends at its first slice; the second, looked at then, becomes the one waited on
    and ends two slices later. Neither is stopped."""
    first = RecordingQuery(name="avrolake-silver-a", ends_after=1)
    second = RecordingQuery(name="avrolake-silver-b", ends_after=3)
    assert await_queries([first, second], poll_s=1) == 0
    assert (first.calls, second.calls) == (["await(1)"], ["isActive", "await(1)", "await(1)"])


def test_a_stop_waits_once_for_the_running_batches_of_all_queries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One grace for all: busy queries do not each add their own."""
    monkeypatch.setattr(stopping, "foreach_batch_running", lambda: True)
    queries = [
        RecordingQuery(
            name=f"avrolake-silver-{n}", signal_on_await=signal.SIGTERM if n == 0 else None
        )
        for n in range(3)
    ]
    begin = time.monotonic()
    assert await_queries(queries, poll_s=1, grace_s=0.5) == 0
    assert 0.5 <= time.monotonic() - begin < 1.0  # a grace each would take 1.5 s
    assert [query.calls[-1] for query in queries] == ["stop", "stop", "stop"]


def test_stop_signals_restores_the_previous_handlers() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    with stop_signals() as request:
        assert not request.requested
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt: only recorded
        os.kill(os.getpid(), signal.SIGTERM)
        assert request.requested
        assert request.signal_name == "SIGINT"  # the first one is the one reported
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_off_the_main_thread_nothing_is_installed() -> None:
    """An embedding runner may call the entry point from another thread, where Python refuses
    to install signal handlers: the stage must still run."""
    seen: list[bool] = []

    def body() -> None:
        with stop_signals() as request:
            seen.append(request.requested)

    before = signal.getsignal(signal.SIGTERM)
    worker = threading.Thread(target=body)
    worker.start()
    worker.join(10)
    assert seen == [False]
    assert signal.getsignal(signal.SIGTERM) == before
