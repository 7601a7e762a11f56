"""``python -m api.serve --host H --port P [--workers N]``: the API under uvicorn, as every
set-up runs it (``ops/services.py`` for ``make run``, ``ops/host.py`` under systemd, the
compose file).

What it fixes, so no set-up can forget one:

* ``proxy_headers`` off: the app itself decides whose X-Forwarded-* count
  (``MESO_TRUSTED_PROXIES``, ``api.proxies``), not uvicorn's implicit trust of 127.0.0.1;
* uvicorn's access log off: the app writes its own line per request (``api.request_log``),
  with the route's template instead of a path holding a conversation's id, and the request id;
* the HTTP protocol: uvicorn's httptools protocol writing each response in one piece
  (``api.http_server``);
* the log format every process shares (``contract.logs``, ``MESO_LOG_FORMAT``), set before
  uvicorn writes its first line, in every worker;
* with several workers, a fresh folder the workers keep their metrics in
  (:data:`SHARED_METRICS_ENV`), so that a scrape reaching any of them counts them all
  (``api.metrics``); removed when the server stops.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

from contract.logs import format_refused, logging_config

APP = "api.main:app"
PROTOCOL = "api.http_server:CoalescingHttpToolsProtocol"
SHARED_METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's multiprocess folder: set (by :func:`main`) only under several workers,
before any of them imports the library."""


def parser() -> argparse.ArgumentParser:
    parsed = argparse.ArgumentParser(prog="python -m api.serve", description=__doc__.split("\n\n")[0])
    parsed.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parsed.add_argument("--port", type=int, default=8000, help="port to listen on")
    parsed.add_argument("--workers", type=int, default=1,
                        help="worker processes behind the one port (several need PostgreSQL)")
    return parsed


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.workers < 1:
        print("error: --workers must be 1 or more", file=sys.stderr)
        return 2
    refused = format_refused()
    if refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    import uvicorn

    shared = None
    if args.workers > 1:
        # Fresh at each start: counts left by an earlier run would be added to this one's.
        shared = tempfile.mkdtemp(prefix="meso-metrics-")
        os.environ[SHARED_METRICS_ENV] = shared
    try:
        uvicorn.run(APP, host=args.host, port=args.port,
                    workers=args.workers if args.workers > 1 else None, http=PROTOCOL,
                    proxy_headers=False, access_log=False, log_config=logging_config("api"))
    finally:
        if shared is not None:
            os.environ.pop(SHARED_METRICS_ENV, None)
            shutil.rmtree(shared, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
