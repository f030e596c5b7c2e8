"""``LocalStack``: Kafka, Apicurio and moto started, checked and stopped as one unit.

Everything a stack owns lives under one state directory (``AVROLAKE_STATE_DIR``, default
``cache_dir()/state``, never the repository)::

    .lock              held by up/down, so concurrent commands take turns
    run/<name>.pid     PidRecord of each started service
    run/<name>.shared  present while the service belongs to test sessions (see ``lease``)
    logs/<name>.log    its stdout and stderr (truncated at each start)
    <name>/            its config and data files

Two stacks with different state directories and ports run side by side without noticing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from avrolake.errors import ConfigError, LocalStackError
from avrolake_dev.local import apicurio, kafka, moto
from avrolake_dev.local.jvm import JAVA_FIX
from avrolake_dev.local.lock import file_lock
from avrolake_dev.local.net import require_free_ports
from avrolake_dev.local.proc import PidRecord, is_alive, require_tool, spawn, stop
from avrolake_dev.local.service import Service
from avrolake_dev.polling import poll
from avrolake_dev.settings import LocalPorts, local_state_dir

_LOCK_WAIT = 600.0  # a cold `up` resolves jars first: let a second command wait that long
_REPORT_EVERY = 5.0

log = logging.getLogger(__name__)


def state_dir() -> Path:
    """``$AVROLAKE_STATE_DIR``, else ``cache_dir()/state``."""
    return local_state_dir()


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    pid: int | None  # None when stopped
    health: str  # "healthy", "unhealthy" (runs, fails its probe) or "stopped"


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` non-blank lines of a text file (none if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    kept = [line for line in text.splitlines() if line.strip()]
    return kept[-lines:] if lines > 0 else []


class LocalStack:
    """The embedded stack on ``ports`` with its files under ``state``.

    ``up`` and ``down`` are idempotent and serialised through a lock file; ``status`` only reads.
    """

    def __init__(self, ports: LocalPorts | None = None, state: Path | None = None) -> None:
        self.ports = ports or LocalPorts()
        self.state_dir = (state or state_dir()).absolute()
        home = self.state_dir
        self.services: tuple[Service, ...] = (
            kafka.service(self.ports, home / "kafka"),
            apicurio.service(self.ports, home / "apicurio"),
            moto.service(self.ports, home / "moto"),
        )

    @property
    def bootstrap_servers(self) -> str:
        return self.ports.bootstrap_servers

    @property
    def confluent_registry_url(self) -> str:
        return self.ports.confluent_registry_url

    @property
    def glue_endpoint_url(self) -> str:
        return self.ports.glue_endpoint_url

    @property
    def lock_path(self) -> Path:
        return self.state_dir / ".lock"

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        names = ", ".join(s.name for s in self.services)
        raise ConfigError(f"unknown service {name!r}: use one of {names}")

    def pid_path(self, name: str) -> Path:
        return self.state_dir / "run" / f"{name}.pid"

    def shared_mark(self, name: str) -> Path:
        return self.state_dir / "run" / f"{name}.shared"

    def log_path(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def running(self, name: str) -> PidRecord | None:
        """The pid record of ``name`` if its process is alive, else ``None``."""
        record = PidRecord.read(self.pid_path(name))
        return record if record is not None and is_alive(record) else None

    @contextmanager
    def locked(self) -> Iterator[None]:
        with file_lock(self.lock_path, timeout=_LOCK_WAIT, what=f"local stack {self.state_dir}"):
            yield

    def up(self, *, timeout: float | None = None, claim: bool = True) -> list[str]:
        """Start every service that is not running and wait until all answer their probe.

        A stopped or crashed Kafka restarts on its existing topics and records, unless the
        registries start empty with it (see ``_discard_stale_data``).

        Returns the names started now (empty: everything was already up). Fails fast, before
        starting anything, when ``java`` is missing or a port is taken. If a service fails to get
        ready within its bound (or ``timeout``), the services started by this call are stopped
        and ``LocalStackError`` names the failure and the log to read. ``claim`` (the default)
        makes every service the caller's: test sessions sharing the stack will not stop them.
        """
        with self.locked():
            if claim:
                for service in self.services:
                    self.shared_mark(service.name).unlink(missing_ok=True)
            pending = []
            for service in self.services:
                record = self.running(service.name)
                if record is None:
                    pending.append(service)
                elif record.address != service.address:
                    raise LocalStackError(
                        f"{service.name} already runs at {record.address}, not {service.address}:"
                        " run `avrolake local down` first, or unset the AVROLAKE_*_PORT variables"
                    )
                else:
                    log.info("%s already running at %s", service.name, record.address)
            if pending:
                self._check_startable(pending)
                self._discard_stale_data(pending)
            commands = {s.name: s.command() for s in pending}  # may resolve jars with Maven
            started: list[tuple[Service, PidRecord]] = []
            try:
                # slowest first, so the boots overlap
                for service in sorted(pending, key=lambda s: -s.start_timeout):
                    started.append((service, self._start(service, commands[service.name])))
                waiting = [(s, self.running(s.name)) for s in self.services]
                self._wait_ready([(s, r) for s, r in waiting if r is not None], timeout)
            except BaseException:
                for service, record in started:
                    stop(record, grace=5.0)
                    self.pid_path(service.name).unlink(missing_ok=True)
                raise
            return [service.name for service, _ in started]

    def down(self, names: Iterable[str] | None = None, *, grace: float = 15.0) -> list[str]:
        """Stop the named services (default: all) by process group; return those that ran.

        SIGTERM first, SIGKILL after ``grace`` seconds; returns only once they are gone.
        """
        chosen = [self.service(n) for n in names] if names is not None else list(self.services)
        with self.locked():
            records = [(s, PidRecord.read(self.pid_path(s.name))) for s in chosen]
            live = [(s, r) for s, r in records if r is not None]

            def stop_one(service: Service, record: PidRecord) -> str | None:
                if not stop(record, grace=grace):
                    return None  # a stale pid file: the process had already gone
                log.info("stopped %s (pid %d)", service.name, record.pid)
                return service.name

            with ThreadPoolExecutor(max_workers=max(1, len(live))) as pool:  # JVMs stop in seconds
                stopped = list(pool.map(lambda item: stop_one(*item), live))
            for service in chosen:
                self.pid_path(service.name).unlink(missing_ok=True)
                self.shared_mark(service.name).unlink(missing_ok=True)
            return [name for name in stopped if name is not None]

    def status(self) -> list[ServiceStatus]:
        """Each service with its pid and the result of one probe."""
        result = []
        for service in self.services:
            record = self.running(service.name)
            if record is None:
                result.append(ServiceStatus(service.name, service.address, None, "stopped"))
            else:
                health = "healthy" if service.probe() else "unhealthy"
                result.append(ServiceStatus(service.name, service.address, record.pid, health))
        return result

    def _check_startable(self, pending: list[Service]) -> None:
        if any(s.needs_java for s in pending):
            require_tool("java", JAVA_FIX)
        owners: dict[int, str] = {}
        for service in self.services:
            for env, port in service.ports.items():
                if port in owners:
                    raise ConfigError(
                        f"{owners[port]} and {env} are both {port}: give each service its own port"
                    )
                owners[port] = env
        for service in pending:
            require_free_ports(service.name, service.ports)

    def _discard_stale_data(self, pending: list[Service]) -> None:
        """A service that keeps data on disk (Kafka) restarts on it, unless the services that
        keep their state in memory (the registries) start empty with it: then its records would
        name schema ids that no registry knows, so they go too. That is also what keeps the
        state directory from growing across test sessions, each of which starts the stack."""
        fresh = [s.name for s in pending if s.state_in_memory]
        if not fresh:
            return
        for service in self.services:
            if service.state_in_memory:
                continue
            if service in pending:
                log.info("discarding %s's data: it would name schema ids unknown to the "
                         "restarted %s", service.name, ", ".join(fresh))  # fmt: skip
                service.discard_data()
            else:
                log.warning(
                    "%s keeps running on its data, but %s restarted empty: records written before "
                    "may name unknown schema ids (`avrolake local down`, then `up`, starts afresh)",
                    service.name, ", ".join(fresh),
                )  # fmt: skip

    def _start(self, service: Service, command: list[str]) -> PidRecord:
        service.prepare()
        log_path = self.log_path(service.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_bytes(b"")
        record = spawn(command, log_path=log_path, cwd=service.home, address=service.address)
        record.write(self.pid_path(service.name))
        log.info("started %s (pid %d), log: %s", service.name, record.pid, log_path)
        return record

    def _wait_ready(self, items: list[tuple[Service, PidRecord]], timeout: float | None) -> None:
        begin = time.monotonic()
        next_report = [begin + _REPORT_EVERY]
        pending = {s.name: (s, r) for s, r in items}

        def all_ready() -> bool:
            for name, (service, record) in list(pending.items()):
                elapsed = time.monotonic() - begin
                if service.probe():
                    log.info("%s ready at %s (%.1fs)", name, service.address, elapsed)
                    del pending[name]
                elif not is_alive(record):
                    raise LocalStackError(
                        f"{name} exited while starting: {self._last_line(name)} "
                        f"(log: {self.log_path(name)})"
                    )
                elif elapsed > (timeout if timeout is not None else service.start_timeout):
                    raise LocalStackError(
                        f"{name} not ready after {elapsed:.0f}s: {self._last_line(name)} "
                        f"(log: {self.log_path(name)})"
                    )
            now = time.monotonic()
            if pending and now >= next_report[0]:
                log.info("waiting for %s (%.0fs)", ", ".join(pending), now - begin)
                next_report[0] = now + _REPORT_EVERY
            return not pending

        # each service's own bound raises above; this one only backs them up
        bound = max([timeout or 0.0, *(s.start_timeout for s, _ in items)]) + 30.0
        if not poll(all_ready, timeout=bound, interval=0.25):
            raise LocalStackError(f"{', '.join(pending)} not ready after {bound:.0f}s")

    def _last_line(self, name: str) -> str:
        last = tail(self.log_path(name), 1)
        return last[0].strip()[:200] if last else "no output"
