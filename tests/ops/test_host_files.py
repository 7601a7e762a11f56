"""The single-host production files (deploy/host/, ops/host.py): systemd's own checker
accepts every unit; each unit starts what ``make run`` starts, through ``ops.host``, with the
secrets from the environment file; the nginx site is filled in completely. (nginx itself
runs the site in tests/integration/test_host_proxy.py.)"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ops import host
from ops.services import ROOT, commands

UNITS = ROOT / "deploy" / "host"
SECRETS = {name: "s" * 40 for name in host.SHARED_SECRETS}


def unit(name: str) -> configparser.ConfigParser:
    parsed = configparser.ConfigParser(strict=False, interpolation=None)
    parsed.optionxform = str  # type: ignore[assignment,method-assign]
    parsed.read(UNITS / name)
    return parsed


def test_systemd_accepts_every_unit(tmp_path: Path) -> None:
    """``systemd-analyze verify`` on the units as installed (here: this checkout for
    /srv/meso, an empty environment file): no error and no warning."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian's systemd package) is needed for this check"
    (tmp_path / "meso.env").write_text("")
    names = sorted(p.name for p in UNITS.iterdir() if p.suffix in {".service", ".timer", ".target"})
    for name in names:
        text = (UNITS / name).read_text()
        (tmp_path / name).write_text(
            text.replace("/srv/meso", str(ROOT)).replace("/etc/meso/meso.env", str(tmp_path / "meso.env")))
    result = subprocess.run([analyze, "verify", *(f"./{n}" for n in names)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    assert len(names) == 9  # 5 services, 2 jobs with their timers, the target


def test_each_process_has_a_unit_that_restarts_it_with_the_environment_file() -> None:
    for name in [*host.PROCESSES, "migrate"]:
        service = unit(f"meso-{name}.service")["Service"]
        assert service["ExecStart"] == f"/usr/bin/python3 -m ops.host run {name}"
        assert service["EnvironmentFile"] == "/etc/meso/meso.env"
        assert service["User"] == "meso" and service["ProtectSystem"] == "strict"
        assert service.get("Restart") == (None if name == "migrate" else "on-failure")
    assert unit("meso-api.service")["Unit"]["Requires"] == "meso-migrate.service"
    for job in ("backup", "retention"):
        assert unit(f"meso-{job}.service")["Service"]["ExecStart"].endswith(f"-m api.cli {job}")
        assert "OnCalendar" in unit(f"meso-{job}.timer")["Timer"]


def test_run_starts_what_make_run_starts_with_the_shared_secrets(tmp_path: Path) -> None:
    environ = {**SECRETS, "MESO_VAR_DIR": str(tmp_path)}
    listed = {name: argv for name, argv, _ in commands(host.host_env(environ))}
    for name, process in host.PROCESSES.items():
        argv, env = host.launch(name, environ)
        assert argv == listed[process]
        assert all(env[k] == v for k, v in SECRETS.items())
    assert host.launch("api", environ)[1]["MESO_MIGRATE_ON_START"] == "false"
    assert (tmp_path / "endpoints.yml").exists() and (tmp_path / "credentials.yml").exists()
    assert host.launch("migrate", environ)[0][-2:] == ["api.cli", "migrate"]


def test_run_refuses_to_make_up_the_shared_secrets(tmp_path: Path) -> None:
    """Each process starts on its own: secrets made up by each would not match."""
    short = {**SECRETS, "MESO_ACTION_TOKEN": "short", "MESO_VAR_DIR": str(tmp_path)}
    del short["MESO_LINK_SECRET"]
    with pytest.raises(host.HostError, match="MESO_ACTION_TOKEN, MESO_LINK_SECRET"):
        host.launch("rasa", short)
    assert not (tmp_path / "endpoints.yml").exists()
    with pytest.raises(host.HostError, match="no process called"):
        host.launch("redis", {**SECRETS, "MESO_VAR_DIR": str(tmp_path)})


def test_the_nginx_site_is_filled_in_for_the_public_address() -> None:
    site = host.nginx_site("https://assistant.clinic.example", "8000", "/etc/ssl/a.pem", "/etc/ssl/a.key")
    assert not re.search(r"@[A-Z_]+@", site), "a placeholder left"
    assert "server_name assistant.clinic.example;" in site and "listen 443 ssl http2;" in site
    assert "return 301 https://$host$request_uri;" in site
    assert "proxy_pass http://127.0.0.1:8000;" in site
    with pytest.raises(host.HostError, match="https://"):
        host.nginx_site("http://assistant.clinic.example", "8000", "a", "b")
