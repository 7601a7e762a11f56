"""Private PostgreSQL and Redis servers on spare loopback ports, for the scaled set-up's tests.

Each lives in a temporary folder (its data, its configuration, its log) that is removed when
it stops; nothing touches a PostgreSQL or Redis the machine already runs. The servers are
Debian's (``postgresql``, ``redis-server``; ``make datastores`` installs them). Both require
a password, generated for each start and kept only in files readable by their owner, never
on a command line (``ps`` shows those to every user).

PostgreSQL refuses to run as root: as root, its commands run as the ``postgres`` user that
Debian's package creates (``runuser``), and the folder is given to that user.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ops.services import write_private
from ops.stack import free_port

PG_BIN_ENV = "MESO_PG_BIN"
"""Where PostgreSQL's server programs are (``initdb``, ``pg_ctl``), when not Debian's."""
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
"""Debian's place for them, one folder per major version (the newest is used)."""
PG_USER = "postgres"
"""Who runs PostgreSQL when this process is root (Debian's package creates the user)."""
DATABASE = "meso"
"""The API's database."""
TRACKER_DATABASE = "meso_tracker"
"""Rasa's tracker store (its own database, so neither side's tables meet the other's)."""
USER = "meso"
START_TIMEOUT_S = 30.0


class DatastoreUnavailable(RuntimeError):
    """A server's programs are missing or it did not start."""


@dataclass(frozen=True)
class Server:
    """A running private server: where it listens and how to reach it."""

    url: str
    """Connection URL with its password (a secret: never log it)."""
    port: int
    folder: Path
    pid_file: Path | None = None
    """Where the server writes its process id (its first line)."""
    _stop: Callable[[], None] = field(default=lambda: None, repr=False, compare=False)
    _start: Callable[[], None] = field(default=lambda: None, repr=False, compare=False)

    @contextmanager
    def down(self) -> Iterator[None]:
        """The server stopped (every client's connection cut, as in a crash), then started
        again on the same port with the same data and password (tests of an outage)."""
        self._stop()
        try:
            yield
        finally:
            self._start()

    def database(self, name: str, driver: str = "postgresql+asyncpg") -> str:
        """The URL of database ``name`` on this PostgreSQL, for ``driver`` (Rasa's
        ``postgresql``, psycopg2; the API's ``postgresql+asyncpg``)."""
        _scheme, rest = self.url.split("://", 1)
        address, _ = rest.rsplit("/", 1)
        return f"{driver}://{address}/{name}"


def postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs: ``MESO_PG_BIN`` or Debian's newest."""
    configured = os.environ.get(PG_BIN_ENV)
    if configured:
        candidates = [Path(configured)]
    else:
        candidates = sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")),
                            key=lambda p: _major(p.parent.name), reverse=True)
    for folder in candidates:
        if (folder / "pg_ctl").is_file() and (folder / "initdb").is_file():
            return folder
    raise DatastoreUnavailable(
        f"PostgreSQL's server programs were not found ({PG_BIN_GLOB} or {PG_BIN_ENV}): run `make datastores`")


def redis_server() -> Path:
    """Debian's ``redis-server``."""
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
    if not found:
        raise DatastoreUnavailable("redis-server was not found: run `make datastores`")
    return Path(found)


def _major(name: str) -> int:
    return int(name) if name.isdigit() else -1


def _as_owner(command: list[str]) -> list[str]:
    """``command`` run as :data:`PG_USER` when this process is root."""
    return ["runuser", "-u", PG_USER, "--", *command] if os.geteuid() == 0 else command


def listening(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_until(check: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    raise DatastoreUnavailable(f"{what} did not start within {START_TIMEOUT_S:.0f} s:\n{tail}")


def _private_folder(parent: Path | None, prefix: str) -> Path:
    if parent is None:
        return Path(tempfile.mkdtemp(prefix=prefix))
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


@contextmanager
def private_postgres(parent: Path | None = None) -> Iterator[Server]:
    """A new PostgreSQL cluster with user ``meso`` and databases ``meso`` (the API's) and
    ``meso_tracker`` (Rasa's), a password required over TCP, on 127.0.0.1 only, its Unix
    socket only in the private folder (under ``parent``, else the system's temporary
    folder), stopped and removed afterwards. Yields the API database's asyncpg URL.
    ``fsync`` is off: a test server's data need not survive a power cut."""
    programs = postgres_bin()
    folder = _private_folder(parent, "meso-pg-")
    data, log = folder / "data", folder / "server.log"
    password = secrets.token_urlsafe(24)
    port = free_port()
    try:
        write_private(folder / "password", password + "\n")
        if os.geteuid() == 0:
            shutil.chown(folder, PG_USER)
            shutil.chown(folder / "password", PG_USER)
        subprocess.run(
            _as_owner([str(programs / "initdb"), "-D", str(data), "-U", USER,
                       "--auth-host=scram-sha-256", "--auth-local=trust",
                       f"--pwfile={folder / 'password'}", "-E", "UTF8", "--no-sync"]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        (folder / "password").unlink()
        settings = (f"listen_addresses = '127.0.0.1'\nport = {port}\n"
                    f"unix_socket_directories = '{folder}'\nfsync = off\n"
                    "max_connections = 250\nlog_min_messages = warning\n")
        with open(data / "postgresql.auto.conf", "a") as conf:
            conf.write(settings)

        def start() -> None:
            subprocess.run(_as_owner([str(programs / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                                      "-t", str(int(START_TIMEOUT_S)), "start"]),
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=START_TIMEOUT_S + 10)
            _wait_until(lambda: listening(port), "PostgreSQL", log)

        def stop() -> None:
            subprocess.run(_as_owner([str(programs / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

        start()
        try:
            _create_database(programs, folder, port)
            yield Server(f"postgresql+asyncpg://{USER}:{password}@127.0.0.1:{port}/{DATABASE}", port, folder,
                         data / "postmaster.pid", stop, start)
        finally:
            stop()
    except subprocess.CalledProcessError as error:
        raise DatastoreUnavailable(f"PostgreSQL failed: {(error.stderr or b'').decode(errors='replace')[-2000:]}") \
            from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _create_database(programs: Path, folder: Path, port: int) -> None:
    """``CREATE DATABASE`` of both over the server's own Unix socket, which is in the private
    folder (mode 0700) and trusted; over TCP every connection must give the password."""
    for name in (DATABASE, TRACKER_DATABASE):
        subprocess.run(_as_owner([str(programs / "psql"), "-h", str(folder), "-p", str(port), "-U", USER,
                                  "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", f"CREATE DATABASE {name}"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)


@contextmanager
def private_redis(parent: Path | None = None) -> Iterator[Server]:
    """A Redis server with a password, on 127.0.0.1 only, keeping nothing on disk, its folder
    under ``parent`` (else the system's temporary folder); stopped and removed afterwards.
    Yields its ``redis://`` URL."""
    program = redis_server()
    folder = _private_folder(parent, "meso-redis-")
    log = folder / "server.log"
    password = secrets.token_urlsafe(24)
    port = free_port()
    config = write_private(folder / "redis.conf", (
        f"bind 127.0.0.1\nport {port}\nrequirepass {password}\ndir {folder}\n"
        f"logfile {log}\npidfile {folder / 'redis.pid'}\nsave \"\"\nappendonly no\n"
        "protected-mode yes\n"))
    running: list[subprocess.Popen] = []

    def start() -> None:
        process = subprocess.Popen([str(program), str(config)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        running.append(process)
        _wait_until(lambda: process.poll() is None and listening(port), "Redis", log)

    def stop() -> None:
        while running:
            process = running.pop()
            process.kill()
            process.wait()

    try:
        start()
        yield Server(f"redis://:{password}@127.0.0.1:{port}/0", port, folder, folder / "redis.pid",
                     stop, start)
    finally:
        stop()
        shutil.rmtree(folder, ignore_errors=True)
