"""A private copy of the whole stack on spare ports, for tests, eval and benchmarks.

It never touches the ports or data of a running `make run`: everything lives in a
temporary folder that is removed afterwards.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import socket
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ops.services import Services, service_env


_PORT_FLOOR = 20000
"""Private stacks listen on ports from here up, outside the kernel's range for outgoing connections."""

_HANDED_OUT: set[int] = set()
_HANDED_OUT_LOCK = threading.Lock()


def free_port() -> int:
    """A loopback port nothing listens on, never handed out before by this process.

    Chosen outside the kernel's range for outgoing connections when it can be: a port taken
    from that range with ``bind(0)`` may be given to some process's outgoing connection
    before the service that was meant to listen on it binds it ("address already in use").
    """
    low, high = _ephemeral_range()
    pool = [port for port in range(_PORT_FLOOR, 65536) if not low <= port <= high]
    with _HANDED_OUT_LOCK:
        for _ in range(200):
            port = random.choice(pool) if pool else _kernel_port()
            if port not in _HANDED_OUT and _bindable(port):
                _HANDED_OUT.add(port)
                return port
    raise RuntimeError("no free loopback port found for a private stack")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _kernel_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextmanager
def private_stack(**overrides: str) -> Iterator[dict[str, str]]:
    """Start action server, Rasa and API on free ports; yield their environment."""
    with private_services(**overrides) as services:
        yield services.env


_ENVIRON = threading.Lock()
"""Held while a stack's settings are worked out in ``os.environ`` (stacks may start in threads)."""


@contextmanager
def private_services(*, rasa_replicas: int = 1, action_servers: int = 1,
                     **overrides: str) -> Iterator[Services]:
    """Like :func:`private_stack`, yielding the :class:`Services` (to stop and restart one).

    ``rasa_replicas`` and ``action_servers``: how many of each, each on a port of its own
    (several need the shared stores of a scaled set-up: ``ops.scale``).
    The API gets a random test key (``MESO_TEST_KEY``) unless one is given, so conversation
    tests against it learn what the assistant understood.
    """
    var = Path(tempfile.mkdtemp(prefix="meso-stack-"))
    try:
        services = _start(var, overrides, (rasa_replicas, action_servers))
        try:
            yield services
        finally:
            services.stop()
    finally:
        shutil.rmtree(var, ignore_errors=True)


_START_ATTEMPTS = 3


def _start(var: Path, overrides: dict[str, str], layout: tuple[int, int] = (1, 1)) -> Services:
    """Start the stack; if one of its ports was taken meanwhile, again on new ports."""
    attempt = 1
    while True:
        with _ENVIRON:
            env = _stack_env(var, overrides, layout)
        services = Services(env)
        try:
            services.start()
            return services
        except BaseException as exc:
            services.stop()
            if attempt >= _START_ATTEMPTS or not _port_taken(exc):
                raise
            # The failed attempt's logs are kept beside the next attempt's, not mixed into them.
            logs = var / "log"
            if logs.exists():
                logs.rename(var / f"log-attempt-{attempt}")
            attempt += 1


def _port_taken(exc: BaseException) -> bool:
    """Whether a service failed to start because its port was in use (its log's tail says so)."""
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("address already in use" in text or "errno 98" in text)


def _stack_env(var: Path, overrides: dict[str, str], layout: tuple[int, int] = (1, 1)) -> dict[str, str]:
    rasa_replicas, action_servers = layout
    saved = dict(os.environ)
    try:
        os.environ.update({
            "MESO_API_PORT": str(free_port()),
            "MESO_RASA_PORT": ",".join(str(free_port()) for _ in range(rasa_replicas)),
            "MESO_ACTION_PORT": ",".join(str(free_port()) for _ in range(action_servers)),
            "MESO_VAR_DIR": str(var),
            "MESO_DATABASE_URL": f"sqlite:///{var / 'meso.db'}",
            "MESO_TRACKER_URL": f"sqlite:///{var / 'rasa-tracker.db'}",
            "MESO_TEST_KEY": secrets.token_urlsafe(24),
            **overrides,
        })
        for key in ("MESO_RASA_URL", "MESO_ACTION_SERVER_URL", "MESO_ACTION_ENDPOINT", "MESO_RASA_TOKEN",
                    "MESO_ACTION_TOKEN", "MESO_RASA_REST_CHANNEL", "MESO_REDIS_PASSWORD",
                    "TICKET_LOCK_LIFETIME"):
            if key not in overrides:
                os.environ.pop(key, None)
        return service_env()
    finally:
        os.environ.clear()
        os.environ.update(saved)
