"""The production set-up's front: Debian's nginx with deploy/host/nginx-site.conf (filled in
by ``ops.host``) and a self-signed certificate, in front of the real stack, whose API is
restarted as a clinic runs it (``MESO_PUBLIC_URL`` https, ``MESO_TRUSTED_PROXIES`` the proxy).
A patient's conversation and a staff login go through ``https://``, with every security
header the API promises (HSTS included); plain http is sent to https; a forged
X-Forwarded-For from the client does not reach the API."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.main import security_headers
from api.patient_auth import PatientKeys
from ops.host import nginx_site
from ops.datastores import listening
from ops.services import API_VENV, ROOT, Services
from ops.stack import free_port

PASSWORD = "a long enough password for the proxy test"


@pytest.fixture(scope="module")
def proxy(services: Services) -> Iterator[tuple[str, str, Path]]:
    """(https URL, http URL, certificate) of nginx in front of the session's API."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    folder = Path(tempfile.mkdtemp(prefix="meso-nginx-"))
    https_port, http_port = free_port(), free_port()
    public = f"https://127.0.0.1:{https_port}"
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    api_port = services.env["MESO_API_PORT"]
    (folder / "site.conf").write_text(
        nginx_site(public, api_port, str(cert), str(key), https_port=https_port, http_port=http_port,
                   access_log=str(folder / "requests.log")))
    (folder / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\nuser root;\npid {folder}/nginx.pid;\n"
        f"error_log {folder}/error.log warn;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {folder}/body;\n"
        f"  proxy_temp_path {folder}/proxy;\n  include {folder}/site.conf;\n}}\n")
    index = services.index_of("api")
    kept = dict(services.env)
    services.stop_one(index)
    services.env.update(MESO_PUBLIC_URL=public, MESO_TRUSTED_PROXIES="127.0.0.1")
    services.start_one(index)
    server = subprocess.Popen([nginx, "-c", str(folder / "nginx.conf"), "-p", str(folder)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while not (listening(https_port) and listening(http_port)):
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)
        yield public, f"http://127.0.0.1:{http_port}", cert
    finally:
        server.terminate()
        server.wait(timeout=15)
        services.stop_one(index)
        services.env.clear()
        services.env.update(kept)
        services.start_one(index)
        shutil.rmtree(folder, ignore_errors=True)


def _promised(response: httpx.Response, path: str) -> None:
    """Every header the API promises on ``path`` (HSTS: its public URL is https) arrives."""
    for name, value in security_headers(path, hsts=True):
        assert response.headers.get(name.decode()) == value.decode(), name


def test_a_patient_talks_through_https_with_every_security_header(
    proxy: tuple[str, str, Path], services: Services,
) -> None:
    public, _, cert = proxy
    with httpx.Client(base_url=public, verify=str(cert), timeout=30, auth=PatientKeys()) as client:
        opened = client.post("/api/v1/conversations", json={"consent": True})
        assert opened.status_code == 201, opened.text
        _promised(opened, "/api/v1/conversations")
        conversation_id = opened.json()["conversation_id"]
        reply = client.post(f"/api/v1/conversations/{conversation_id}/messages",
                            json={"text": "what is mesotherapy"},
                            headers={"X-Request-ID": "chosen-by-the-client"})
        assert reply.status_code == 200 and reply.json()["messages"], reply.text
        _promised(reply, f"/api/v1/conversations/{conversation_id}/messages")
        _promised(client.get("/"), "/")
    # nginx names the request (the client's own id is replaced); the API's line has the same id.
    rid = reply.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid), rid
    nginx_lines = (cert.parent / "requests.log").read_text().splitlines()
    assert any(line.split()[1:4] == [rid, "POST", "200"] for line in nginx_lines), nginx_lines
    assert conversation_id not in "\n".join(nginx_lines)
    deadline = time.monotonic() + 5
    while rid not in (Path(services.env["MESO_VAR_DIR"]) / "log" / "api.log").read_text():
        assert time.monotonic() < deadline, "the API's log has no line with nginx's request id"
        time.sleep(0.1)


def test_plain_http_is_sent_to_https(proxy: tuple[str, str, Path]) -> None:
    public, plain, _ = proxy
    response = httpx.get(f"{plain}/staff/login?x=1", follow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["location"] == f"{public}/staff/login?x=1"


def test_staff_log_in_through_https_with_a_secure_cookie_and_their_real_address(
    proxy: tuple[str, str, Path], services: Services,
) -> None:
    public, _, cert = proxy
    created = subprocess.run(
        [str(API_VENV / "bin" / "python"), "-m", "api.cli", "create-user", "--username", "nurse",
         "--role", "reviewer", "--password-stdin"],
        input=PASSWORD + "\n", env=services.env, cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=False)
    assert created.returncode == 0, created.stderr
    with httpx.Client(base_url=public, verify=str(cert), timeout=30) as client:
        form = client.get("/staff/login")
        _promised(form, "/staff/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        response = client.post(
            "/staff/login",
            data={"csrf_token": token.group(1), "username": "nurse", "password": PASSWORD},
            headers={"Origin": public, "X-Forwarded-For": "203.0.113.99"},  # forged by the client
        )
        assert response.status_code == 303, response.text
        cookies = response.headers.get_list("set-cookie")
        assert any(c.startswith("meso_staff=") for c in cookies), cookies
        for cookie in cookies:  # the session's, and the login form's (cleared)
            assert {"secure", "httponly", "samesite=strict"} <= {
                part.strip().lower() for part in cookie.split(";")}, cookie
        inbox = client.get("/staff")
        assert inbox.status_code == 200 and "Conversations" in inbox.text
        _promised(inbox, "/staff")
    database = Path(services.env["MESO_VAR_DIR"]) / "meso.db"
    with sqlite3.connect(database) as db:
        [(address,)] = db.execute(
            "SELECT client_address FROM audit_log WHERE action = 'login' ORDER BY id DESC LIMIT 1")
    assert address == "127.0.0.1"  # nginx's view of the client, not the forged header
