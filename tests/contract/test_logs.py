"""The log line every process writes (``contract.logs``): one JSON object a line with the
request id of the work in hand, extra fields that cannot replace the standard ones, errors
kept; request ids from elsewhere only when well formed; Rasa's debug lines (which quote what
patients write) never written in the JSON format."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from typing import List

import pytest

from contract.logs import (
    FIELDS, FORMAT_ENV, HANDLER, JsonFormatter, RequestIdFilter, accepted_request_id, log_format,
    logging_config, new_request_id, request_id,
)


def record(name: str = "api.test", level: int = logging.INFO, msg: str = "hello %s",
           args: tuple = ("there",), **extra: object) -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


def test_a_line_is_one_json_object_with_the_standard_fields() -> None:
    line = JsonFormatter("api").format(record())
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "hello there"
    assert parsed["level"] == "INFO" and parsed["service"] == "api" and parsed["logger"] == "api.test"
    assert parsed["time"].endswith("Z") and len(parsed["time"]) == len("2026-12-06T10:15:02.123Z")
    assert isinstance(parsed["pid"], int)
    assert "request_id" not in parsed  # no request in hand


def test_the_current_request_id_and_extra_fields_are_in_the_line() -> None:
    token = request_id.set("abc-123")
    try:
        line = json.loads(JsonFormatter("rasa").format(
            record(**{FIELDS: {"status": 200, "ms": 12, "level": "FORGED", "message": "forged"}})))
    finally:
        request_id.reset(token)
    assert line["request_id"] == "abc-123"
    assert line["status"] == 200 and line["ms"] == 12
    assert line["level"] == "INFO" and line["message"] == "hello there"  # never replaced


def test_a_line_break_in_a_message_stays_inside_its_line_and_errors_are_kept() -> None:
    try:
        raise RuntimeError("broken")
    except RuntimeError:
        import sys

        failed = record(msg="first\nsecond", args=())
        failed.exc_info = sys.exc_info()
    line = JsonFormatter("actions").format(failed)
    assert line.count("\n") == 0
    parsed = json.loads(line)
    assert parsed["message"] == "first\nsecond"
    assert "RuntimeError: broken" in parsed["error"] and "Traceback" in parsed["error"]


@pytest.mark.parametrize("value", ["0f1e2d3c4b5a69788796a5b4c3d2e1f0", "req-1", "a.b_c:d", "x" * 64])
def test_well_formed_request_ids_are_accepted(value: str) -> None:
    assert accepted_request_id(value) == value


@pytest.mark.parametrize("value", [None, "", "x" * 65, "two words", "line\nbreak", 'quo"te', "é"])
def test_other_request_ids_are_refused(value: str) -> None:
    assert accepted_request_id(value) is None


def test_new_request_ids_are_fresh_and_accepted() -> None:
    made = {new_request_id() for _ in range(50)}
    assert len(made) == 50
    assert all(accepted_request_id(rid) == rid and len(rid) == 32 for rid in made)


def test_the_format_is_json_unless_text_is_asked_for_and_nothing_else_is_taken() -> None:
    assert log_format({}) == "json"
    assert log_format({FORMAT_ENV: ""}) == "json"
    assert log_format({FORMAT_ENV: "text"}) == "text"
    with pytest.raises(ValueError, match=FORMAT_ENV):
        log_format({FORMAT_ENV: "xml"})


PROCESS = """
import logging, logging.config, sys
from contract.logs import logging_config, request_id
logging.config.dictConfig(logging_config("rasa", "DEBUG", fmt=sys.argv[1]))
request_id.set("r-1")
logging.getLogger("rasa.core.processor").debug("Received user message 'my scalp bleeds'")
logging.getLogger("rasa_sdk.executor").debug("tracker: 'my scalp bleeds'")
logging.getLogger("sanic.access").debug("access")
logging.getLogger("rasa.core.processor").info("model loaded")
logging.getLogger("bot.channels.meso").debug("own debug line")
"""


def configured_lines(fmt: str) -> List[str]:
    """What a process configured with :func:`logging_config` writes (a process of its own:
    the configuration replaces every handler of the process)."""
    done = subprocess.run([sys.executable, "-c", PROCESS, fmt], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stderr == ""
    return [line for line in done.stdout.splitlines() if line]


def test_json_never_writes_rasa_debug_lines_but_keeps_the_rest() -> None:
    lines = configured_lines("json")
    parsed = [json.loads(line) for line in lines]
    assert [(p["logger"], p["message"]) for p in parsed] == [
        ("rasa.core.processor", "model loaded"), ("bot.channels.meso", "own debug line")]
    assert {p["request_id"] for p in parsed} == {"r-1"}
    assert "my scalp bleeds" not in "".join(lines)


def test_text_is_for_a_developer_and_keeps_debug_lines() -> None:
    lines = configured_lines("text")
    assert len(lines) == 5
    assert "[r-1]" in lines[0] and "my scalp bleeds" in lines[0]


def test_the_filter_marks_lines_outside_any_request() -> None:
    made = record()
    assert RequestIdFilter().filter(made) and made.request_id == "-"  # type: ignore[attr-defined]
    assert logging_config("api")["root"]["handlers"] == [HANDLER]
