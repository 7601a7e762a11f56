"""The scaled set-up on one machine: PostgreSQL and Redis, two action servers, two Rasa
replicas and an API of two workers (``make run-scale``, ``python -m ops.scale``).

PostgreSQL holds the API's database and Rasa's tracker store; Redis holds Rasa's lock store
and the API's shared rate limits. The PostgreSQL at ``MESO_DATABASE_URL`` and the Redis at
``MESO_REDIS_URL`` are used when set and answering (Rasa's tracker store then in
``MESO_TRACKER_URL``, which must be set too); otherwise private ones start under
``var/scale/`` on spare ports (``ops.datastores``; ``make run-scale`` installs Debian's
servers first when missing), and are stopped and removed with the rest: their data does
not outlive the run.

:func:`scaled_services` is the same set-up for the integration tests and ``make bench
--scale``, on spare ports, in a temporary folder.
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from ops.datastores import TRACKER_DATABASE, Server, listening, private_postgres, private_redis
from ops.services import ROOT, Services, run_until_stopped, service_env
from ops.stack import private_services

RASA_REPLICAS = 2
ACTION_SERVERS = 2
API_WORKERS = 2


def datastore_env(postgres: Server, redis: Server) -> dict[str, str]:
    """The settings that point every process at these PostgreSQL and Redis servers."""
    return {
        "MESO_DATABASE_URL": postgres.url,
        # Rasa's store through psycopg2 (Rasa's own driver); the API reads it with asyncpg.
        "MESO_TRACKER_URL": postgres.database(TRACKER_DATABASE, driver="postgresql"),
        "MESO_REDIS_URL": redis.url,
    }


@dataclass
class ScaledStack:
    """A running scaled set-up: its processes, and the PostgreSQL and Redis they share."""

    services: Services
    postgres: Server
    redis: Server


@contextmanager
def scaled_services(**overrides: str) -> Iterator[ScaledStack]:
    """The scaled set-up on spare ports with private PostgreSQL and Redis, all stopped and
    removed afterwards."""
    with private_postgres() as postgres, private_redis() as redis:
        with private_services(
            rasa_replicas=RASA_REPLICAS, action_servers=ACTION_SERVERS,
            MESO_API_WORKERS=str(API_WORKERS), **datastore_env(postgres, redis), **overrides,
        ) as services:
            yield ScaledStack(services, postgres, redis)


def _answers(url: str) -> bool:
    """Whether something listens at the host and port of ``url`` (on this machine)."""
    parts = urlsplit(url)
    if parts.hostname not in {"127.0.0.1", "localhost"}:
        return True  # another host: its client will say if it does not answer
    return parts.port is not None and listening(parts.port)


def _prepare(stack: ExitStack) -> Services:
    """The datastores (given, or private ones entered into ``stack``), then the processes."""
    env = os.environ
    given = env.get("MESO_DATABASE_URL", "").startswith("postgres") and env.get("MESO_REDIS_URL")
    if given and _answers(env["MESO_DATABASE_URL"]) and _answers(env["MESO_REDIS_URL"]):
        if not env.get("MESO_TRACKER_URL", "").startswith("postgres"):
            raise RuntimeError("set MESO_TRACKER_URL to Rasa's PostgreSQL database too")
        print("Using the PostgreSQL and Redis of MESO_DATABASE_URL and MESO_REDIS_URL…", flush=True)
    else:
        print("Starting a private PostgreSQL and Redis under var/scale/…", flush=True)
        scale_dir = Path(env.get("MESO_VAR_DIR", str(ROOT / "var"))) / "scale"
        postgres = stack.enter_context(private_postgres(scale_dir))
        redis = stack.enter_context(private_redis(scale_dir))
        env.update(datastore_env(postgres, redis))
    env.setdefault("MESO_RASA_PORT", "5005,5006")
    env.setdefault("MESO_ACTION_PORT", "5055,5056")
    env.setdefault("MESO_API_WORKERS", str(API_WORKERS))
    return Services(service_env())


def main() -> int:
    return run_until_stopped(
        _prepare,
        f"Starting {ACTION_SERVERS} action servers, {RASA_REPLICAS} Rasa replicas and the API "
        f"({API_WORKERS} workers; logs in var/log/)…",
        "everything",
    )


if __name__ == "__main__":
    sys.exit(main())
