"""A private copy of the whole stack on spare ports, for tests, eval and benchmarks.

It never touches the ports or data of a running `make run`: everything lives in a
temporary folder that is removed afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ops.services import Services, service_env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_stack(**overrides: str) -> Iterator[dict[str, str]]:
    """Start action server, Rasa and API on free ports; yield their environment."""
    with private_services(**overrides) as services:
        yield services.env


_ENVIRON = threading.Lock()
"""Held while a stack's settings are worked out in ``os.environ`` (stacks may start in threads)."""


@contextmanager
def private_services(**overrides: str) -> Iterator[Services]:
    """Like :func:`private_stack`, yielding the :class:`Services` (to stop and restart one).

    The API gets a random test key (``MESO_TEST_KEY``) unless one is given, so conversation
    tests against it learn what the assistant understood.
    """
    var = Path(tempfile.mkdtemp(prefix="meso-stack-"))
    with _ENVIRON:
        env = _stack_env(var, overrides)
    services = Services(env)
    try:
        services.start()
        yield services
    finally:
        services.stop()
        shutil.rmtree(var, ignore_errors=True)


def _stack_env(var: Path, overrides: dict[str, str]) -> dict[str, str]:
    saved = dict(os.environ)
    try:
        os.environ.update({
            "MESO_API_PORT": str(free_port()),
            "MESO_RASA_PORT": str(free_port()),
            "MESO_ACTION_PORT": str(free_port()),
            "MESO_VAR_DIR": str(var),
            "MESO_DATABASE_URL": f"sqlite:///{var / 'meso.db'}",
            "MESO_TRACKER_URL": f"sqlite:///{var / 'rasa-tracker.db'}",
            "MESO_TEST_KEY": secrets.token_urlsafe(24),
            **overrides,
        })
        for key in ("MESO_RASA_URL", "MESO_ACTION_SERVER_URL", "MESO_ACTION_ENDPOINT", "MESO_RASA_TOKEN",
                    "MESO_ACTION_TOKEN", "MESO_RASA_REST_CHANNEL"):
            if key not in overrides:
                os.environ.pop(key, None)
        return service_env()
    finally:
        os.environ.clear()
        os.environ.update(saved)
