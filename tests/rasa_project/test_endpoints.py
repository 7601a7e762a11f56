"""The endpoints Rasa reads: the root's for a developer, each stack's own for ops/services.py."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from rasa.core.utils import AvailableEndpoints

from bot import paths
from ops import services

ROOT = paths.REPO_ROOT


@pytest.fixture
def no_meso_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in [k for k in os.environ if k.startswith("MESO_")]:
        monkeypatch.delenv(key)


def test_root_endpoints_need_no_settings(no_meso_env: None) -> None:
    """`rasa shell` / `rasa interactive`: the action server of `rasa run actions`, trackers in memory."""
    endpoints = AvailableEndpoints.read_endpoints(str(ROOT / "endpoints.yml"))
    assert endpoints.action.url == "http://127.0.0.1:5055/webhook"
    assert endpoints.tracker_store is None
    assert "${" not in (ROOT / "endpoints.yml").read_text(encoding="utf-8")


def test_a_stack_writes_its_own_endpoints(no_meso_env: None, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    tracker = "postgresql://meso:p@ss:word@db.internal:5432/rasa"
    monkeypatch.setenv("MESO_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("MESO_ACTION_PORT", "47123")
    monkeypatch.setenv("MESO_TRACKER_URL", tracker)
    env = services.service_env()

    path = services.write_endpoints(env)
    monkeypatch.setenv("MESO_ACTION_TOKEN", env["MESO_ACTION_TOKEN"])  # Rasa's environment
    monkeypatch.setenv("MESO_ACTION_ENDPOINT", services.process_env(env, "rasa")["MESO_ACTION_ENDPOINT"])

    assert path == tmp_path / "endpoints.yml"
    assert env["MESO_RASA_ENDPOINTS"] == str(path)
    rasa_argv = services.commands(env)[1][1]
    assert rasa_argv[rasa_argv.index("--endpoints") + 1] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the tracker URL may hold a password
    endpoints = AvailableEndpoints.read_endpoints(str(path))
    assert endpoints.action.url == "http://127.0.0.1:47123/webhook"
    assert endpoints.action.headers == {"Authorization": f"Bearer {env['MESO_ACTION_TOKEN']}"}
    assert env["MESO_ACTION_TOKEN"] not in path.read_text(encoding="utf-8")  # filled by Rasa
    assert endpoints.tracker_store.type == "bot.stores.tracker_store.MesoTrackerStore"
    assert endpoints.tracker_store.url == tracker
    assert endpoints.tracker_store.kwargs["db"] == "meso_tracker"
    assert endpoints.lock_store is None  # one Rasa: its own memory


def test_a_scaled_stack_lists_its_processes_and_shares_a_redis_lock_store(
        no_meso_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Two action servers, two Rasa replicas (each calling its own action server first) and
    an API of two workers; Rasa's lock store on the Redis of MESO_REDIS_URL, its password
    only in the environment."""
    monkeypatch.setenv("MESO_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("MESO_ACTION_PORT", "47123,47124")
    monkeypatch.setenv("MESO_RASA_PORT", "47125,47126")
    monkeypatch.setenv("MESO_API_WORKERS", "2")
    monkeypatch.setenv("MESO_REDIS_URL", "redis://:s3cret-pw@127.0.0.1:47127/0")
    env = services.service_env()

    listed = services.commands(env)
    assert [name for name, _, _ in listed] == [
        "action server", "action server 2", "rasa", "rasa 2", "api"]
    assert [url.split("?")[0] for _, _, url in listed[:4]] == [
        "http://127.0.0.1:47123/health", "http://127.0.0.1:47124/health",
        "http://127.0.0.1:47125/status", "http://127.0.0.1:47126/status"]
    api_argv = listed[4][1]
    assert api_argv[api_argv.index("--workers") + 1] == "2"
    assert env["MESO_RASA_URL"] == "http://127.0.0.1:47125,http://127.0.0.1:47126"
    assert env["MESO_ACTION_SERVER_URL"] == "http://127.0.0.1:47123,http://127.0.0.1:47124"
    first, second = (services.process_env(env, name)["MESO_ACTION_ENDPOINT"] for name in ("rasa", "rasa 2"))
    assert first == "http://127.0.0.1:47123/webhook,http://127.0.0.1:47124/webhook"
    assert second == "http://127.0.0.1:47124/webhook,http://127.0.0.1:47123/webhook"
    assert services.process_env(env, "api")["MESO_MIGRATE_ON_START"] == "false"

    path = services.write_endpoints(env)
    assert "s3cret-pw" not in path.read_text(encoding="utf-8")
    for key in ("MESO_ACTION_TOKEN", "MESO_REDIS_PASSWORD"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setenv("MESO_ACTION_ENDPOINT", second)
    endpoints = AvailableEndpoints.read_endpoints(str(path))
    assert endpoints.action.url == second
    assert endpoints.lock_store.type == "redis"
    assert (endpoints.lock_store.url, endpoints.lock_store.kwargs["port"]) == ("127.0.0.1", 47127)
    assert endpoints.lock_store.kwargs["password"] == "s3cret-pw"
    assert endpoints.lock_store.kwargs["db"] == services.REDIS_LOCK_DB
    assert env["TICKET_LOCK_LIFETIME"] == "6"  # longer than the API's 4 s wait for Rasa
    assert services.rasa_lock_lifetime({"MESO_RASA_TIMEOUT": "2.5"}) == 5


def test_the_scaled_set_up_keeps_its_endpoints_file(no_meso_env: None, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    scale = str(ROOT / "endpoints.scale.yml")
    monkeypatch.setenv("MESO_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("MESO_RASA_ENDPOINTS", scale)
    monkeypatch.setenv("MESO_TRACKER_URL", "postgresql://meso@db.internal/rasa")
    monkeypatch.setenv("MESO_REDIS_HOST", "redis.internal")
    monkeypatch.setenv("MESO_REDIS_PORT", "6380")
    monkeypatch.setenv("MESO_REDIS_PASSWORD", "pw")
    env = services.service_env()

    rasa_argv = services.commands(env)[1][1]
    assert rasa_argv[rasa_argv.index("--endpoints") + 1] == scale
    monkeypatch.setenv("MESO_ACTION_ENDPOINT", env["MESO_ACTION_ENDPOINT"])
    monkeypatch.setenv("MESO_ACTION_TOKEN", env["MESO_ACTION_TOKEN"])
    endpoints = AvailableEndpoints.read_endpoints(scale)  # Rasa fills ${...} from the environment
    assert endpoints.action.url == "http://127.0.0.1:5055/webhook"
    assert endpoints.action.headers == {"Authorization": f"Bearer {env['MESO_ACTION_TOKEN']}"}
    assert endpoints.tracker_store.url == "postgresql://meso@db.internal/rasa"
    assert endpoints.tracker_store.type == "bot.stores.tracker_store.MesoTrackerStore"
    assert endpoints.lock_store.type == "redis"
    assert endpoints.lock_store.url == "redis.internal"
    assert endpoints.lock_store.kwargs["password"] == "pw"


def test_no_secret_is_on_a_command_line(no_meso_env: None, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    """`ps` shows every process's arguments: the secrets go through the environment."""
    monkeypatch.setenv("MESO_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("MESO_DATABASE_URL", "postgresql://meso:db-pass-123@db.internal/meso")
    monkeypatch.setenv("MESO_TRACKER_URL", "postgresql://meso:db-pass-123@db.internal/rasa")
    env = services.service_env()
    secrets = [env["MESO_RASA_TOKEN"], env["MESO_ACTION_TOKEN"], "db-pass-123"]

    for name, argv, _ in services.commands(env):
        line = " ".join(argv)
        assert not [s for s in secrets if s in line], name
        assert "--auth-token" not in line and "--jwt-secret" not in line


def test_the_rest_channel_is_off_unless_a_setting_opens_it(no_meso_env: None,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    import rasa.shared.utils.io

    monkeypatch.setenv("MESO_VAR_DIR", str(tmp_path))
    env = services.service_env()
    path = services.write_credentials(env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(rasa.shared.utils.io.read_config_file(path)) == ["bot.channels.meso.MesoInput"]
    rasa_argv = services.commands(env)[1][1]
    assert rasa_argv[rasa_argv.index("--credentials") + 1] == str(path)

    env["MESO_RASA_REST_CHANNEL"] = "true"
    assert set(rasa.shared.utils.io.read_config_file(services.write_credentials(env))) == {
        "bot.channels.meso.MesoInput", "rest"}


def test_the_root_credentials_open_no_unauthenticated_channel() -> None:
    import rasa.shared.utils.io

    assert list(rasa.shared.utils.io.read_config_file(ROOT / "credentials.yml")) == [
        "bot.channels.meso.MesoInput"]


def test_the_rasa_launcher_takes_no_secret_argument(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from bot import rasa_server

    monkeypatch.setenv("MESO_RASA_TOKEN", "t")
    for argv in (["--auth-token=abc"], ["--auth-token", "abc"], ["--jwt-secret", "x"]):
        assert rasa_server.main(["--enable-api", *argv]) == 2
    assert "MESO_RASA_TOKEN" in capsys.readouterr().err
    monkeypatch.delenv("MESO_RASA_TOKEN")
    assert rasa_server.main(["--enable-api"]) == 2  # no token: no start
    monkeypatch.setenv("MESO_RASA_TOKEN", "t")
    monkeypatch.setenv("MESO_LOG_FORMAT", "xml")
    assert rasa_server.main(["--enable-api"]) == 2
    assert "MESO_LOG_FORMAT must be one of json, text" in capsys.readouterr().err


def test_the_rasa_launcher_applies_the_process_tuning_before_rasa_starts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``bot.rasa_server`` applies every tuning of ``bot.process_tuning`` (here each replaced
    by a recorder, so this test process keeps Rasa's own code) before Rasa's ``main``, and
    Rasa starts with the short switch interval in force."""
    import sys

    import rasa.__main__
    import rasa.cli.run

    from bot import process_tuning, rasa_server

    applied: list[str] = []
    for name in ("cache_action_result_check", "cache_event_types", "narrow_rule_matching",
                 "tail_rule_states", "recent_action_history", "incremental_applied_events",
                 "copy_trackers_by_state", "freeze_after_agent_load"):
        monkeypatch.setattr(process_tuning, name, lambda name=name: applied.append(name))
    monkeypatch.setattr(process_tuning, "skip_unused_frameworks", lambda names: applied.append("skip"))
    from bot import action_servers, logs
    monkeypatch.setattr(action_servers, "several_action_servers", lambda: applied.append("servers"))
    monkeypatch.setattr(logs, "send_request_ids", lambda: applied.append("request ids"))
    monkeypatch.setattr(logs, "configure", lambda service, level=None: applied.append(f"logs {service}"))
    started: list[float] = []
    monkeypatch.setattr(rasa.__main__, "main", lambda: started.append(sys.getswitchinterval()))
    monkeypatch.setattr(rasa.cli.run, "run", rasa.cli.run.run)  # restored after
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setenv("MESO_RASA_TOKEN", "t")
    before = sys.getswitchinterval()
    try:
        assert rasa_server.main(["--enable-api"]) == 0
    finally:
        sys.setswitchinterval(before)
    assert len(applied) == 12 and {"servers", "request ids", "logs rasa"} <= set(applied)
    assert applied[0] == "logs rasa"  # before Rasa's imports, which warn
    assert started == [process_tuning.GIL_SWITCH_INTERVAL_S] and before > process_tuning.GIL_SWITCH_INTERVAL_S
