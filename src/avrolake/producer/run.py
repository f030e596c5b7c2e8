"""The produce loop: random Product events of mixed versions → one Kafka topic.

Contract of ``run_produce``:

* fails within seconds, before producing anything, if the broker or the registry is unreachable
  (``KafkaError`` / ``RegistryError``), or a version is unknown or unregistered;
* one long-lived ``confluent_kafka.Producer`` (acks=all, idempotent, lz4, batched); record key is
  ``productId``; every record carries its own writer version's schema reference;
* stops generating on ``count`` / ``duration``, on SIGINT or SIGTERM, or at the first delivery
  failure; then flushes (bounded by ``flush_timeout``) and reports: nothing the broker acknowledged
  is lost, and the manifest lists exactly the acknowledged records.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from avrolake.connection import producer_config
from avrolake.errors import ConfigError
from avrolake.producer.broker import check_broker, ensure_topic
from avrolake.producer.events import EventGenerator
from avrolake.producer.manifest import ManifestWriter
from avrolake.producer.mix import Mix
from avrolake.producer.progress import Progress, progress_for
from avrolake.producer.serializers import build_serializers
from avrolake.registry import SchemaRegistry, open_registry
from avrolake.schemas import SchemaVersion
from avrolake.settings import ConnectionSettings

log = logging.getLogger(__name__)

BROKER_CHECK_TIMEOUT_S = 5.0
CHECK_EVERY = 256  # events between clock, rate and progress checks (a power of two)
DEFAULT_COUNT = 1000
GC_THRESHOLD = 200_000  # allocations between young-generation collections in the loop


@dataclass(frozen=True)
class ProduceOptions:
    """What to produce. Neither ``count`` nor ``duration`` → ``DEFAULT_COUNT`` events."""

    count: int | None = None
    duration: float | None = None  # seconds
    rate: float | None = None  # events per second; None = as fast as possible
    seed: int | None = None  # None = a random seed, reported in the summary
    mix: Mix | None = None  # None = every version equally
    manifest: Path | None = None
    register: bool = True
    glue_compression: bool = False  # compressed bodies; only Glue's framing has them
    fast_serializer: bool = False  # see serializers._fast
    progress: bool | None = None  # None = a tqdm bar when stderr is a TTY, else log lines
    flush_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 0:
            raise ConfigError("--count must be zero or more")
        if self.duration is not None and not self.duration > 0:
            raise ConfigError("--duration must be positive")
        if self.rate is not None and not self.rate > 0:
            raise ConfigError("--rate must be positive")


@dataclass
class ProduceSummary:
    """Outcome of a run. ``sent`` counts records the broker acknowledged."""

    seed: int
    generated: int = 0
    sent: int = 0
    failed: int = 0
    per_version: dict[int, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    interrupted: bool = False
    first_error: str | None = None
    schema_refs: dict[int, str] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def lines(self) -> list[str]:
        versions = ", ".join(
            f"v{v}={n} (ref {self.schema_refs.get(v, '?')})"
            for v, n in sorted(self.per_version.items())
        )
        lines = [
            f"sent {self.sent}, failed {self.failed}, in {self.elapsed_s:.2f} s "
            f"= {self.events_per_s:,.0f} events/s (seed {self.seed})",
            f"per version: {versions or 'none'}",
        ]
        if self.interrupted:
            lines.append("stopped by a signal; everything acknowledged is listed above")
        if self.first_error:
            lines.append(f"first delivery error: {self.first_error}")
        return lines


class _Deliveries:
    """Delivery-report bookkeeping (runs inside ``poll``/``flush`` on the calling thread)."""

    def __init__(self, summary: ProduceSummary, manifest: ManifestWriter) -> None:
        self.summary = summary
        self.manifest = manifest
        self.failed_once = False

    def for_version(self, version: int) -> Any:
        acked = self.summary.per_version
        acked.setdefault(version, 0)

        def delivered(err: Any, msg: Any) -> None:
            if err is None:
                acked[version] += 1
            else:
                self._failure(err)

        return delivered

    def for_event(self, version: int, schema_ref: str, event: dict[str, Any]) -> Any:
        acked = self.summary.per_version

        def delivered(err: Any, msg: Any) -> None:
            if err is None:
                acked[version] += 1
                self.manifest.write(event, version, schema_ref, msg.partition(), msg.offset())
            else:
                self._failure(err)

        return delivered

    def _failure(self, err: Any) -> None:
        self.summary.failed += 1
        if self.summary.first_error is None:
            self.summary.first_error = str(err)
        self.failed_once = True


@contextmanager
def _relaxed_gc() -> Iterator[None]:
    """Run the cyclic garbage collector rarely: the loop allocates a few dicts per event and no
    cycles, and with the default threshold (700) collections cost ~20% of the loop's time."""
    gc.freeze()  # setup objects (schemas, clients) leave the generations the collector scans
    old = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (the loop then drains and flushes) instead of killing us."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, _frame: Any) -> None:
        log.info("received %s: stopping, then flushing", signal.Signals(signum).name)
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_produce(
    settings: ConnectionSettings,
    versions: list[SchemaVersion],
    options: ProduceOptions,
    *,
    registry: SchemaRegistry | None = None,
) -> ProduceSummary:
    """Produce ``options`` worth of events to ``settings.kafka.topic``; see the module contract."""
    kafka = settings.kafka
    by_number = {version.number: version for version in versions}
    mix = options.mix or Mix.uniform(by_number)
    mix.check_known(by_number)
    seed = options.seed if options.seed is not None else int.from_bytes(os.urandom(4), "big")
    summary = ProduceSummary(seed=seed)

    producer = Producer(producer_config(kafka, error_cb=_log_client_error))
    existing = check_broker(producer, kafka, BROKER_CHECK_TIMEOUT_S)
    ensure_topic(kafka, existing, BROKER_CHECK_TIMEOUT_S * 2)

    registry = registry or open_registry(settings.registry)
    # Every version, in order, even those the mix leaves out: registry version numbers then
    # match the files, and a compatibility rule sees the whole history.
    serializers = build_serializers(
        registry,
        kafka.topic,
        versions,
        register=options.register,
        compress=options.glue_compression,
        fast=options.fast_serializer,
    )
    summary.schema_refs = {n: s.schema_ref for n, s in serializers.items()}

    manifest = ManifestWriter(options.manifest)
    deliveries = _Deliveries(summary, manifest)
    stop = threading.Event()
    started = time.perf_counter()
    try:
        with _stop_on_signals(stop), _relaxed_gc(), progress_for(options) as progress:
            _loop(
                producer,
                kafka.topic,
                options,
                seed,
                mix,
                by_number,
                serializers,
                deliveries,
                stop,
                summary,
                progress,
            )
            progress.close_with(summary)
    finally:
        unflushed = producer.flush(options.flush_timeout)
        summary.failed += unflushed
        summary.sent = sum(summary.per_version.values())
        summary.elapsed_s = time.perf_counter() - started
        manifest.close()
    summary.interrupted = stop.is_set()
    return summary


def _loop(
    producer: Producer,
    topic: str,
    options: ProduceOptions,
    seed: int,
    mix: Mix,
    by_number: dict[int, SchemaVersion],
    serializers: dict[int, Any],
    deliveries: _Deliveries,
    stop: threading.Event,
    summary: ProduceSummary,
    progress: Progress,
) -> None:
    generator = EventGenerator(seed)
    draw = mix.draw(random.Random(seed ^ 0x5EED))  # its own stream: the mix can't shift events
    fields = {number: by_number[number].field_names for number in mix.weights}
    serialize = {number: s.serialize for number, s in serializers.items()}
    refs = {number: s.schema_ref for number, s in serializers.items()}
    callbacks = {number: deliveries.for_version(number) for number in mix.weights}
    with_manifest = deliveries.manifest.enabled
    produce, poll = producer.produce, producer.poll

    count = options.count if options.count is not None or options.duration else DEFAULT_COUNT
    rate = options.rate
    check_every = CHECK_EVERY if rate is None else max(1, min(CHECK_EVERY, int(rate / 50)))
    start = time.perf_counter()
    deadline = start + options.duration if options.duration else None
    generated = 0
    while not stop.is_set() and (count is None or generated < count):
        version = next(draw)
        event = generator.event(fields[version])
        value = serialize[version](event)
        callback = (
            deliveries.for_event(version, refs[version], event)
            if with_manifest
            else callbacks[version]
        )
        while True:
            try:
                produce(topic, value, event["productId"], on_delivery=callback)
                break
            except BufferError:  # local queue full: let deliveries drain it
                poll(0.05)
        generated += 1
        if generated % check_every == 0:
            poll(0)
            summary.generated = generated
            now = time.perf_counter()
            if deliveries.failed_once or (deadline is not None and now >= deadline):
                break
            if rate is not None:
                ahead = start + generated / rate - now
                if ahead > 0:
                    time.sleep(ahead)
            progress.update(generated, summary)
    summary.generated = generated


def _log_client_error(error: Any) -> None:
    log.debug("kafka client: %s", error)
