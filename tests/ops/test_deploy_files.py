"""The deployment files (``deploy/``) use exactly the settings and commands the code does:
they have not run here (no container engine), so at least no name in them may be one the
processes never read."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from ops import services

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
READERS = [*ROOT.glob("api/**/*.py"), *ROOT.glob("bot/**/*.py"), *ROOT.glob("ops/*.py"),
           ROOT / "endpoints.scale.yml", ROOT / "Makefile"]
COMPOSE_ONLY = {"MESO_DB_PASSWORD"}
"""Read by the compose file itself (the database container's password), not by a process."""


def _names(text: str) -> set[str]:
    return set(re.findall(r"\b(MESO_[A-Z0-9_]+|TICKET_LOCK_LIFETIME)\b", text))


def test_every_setting_the_deployment_files_name_is_read_by_the_code() -> None:
    code = "\n".join(path.read_text(encoding="utf-8") for path in READERS)
    settings_fields = set(re.findall(r"^    ([a-z_]+): .*= Field\(", (ROOT / "api/settings.py").read_text(), re.M))
    known = {f"MESO_{name.upper()}" for name in settings_fields} | _names(code) | COMPOSE_ONLY
    files = [path for path in DEPLOY.rglob("*") if path.is_file()]
    assert any(path.parent.name == "host" for path in files)  # deploy/host/ too
    for path in files:
        unknown = _names(path.read_text(encoding="utf-8")) - known
        assert not unknown, (path.name, unknown)


def test_the_compose_file_runs_the_processes_make_run_scale_runs() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yml").read_text(encoding="utf-8"))
    commands = {name: service.get("command") for name, service in compose["services"].items()}
    env = services.service_env()
    local = {name: argv for name, argv, _ in services.commands({**env, "MESO_API_WORKERS": "2"})}

    def tail(argv: list[str], start: str) -> list[str]:
        return argv[argv.index(start):]

    assert tail(commands["action-1"], "-m")[:2] == tail(local["action server"], "-m")[:2]
    assert tail(commands["rasa-1"], "-m")[:2] == tail(local["rasa"], "-m")[:2]
    for flag in ("--enable-api", "--endpoints", "--credentials"):
        assert flag in commands["rasa-1"]
    api_flags = [a for a in local["api"] if a.startswith("--") and a not in {"--host", "--port"}]
    assert all(flag in commands["api"] for flag in api_flags), api_flags
    assert commands["migrate"][1:] == services.migrate_command()[1:]
    assert compose["services"]["api"]["environment"]["MESO_MIGRATE_ON_START"] == "false"
    assert compose["services"]["rasa-1"]["environment"]["TICKET_LOCK_LIFETIME"] == str(
        services.rasa_lock_lifetime({}))



def test_the_secrets_file_stays_out_of_git_and_out_of_the_image() -> None:
    """deploy/meso.env holds every password and token: ignored by git, and by the image's
    build context with the patients' data (var/) and the rest of what is local."""
    ignored_by_git = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    ignored_by_image = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert "deploy/meso.env" in ignored_by_git
    for path in ("deploy/meso.env", ".env", "var/", "results/"):
        assert path in ignored_by_image, path
    tracked = subprocess.run(["git", "ls-files", "deploy"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert "deploy/meso.env" not in tracked and "deploy/meso.env.example" in tracked
