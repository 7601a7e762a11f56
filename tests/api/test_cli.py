"""The command line: the first admin is created there (no default account exists), and
the retention command erases old conversations, audited as the system."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_fakes import database_execute, database_rows, rasa_tracker_db, tracker_counts

from api import cli
from api.models import utcnow
from api.settings import Settings
from api.staff.passwords import verify_password

PASSWORD = "a perfectly long password"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(make_settings: Callable[..., Settings]) -> Callable[..., tuple[int, str]]:
    """``run(argv, stdin="")`` runs the command in-process: (exit status, its output)."""

    def _run(argv: list[str], stdin: str = "", **settings: Any) -> tuple[int, str]:
        out = io.StringIO()
        status = cli.main(
            argv, settings=make_settings(**settings), stdin=io.StringIO(stdin), out=out
        )
        return status, out.getvalue()

    return _run


def create(run: Callable[..., tuple[int, str]], username: str = "ana", role: str = "admin") -> int:
    status, _ = run(
        ["create-user", "--username", username, "--role", role, "--password-stdin"], PASSWORD + "\n"
    )
    return status


def test_there_is_no_account_until_one_is_created(
    run: Callable[..., tuple[int, str]], database_url: str
) -> None:
    status, output = run(["list-users"])
    assert status == 0
    assert "No accounts yet" in output
    assert database_rows(database_url, "SELECT * FROM staff_users") == []  # migrated, and empty


def test_create_user_with_the_password_on_stdin(
    run: Callable[..., tuple[int, str]], database_url: str
) -> None:
    status, output = run(
        ["create-user", "--username", "Ana", "--role", "admin", "--display-name", "Ana Lima",
         "--password-stdin"],
        PASSWORD + "\n",
    )
    assert (status, output.strip()) == (0, "Created admin ana.")
    [user] = database_rows(database_url, "SELECT * FROM staff_users")
    assert (user["username"], user["display_name"], user["role"]) == ("ana", "Ana Lima", "admin")
    assert verify_password(user["password_hash"], PASSWORD)
    [entry] = database_rows(database_url, "SELECT * FROM audit_log")
    assert (entry["action"], entry["actor_name"]) == ("user_created", "system")
    assert PASSWORD not in str(tuple(entry))
    _, listing = run(["list-users"])
    assert listing.startswith("ana\tadmin\tactive\ttwo-step off\tlast login never")


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["--username", "ana", "--role", "admin"], "elevenchars\n", "at least 12 characters"),
        (["--username", "a b", "--role", "admin"], PASSWORD + "\n", "2 to 64 characters"),
        (["--username", "ana", "--role", "admin"], "\n", "at least 12 characters"),
    ],
)
def test_create_user_refuses_bad_input_and_stores_nothing(
    run: Callable[..., tuple[int, str]],
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: str,
    message: str,
) -> None:
    status, _ = run(["create-user", *argv, "--password-stdin"], stdin)
    assert status == 1
    assert message in capsys.readouterr().err
    assert database_rows(database_url, "SELECT * FROM staff_users") == []


def test_an_unknown_role_is_a_usage_error(run: Callable[..., tuple[int, str]]) -> None:
    with pytest.raises(SystemExit) as stopped:
        run(["create-user", "--username", "ana", "--role", "owner", "--password-stdin"])
    assert stopped.value.code == 2


def test_a_username_is_taken_once(
    run: Callable[..., tuple[int, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert create(run) == 0
    assert create(run, "ANA", "reviewer") == 1
    assert "already an account called ana" in capsys.readouterr().err


def test_without_stdin_the_password_is_typed_twice(
    run: Callable[..., tuple[int, str]],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    typed = iter([PASSWORD, PASSWORD + "!", PASSWORD, PASSWORD])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt: next(typed))
    argv = ["create-user", "--username", "ana", "--role", "reviewer"]
    assert run(argv)[0] == 1
    assert "not the same" in capsys.readouterr().err
    assert run(argv)[0] == 0
    [user] = database_rows(database_url, "SELECT password_hash FROM staff_users")
    assert verify_password(user["password_hash"], PASSWORD)


def test_set_password_and_deactivate(
    run: Callable[..., tuple[int, str]], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert create(run) == 0
    assert run(["set-password", "ana", "--password-stdin"], "a brand new password\n")[0] == 0
    [user] = database_rows(database_url, "SELECT * FROM staff_users")
    assert verify_password(user["password_hash"], "a brand new password")

    assert run(["deactivate", "ana"])[0] == 1
    assert "last active admin" in capsys.readouterr().err
    assert create(run, "ben") == 0
    assert run(["deactivate", "ana"])[0] == 0
    assert run(["deactivate", "nobody"])[0] == 1
    actions = [r["action"] for r in database_rows(database_url, "SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["user_created", "user_password_set", "user_created", "user_deactivated"]


def add_conversation(database_url: str, conversation_id: str, days_idle: float) -> None:
    when = utcnow() - timedelta(days=days_idle)
    database_execute(
        database_url,
        "INSERT INTO conversations (id, created_at, updated_at, last_activity_at) "
        "VALUES (?, ?, ?, ?)",
        conversation_id, when, when, when,
    )


def test_retention_dry_run_then_run(
    run: Callable[..., tuple[int, str]], database_url: str, tracker_path: Path
) -> None:
    run(["list-users"])  # creates the database
    add_conversation(database_url, "old-one", 40)
    add_conversation(database_url, "new-one", 20)
    rasa_tracker_db(tracker_path, {"old-one": 3, "new-one": 2})

    status, output = run(["retention", "--dry-run"], retention_days=30)
    assert status == 0 and "1 conversations are older than 30 days" in output
    assert len(database_rows(database_url, "SELECT id FROM conversations")) == 2

    status, output = run(["retention"], retention_days=30)
    assert (status, output.strip()) == (0, "Erased 1 conversations older than 30 days.")
    assert [r["id"] for r in database_rows(database_url, "SELECT id FROM conversations")] == ["new-one"]
    assert tracker_counts(tracker_path) == {"new-one": 2}
    [entry] = database_rows(database_url, "SELECT * FROM audit_log WHERE action = 'retention'")
    assert entry["actor_name"] == "system"
    assert json.loads(entry["detail"])["deleted"] == 1

    status, output = run(["retention", "--days", "10"], retention_days=30)
    assert status == 0 and database_rows(database_url, "SELECT id FROM conversations") == []


def test_retention_zero_days_keeps_everything(
    run: Callable[..., tuple[int, str]], database_url: str
) -> None:
    run(["list-users"])
    add_conversation(database_url, "ancient", 5000)
    status, output = run(["retention"], retention_days=0)
    assert status == 0 and "no conversation is deleted" in output
    assert len(database_rows(database_url, "SELECT id FROM conversations")) == 1


def test_the_module_runs_from_any_directory_with_the_environment(
    tmp_path: Path, database_url: str
) -> None:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MESO_")},
        "MESO_DATABASE_URL": database_url,
        "MESO_TRACKER_URL": f"sqlite:///{tmp_path / 'data' / 'tracker.db'}",
        "PYTHONPATH": str(REPO_ROOT),
    }
    command = "create-user --username first --role admin --password-stdin".split()
    options: dict[str, Any] = {"cwd": tmp_path, "env": environment, "timeout": 120}
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", *command],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        check=False,
        **options,
    )
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    [user] = database_rows(database_url, "SELECT username, role FROM staff_users")
    assert tuple(user) == ("first", "admin")


def test_audit_verify_passes_an_intact_log_and_names_an_altered_entry(
    run: Callable[..., tuple[int, str]], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, output = run(["audit-verify"])
    assert (status, output.strip()) == (0, "The audit log is empty.")
    for name in ("ana", "ben", "cara"):
        assert create(run, name) == 0
    status, output = run(["audit-verify"])
    [*_, last] = database_rows(database_url, "SELECT id, entry_hash FROM audit_log ORDER BY id")
    assert status == 0 and "intact: 3 entries" in output
    head = f"{last['id']}:{last['entry_hash']}"
    assert output.strip().endswith(head)
    assert run(["audit-verify", "--expect", head])[0] == 0

    altered = database_rows(database_url, "SELECT id FROM audit_log ORDER BY id")[1]["id"]
    database_execute(
        database_url,
        "UPDATE audit_log SET detail = '{\"username\": \"mallory\", \"role\": \"admin\"}' "
        "WHERE id = ?",
        altered,
    )
    capsys.readouterr()
    status, output = run(["audit-verify"])
    assert status == 1 and output == ""
    error = capsys.readouterr().err
    assert f"broken at entry {altered}: it was altered" in error


def test_audit_verify_names_the_entry_after_a_deleted_one(
    run: Callable[..., tuple[int, str]], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("ana", "ben", "cara"):
        create(run, name)
    first, second, third = (r["id"] for r in database_rows(database_url, "SELECT id FROM audit_log"))
    database_execute(database_url, "DELETE FROM audit_log WHERE id = ?", second)
    capsys.readouterr()
    assert run(["audit-verify"])[0] == 1
    assert f"broken at entry {third}: it does not follow entry {first}" in capsys.readouterr().err


def test_audit_verify_refuses_a_malformed_head(run: Callable[..., tuple[int, str]]) -> None:
    with pytest.raises(SystemExit) as exit_status:
        run(["audit-verify", "--expect", "12:not-a-hash"])
    assert exit_status.value.code == 2


def test_reset_totp_turns_the_second_step_off(
    run: Callable[..., tuple[int, str]], database_url: str
) -> None:
    """For someone who lost their device, the last admin too (they set up a new one at login)."""
    assert create(run) == 0
    database_execute(
        database_url, "UPDATE staff_users SET totp_secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'"
    )
    status, output = run(["reset-totp", "ANA"])
    assert status == 0 and "off for ana" in output
    [row] = database_rows(database_url, "SELECT totp_secret FROM staff_users")
    assert row["totp_secret"] is None
    [entry] = database_rows(database_url, "SELECT actor_name FROM audit_log WHERE action = 'user_totp_reset'")
    assert entry["actor_name"] == "system"
    status, output = run(["reset-totp", "ana"])
    assert status == 0 and "no two-step login" in output
    assert run(["reset-totp", "nobody"])[0] == 1
