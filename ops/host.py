"""A clinic's single host, for real: each process under systemd, behind nginx with TLS.

    python3 -m ops.host run actions|rasa|api|migrate   (what each systemd unit starts)
    python3 -m ops.host nginx --cert PEM --key PEM     (prints the site for nginx)

``run`` works out the process's environment exactly as ``make run`` does
(:func:`ops.services.service_env` and :func:`ops.services.process_env`), writes Rasa's
endpoints and channels files for Rasa, and then replaces itself with the same program and
arguments as ``make run`` starts (:func:`ops.services.commands`), so systemd supervises that
process itself. Unlike ``make run`` it refuses to make up the secrets the processes share:
each runs on its own, so they must come from the environment file (``deploy/host/``).

``nginx`` fills ``deploy/host/nginx-site.conf`` from ``MESO_PUBLIC_URL`` (the host name)
and ``MESO_API_PORT``. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse

from ops.services import (
    ROOT,
    commands,
    migrate_command,
    process_env,
    service_env,
    write_credentials,
    write_endpoints,
)

SITE_TEMPLATE = ROOT / "deploy" / "host" / "nginx-site.conf"
SHARED_SECRETS = ("MESO_RASA_TOKEN", "MESO_ACTION_TOKEN", "MESO_LINK_SECRET")
"""Secrets every process must agree on: set once in the environment file."""
PROCESSES = {"actions": "action server", "rasa": "rasa", "api": "api"}
"""``run``'s names for the processes ``ops.services.commands`` starts."""


class HostError(Exception):
    """A setting the host set-up needs is missing or wrong."""


def host_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The processes' shared environment, from the environment file's settings."""
    given = dict(os.environ if environ is None else environ)
    missing = [name for name in SHARED_SECRETS if len(given.get(name, "")) < 32]
    if missing:
        raise HostError(f"set {', '.join(missing)} in the environment file (32 characters or "
                        "more each, the same for every process)")
    return service_env(given)


def launch(name: str, environ: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of process ``name`` (``actions``, ``rasa``, ``api``,
    ``migrate``), Rasa's files written."""
    env = host_env(environ)
    if name == "migrate":
        return migrate_command(), env
    if name not in PROCESSES:
        raise HostError(f"no process called {name!r}: one of {', '.join([*PROCESSES, 'migrate'])}")
    listed = {listed_name: argv for listed_name, argv, _ in commands(env)}
    process = PROCESSES[name]
    if process == "rasa":
        write_endpoints(env)
        write_credentials(env)
    return listed[process], process_env(env, process)


ACCESS_LOG = "/var/log/nginx/meso-requests.log"
"""Where the site's nginx writes its line per request (``meso_requests``: no address, no path)."""


def nginx_site(public_url: str, api_port: str, cert: str, key: str,
               https_port: int = 443, http_port: int = 80, access_log: str = ACCESS_LOG) -> str:
    """``deploy/host/nginx-site.conf`` filled in for this host."""
    parts = urllib.parse.urlsplit(public_url)
    if parts.scheme != "https" or not parts.hostname:
        raise HostError("MESO_PUBLIC_URL must be the https:// address patients reach")
    values = {"@SERVER_NAME@": parts.hostname, "@API_PORT@": api_port, "@TLS_CERT@": cert,
              "@TLS_KEY@": key, "@HTTPS_PORT@": str(https_port), "@HTTP_PORT@": str(http_port),
              "@ACCESS_LOG@": access_log,
              "@HTTPS_SUFFIX@": "" if https_port == 443 else f":{https_port}"}
    text = SITE_TEMPLATE.read_text()
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m ops.host", description=__doc__.split("\n\n")[0])
    commands_ = parser.add_subparsers(dest="command", required=True)
    start = commands_.add_parser("run", help="start one process (for its systemd unit)")
    start.add_argument("process", choices=[*PROCESSES, "migrate"])
    site = commands_.add_parser("nginx", help="print the nginx site for this host")
    site.add_argument("--cert", required=True, help="the TLS certificate chain (PEM)")
    site.add_argument("--key", required=True, help="its private key (PEM)")
    args = parser.parse_args(argv)
    try:
        if args.command == "nginx":
            print(nginx_site(os.environ.get("MESO_PUBLIC_URL", ""),
                             os.environ.get("MESO_API_PORT", "8000"), args.cert, args.key), end="")
            return 0
        program, env = launch(args.process)
    except HostError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    os.chdir(ROOT)
    os.execve(program[0], program, env)


if __name__ == "__main__":
    sys.exit(main())
