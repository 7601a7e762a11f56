"""Private stacks' ports: free, never handed out twice, and a stack whose port is taken starts again."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ops import stack


def test_ports_are_free_distinct_and_outside_the_outgoing_range() -> None:
    low, high = stack._ephemeral_range()
    ports = [stack.free_port() for _ in range(60)]
    assert len(set(ports)) == len(ports)
    for port in ports:
        assert not low <= port <= high
        assert stack._bindable(port)


def _only_candidates(monkeypatch: pytest.MonkeyPatch, first: int, count: int) -> None:
    """Make ports ``first`` .. ``first + count - 1`` the only ones free_port may choose."""
    monkeypatch.setattr(stack, "_PORT_FLOOR", first)
    monkeypatch.setattr(stack, "_ephemeral_range", lambda: (first + count, 65535))


def test_a_port_someone_listens_on_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        _only_candidates(monkeypatch, taken.getsockname()[1], 1)
        with pytest.raises(RuntimeError, match="no free loopback port"):
            stack.free_port()


def test_a_port_is_handed_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    first = next(p for p in range(40000, 41000, 2) if stack._bindable(p) and stack._bindable(p + 1))
    _only_candidates(monkeypatch, first, 2)
    monkeypatch.setattr(stack, "_HANDED_OUT", set())
    assert {stack.free_port(), stack.free_port()} == {first, first + 1}
    with pytest.raises(RuntimeError, match="no free loopback port"):
        stack.free_port()


class _Services:
    """Stands in for ops.services.Services: its start fails the way a taken port fails."""

    started: list[dict[str, str]] = []
    stopped = 0
    failures: list[str] = []

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def start(self) -> None:
        type(self).started.append(dict(self.env))
        log = Path(self.env["MESO_VAR_DIR"]) / "log"
        log.mkdir(exist_ok=True)
        (log / "api.log").write_text(f"attempt {len(type(self).started)}\n")
        if type(self).failures:
            raise RuntimeError(type(self).failures.pop(0))

    def stop(self) -> None:
        type(self).stopped += 1


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> type[_Services]:
    _Services.started, _Services.stopped, _Services.failures = [], 0, []
    monkeypatch.setattr(stack, "Services", _Services)
    return _Services


TAKEN = ("api exited with code 3; see api.log\nERROR:    [Errno 98] error while attempting to bind on "
         "address ('127.0.0.1', 34293): address already in use")


def test_a_taken_port_means_a_new_start_on_new_ports(services: type[_Services], tmp_path: Path) -> None:
    services.failures = [TAKEN]
    started = stack._start(tmp_path, {})
    assert len(services.started) == 2 and services.stopped == 1
    first, second = services.started
    ports = ("MESO_API_PORT", "MESO_RASA_PORT", "MESO_ACTION_PORT")
    assert not {first[p] for p in ports} & {second[p] for p in ports}
    assert started.env["MESO_API_URL"].endswith(":" + second["MESO_API_PORT"])
    # The failed attempt's log is kept apart from the running stack's.
    assert (tmp_path / "log-attempt-1" / "api.log").read_text() == "attempt 1\n"
    assert (tmp_path / "log" / "api.log").read_text() == "attempt 2\n"


def test_other_start_failures_are_not_retried(services: type[_Services], tmp_path: Path) -> None:
    services.failures = ["rasa exited with code 1; see rasa.log\nNo model found"]
    with pytest.raises(RuntimeError, match="No model found"):
        stack._start(tmp_path, {})
    assert len(services.started) == 1 and services.stopped == 1


def test_retries_are_bounded(services: type[_Services], tmp_path: Path) -> None:
    services.failures = [TAKEN] * 5
    with pytest.raises(RuntimeError, match="address already in use"):
        stack._start(tmp_path, {})
    assert len(services.started) == stack._START_ATTEMPTS == services.stopped
