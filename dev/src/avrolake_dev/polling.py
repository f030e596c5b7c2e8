"""One bounded polling helper (tenacity) for every wait of the dev tooling."""

from __future__ import annotations

from collections.abc import Callable

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed


def poll(condition: Callable[[], bool], *, timeout: float, interval: float) -> bool:
    """Call ``condition`` every ``interval`` seconds until it returns true (then ``True``) or
    ``timeout`` seconds have passed (then ``False``). What ``condition`` raises propagates at once.
    """
    retrying = Retrying(
        retry=retry_if_result(lambda done: not done),
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry_error_callback=lambda _state: False,
    )
    return bool(retrying(condition))
