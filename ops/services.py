"""Start the action server, the Rasa server and the API; stop all three on Ctrl-C.

Run by ``make run`` (``python -m ops.services``) after set-up, training and the knowledge
build; the integration tests and the benchmark use :class:`Services` too. Standard library
only, so it runs under either runtime. Each process keeps its own log in
``var/log/``; this prints one line with the URL when everything answers.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
BOT_VENV = Path(os.environ.get("MESO_BOT_VENV", ROOT / ".venv-bot"))
API_VENV = Path(os.environ.get("MESO_API_VENV", ROOT / ".venv-api"))
HOST = "127.0.0.1"
START_TIMEOUT = float(os.environ.get("MESO_START_TIMEOUT", "240"))
RASA_LOCK_MARGIN_S = 2
"""How much longer than the API waits for Rasa (``MESO_RASA_TIMEOUT``, 4 s by default) a Rasa
replica's conversation lock (its Redis lock store's ticket) lasts at most."""


def rasa_lock_lifetime(env: dict[str, str]) -> int:
    """Whole seconds a ticket of Rasa's lock store lasts: longer than any turn the API still
    waits for (so a turn the API gave up on keeps the next one waiting at Rasa until it ends),
    short enough that a replica that died holding one delays that conversation on another
    replica by seconds, not Rasa's default minute."""
    return math.ceil(float(env.get("MESO_RASA_TIMEOUT") or "4")) + RASA_LOCK_MARGIN_S
REDIS_LOCK_DB = 1
"""The Redis database of Rasa's lock store (the API's rate limits use the URL's own)."""


def ports(value: str) -> list[str]:
    """The ports of a setting that lists one per process (``MESO_RASA_PORT``), in order."""
    return [port.strip() for port in value.split(",") if port.strip()]


def service_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Settings shared by the three processes (anything already set, in ``environ`` or else
    this process's environment, wins)."""
    env = dict(os.environ if environ is None else environ)
    var = Path(env.setdefault("MESO_VAR_DIR", str(ROOT / "var")))
    api_port = env.setdefault("MESO_API_PORT", "8000")
    # One port per Rasa replica and per action server (comma-separated: a scaled set-up).
    rasa_ports = ports(env.setdefault("MESO_RASA_PORT", "5005"))
    action_ports = ports(env.setdefault("MESO_ACTION_PORT", "5055"))
    # Fresh random secrets per start unless the operator fixes them. They reach the three
    # processes through the environment only, never their command lines (visible in `ps`):
    # Rasa's token (its HTTP API and the meso channel, which the API calls) and the secret
    # Rasa sends the action server (the endpoints file's action_endpoint headers).
    env.setdefault("MESO_RASA_TOKEN", secrets.token_urlsafe(32))
    env.setdefault("MESO_ACTION_TOKEN", secrets.token_urlsafe(32))
    env.setdefault("MESO_LINK_SECRET", secrets.token_urlsafe(32))  # signs summary links
    env.setdefault("MESO_RASA_URL", ",".join(f"http://{HOST}:{port}" for port in rasa_ports))
    env.setdefault("MESO_ACTION_SERVER_URL", ",".join(f"http://{HOST}:{port}" for port in action_ports))
    env.setdefault("MESO_ACTION_ENDPOINT",
                   ",".join(f"http://{HOST}:{port}/webhook" for port in action_ports))
    env.setdefault("MESO_TRACKER_URL", f"sqlite:///{var / 'rasa-tracker.db'}")
    redis = env.get("MESO_REDIS_URL", "")
    if redis:
        # Rasa's lock store reads its password from here (the endpoints file names the
        # variable only); its tickets last rasa_lock_lifetime, not Rasa's minute.
        env["MESO_REDIS_PASSWORD"] = urllib.parse.urlsplit(redis).password or ""
        env.setdefault("TICKET_LOCK_LIFETIME", str(rasa_lock_lifetime(env)))
    # This stack's own file (write_endpoints), unless the operator names one, e.g.
    # endpoints.scale.yml, whose ${...} Rasa fills from this environment.
    env.setdefault("MESO_RASA_ENDPOINTS", str(var / "endpoints.yml"))
    env.setdefault("MESO_RASA_MODEL", str(ROOT / "models" / "meso.tar.gz"))
    env.update({
        "SANIC_HOST": HOST,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "RASA_TELEMETRY_ENABLED": "false",
        "PYTHONWARNINGS": "ignore",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        # One BLAS thread per process: requests run concurrently, and two cores are shared.
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    })
    env["MESO_API_URL"] = f"http://{HOST}:{api_port}"
    return env


REST_CHANNEL_ENV = "MESO_RASA_REST_CHANNEL"
"""Set to ``true`` to open Rasa's own ``rest`` channel too (debugging only: it checks no
caller, takes any sender id and reads ``/intent{...}`` as a command). Off by default."""


def rest_channel_on(env: dict[str, str]) -> bool:
    return env.get(REST_CHANNEL_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


NLG = "bot.dialogue.nlg.ClinicResponses"
"""Rasa's response generator: the opening and red-flag replies without the action server."""


def write_endpoints(env: dict[str, str]) -> Path:
    """Write this stack's Rasa endpoints file, ``endpoints.yml`` in ``MESO_VAR_DIR``.

    The root's endpoints.yml is for a developer's ``rasa shell`` (action server on 5055,
    conversations in memory); a stack has its own action server port and SQL tracker store.
    Only its owner can read it: the tracker URL may hold a database password. The action
    server's secret is not in it: Rasa fills ``${MESO_ACTION_TOKEN}`` from its environment.
    """
    path = Path(env["MESO_VAR_DIR"]) / "endpoints.yml"
    text = (
        "# Written by ops/services.py at each start of this stack; edits are overwritten.\n"
        "action_endpoint:\n"
        # Each Rasa process's own list of the action servers, its own first (see
        # Services.process_env; bot.action_servers asks the next when one fails).
        "  url: ${MESO_ACTION_ENDPOINT}\n"
        "  headers:\n"
        # Unquoted: Rasa expands ${...} in plain YAML scalars only.
        "    Authorization: Bearer ${MESO_ACTION_TOKEN}\n"
        f"nlg:\n  type: {NLG}\n"
        "tracker_store:\n"
        "  type: bot.stores.tracker_store.MesoTrackerStore\n"
        f"  url: {json.dumps(env['MESO_TRACKER_URL'])}\n"
        "  db: meso_tracker\n"
    )
    redis = env.get("MESO_REDIS_URL", "")
    if redis:
        parts = urllib.parse.urlsplit(redis)
        text += (
            "lock_store:\n"
            "  type: redis\n"
            f"  url: {json.dumps(parts.hostname or HOST)}\n"
            f"  port: {parts.port or 6379}\n"
            f"  db: {REDIS_LOCK_DB}\n"
            "  password: ${MESO_REDIS_PASSWORD}\n"
            "  key_prefix: meso\n"
        )
    return write_private(path, text)


def write_credentials(env: dict[str, str]) -> Path:
    """Write this stack's Rasa channels, ``credentials.yml`` in ``MESO_VAR_DIR``.

    The meso channel (the API's; it checks Rasa's token from the environment), and Rasa's
    ``rest`` channel only when ``MESO_RASA_REST_CHANNEL`` is true.
    """
    text = (
        "# Written by ops/services.py at each start of this stack; edits are overwritten.\n"
        "bot.channels.meso.MesoInput:\n"
    )
    if rest_channel_on(env):
        text += f"# {REST_CHANNEL_ENV} is on: Rasa's unauthenticated rest channel is open.\nrest:\n"
    return write_private(Path(env["MESO_VAR_DIR"]) / "credentials.yml", text)


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return path


BATCH_SCHEDULED = frozenset({"api"})
"""Processes started under Linux's ``SCHED_BATCH`` policy (their threads inherit it).

A batch process takes its fair share of the cores but does not cut in when it wakes up.
The API wakes many times a turn (a patient's request, each database statement's thread,
Rasa's reply) and, sharing two cores with them, kept cutting in on Rasa's event loop, the
stack's bottleneck: Rasa waited for a core about half as long again as without the API in
front of it. As batch, in one stack with the policy switched between rounds (four rounds
each, 50 patients x 7 turns), the API lost a median 7% of the throughput of Rasa's own
webhook against 15% as a normal process. A niceness of 10 had made no difference (a waking
process of any niceness may cut in). Only ever made less eager, so no privilege is needed.
"""


def schedule_as_batch(pid: int) -> bool:
    """Put process ``pid`` under ``SCHED_BATCH`` (Linux); False where that is not possible."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(pid, os.SCHED_BATCH, os.sched_param(0))
    except OSError:
        return False
    return True


def commands(env: dict[str, str]) -> list[tuple[str, list[str], str]]:
    """(name, argv, readiness URL) for each process, in start order: the action servers,
    the Rasa replicas (one each unless ``MESO_ACTION_PORT`` / ``MESO_RASA_PORT`` list more;
    the first of each is named as in a single set-up), then the API (``MESO_API_WORKERS``
    worker processes behind its one port).

    No argv holds a secret (``/proc/<pid>/cmdline`` is readable by every user): the
    launchers ``bot.action_server`` and ``bot.rasa_server`` read theirs from the environment.
    """
    bot, api = BOT_VENV / "bin", API_VENV / "bin"
    listed: list[tuple[str, list[str], str]] = []
    for number, port in enumerate(ports(env["MESO_ACTION_PORT"]), start=1):
        listed.append((_numbered("action server", number),
                       [str(bot / "python"), "-m", "bot.action_server", "--actions", "actions",
                        "--port", port],
                       f"http://{HOST}:{port}/health"))
    for number, port in enumerate(ports(env["MESO_RASA_PORT"]), start=1):
        listed.append((_numbered("rasa", number),
                       [str(bot / "python"), "-m", "bot.rasa_server", "--model", env["MESO_RASA_MODEL"],
                        "--endpoints", env["MESO_RASA_ENDPOINTS"],
                        "--credentials", str(Path(env["MESO_VAR_DIR"]) / "credentials.yml"),
                        "--interface", HOST, "--port", port, "--enable-api"],
                       f"http://{HOST}:{port}/status?token={env['MESO_RASA_TOKEN']}"))
    workers = int(env.get("MESO_API_WORKERS", "1") or "1")
    # api.serve: uvicorn with the options every set-up needs (no proxy headers, its own
    # HTTP protocol, the shared log format).
    listed.append(("api", [str(api / "python"), "-m", "api.serve", "--host", HOST,
                           "--port", env["MESO_API_PORT"],
                           *(["--workers", str(workers)] if workers > 1 else [])],
                   f"{env['MESO_API_URL']}/readyz"))
    return listed


def _numbered(kind: str, number: int) -> str:
    return kind if number == 1 else f"{kind} {number}"


def process_env(env: dict[str, str], name: str) -> dict[str, str]:
    """The environment of process ``name``: the stack's, with what is its own.

    Rasa replica *n* lists the action servers starting from the *n*-th, so each replica
    calls its own first and the others only when it fails. The API never migrates: the
    migrations run once, before it starts (:meth:`Services.start_one`).
    """
    if name.startswith("rasa"):
        endpoints = env["MESO_ACTION_ENDPOINT"].split(",")
        number = int(name.split()[1]) if " " in name else 1
        shift = (number - 1) % len(endpoints)
        return {**env, "MESO_ACTION_ENDPOINT": ",".join(endpoints[shift:] + endpoints[:shift])}
    if name == "api":
        return {**env, "MESO_MIGRATE_ON_START": "false"}
    return env


def migrate_command() -> list[str]:
    """The migrations as their own step (``make migrate`` runs the same)."""
    return [str(API_VENV / "bin" / "python"), "-m", "api.cli", "migrate"]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: str, lines: int = 25) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _terminate_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it after 15 s; return once it has exited."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Services:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self) -> None:
        for index in range(len(commands(self.env))):
            self.start_one(index)

    def index_of(self, name: str) -> int:
        """The index of process ``name`` (as :func:`commands` names it)."""
        return [listed[0] for listed in commands(self.env)].index(name)

    def start_one(self, index: int) -> None:
        """Start process ``index`` (in a single set-up 0 action server, 1 Rasa, 2 API) and wait
        until it answers.

        Restarting one that was stopped with :meth:`stop_one` reuses its port and log file.
        """
        logs = Path(self.env["MESO_VAR_DIR"]) / "log"
        logs.mkdir(parents=True, exist_ok=True)
        name, argv, ready_url = commands(self.env)[index]
        if name.startswith("rasa"):
            write_endpoints(self.env)
            write_credentials(self.env)
        log = open(logs / f"{name.replace(' ', '-')}.log", "ab")
        env = process_env(self.env, name)
        if name == "api":
            # The migrations run once, here, before the API starts; the API never runs them
            # (with several workers each would, at the same moment).
            migrated = subprocess.run(migrate_command(), cwd=ROOT, env=self.env, stdout=log,
                                      stderr=subprocess.STDOUT, timeout=START_TIMEOUT)
            if migrated.returncode != 0:
                raise RuntimeError(f"the database migrations failed; see {log.name}\n{_tail(log.name)}")
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        if name in BATCH_SCHEDULED:
            # Set as it starts (Popen returns once it runs the new program, before that
            # program starts any thread); a preexec_fn would be unsafe with threads here.
            schedule_as_batch(proc.pid)
        if index < len(self.procs):
            self.procs[index] = (name, proc)
        else:
            self.procs.append((name, proc))
        # The process group leaders, for tests and the benchmark (kept current on restarts).
        self.env["_MESO_PIDS"] = ",".join(str(p.pid) for _, p in self.procs)
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(ready_url):
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}; see {log.name}\n{_tail(log.name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer {ready_url.split('?')[0]} within "
                                   f"{START_TIMEOUT:.0f} s; see {log.name}\n{_tail(log.name)}")
            time.sleep(0.5)

    def stop_one(self, index: int) -> None:
        """Stop process ``index`` and wait for it to exit (tests of failures and recovery)."""
        _, proc = self.procs[index]
        _terminate_group(proc)

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            _terminate_group(proc)
        self.procs.clear()

    def watch(self) -> None:
        """Block until one process dies or a signal arrives."""
        while True:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} stopped unexpectedly (exit code {proc.returncode})")
            time.sleep(1)


def run_until_stopped(prepare: Callable[[ExitStack], Services], starting: str, stops: str) -> int:
    """Start the :class:`Services` that ``prepare`` makes (what it enters into the stack is
    closed after them), print the URL once all answer, and watch them until Ctrl-C, SIGTERM
    or a process dying; then stop everything. The exit code for ``make``."""

    def _terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    with ExitStack() as stack:
        services: Services | None = None
        try:
            services = prepare(stack)
            print(starting, flush=True)
            services.start()
            print(f"Ready in {time.monotonic() - started:.0f} s: open {services.env['MESO_API_URL']}/  "
                  f"(Ctrl-C stops {stops})", flush=True)
            services.watch()
        except KeyboardInterrupt:
            print("\nStopping…", flush=True)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            if services is not None:
                services.stop()
    return 0


def main() -> int:
    return run_until_stopped(lambda _stack: Services(service_env()),
                             "Starting the action server, Rasa and the API (logs in var/log/)…",
                             "all three")


if __name__ == "__main__":
    sys.exit(main())
