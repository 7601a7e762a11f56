"""The staff console's Rasa test story, through the real stack: a conversation is held, an
admin exports it as a story, and ``rasa test core`` replays it against the trained model
without a single prediction error (the story is ready for the testers' suite). The same
conversation exported as a conversation test loads with the runner's own reader.

Uses the folder's shared stack, so this file must sort before test_end_to_end.py (which
stops the action server).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import pyotp
import yaml

from api.db import create_engine, create_sessionmaker
from api.models import StaffUser, utcnow
from api.settings import normalise_database_url
from api.staff.auth import COOKIE_NAME
from api.staff.passwords import hash_password
from api.staff.sessions import start_session
from convtest import catalog, spec
from ops.services import BOT_VENV, ROOT

MODEL = ROOT / "models" / "meso.tar.gz"
RASA_TEST_TIMEOUT = 600


def _admin_cookie(stack: dict[str, str]) -> dict[str, str]:
    """A signed-in admin (made directly in the stack's database, with the second factor
    admins must have; the cookie sent by hand, since the console's cookie is Secure and the
    stack speaks plain HTTP)."""

    async def run() -> str:
        engine = create_engine(normalise_database_url(stack["MESO_DATABASE_URL"]))
        try:
            async with create_sessionmaker(engine)() as session:
                user = StaffUser(
                    username="story-admin",
                    display_name="Story Admin",
                    role="admin",
                    password_hash=hash_password("a long test password 1"),
                    totp_secret=pyotp.random_base32(),
                )
                session.add(user)
                await session.flush()
                token = start_session(session, user, now=utcnow())
                await session.commit()
                return token
        finally:
            await engine.dispose()

    return {"Cookie": f"{COOKIE_NAME}={asyncio.run(run())}"}


def _say(api: httpx.Client, cid: str, text: str) -> list[dict]:
    response = api.post(f"/api/v1/conversations/{cid}/messages", json={"text": text})
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def _rasa_test(story: Path, out: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONWARNINGS": "ignore",
    }
    return subprocess.run(
        [
            str(BOT_VENV / "bin" / "rasa"), "test", "core",
            "--stories", str(story), "--model", str(MODEL),
            "--fail-on-prediction-errors", "--out", str(out),
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=RASA_TEST_TIMEOUT,
    )


def test_exported_story_passes_rasa_test_core(
    stack: dict[str, str], api: httpx.Client, tmp_path: Path
) -> None:
    env, client = stack, api
    started = client.post("/api/v1/conversations", json={"consent": True})
    assert started.status_code == 201, started.text
    cid = started.json()["conversation_id"]
    _say(client, cid, "does it hurt much")
    _say(client, cid, "can someone from the clinic call me back")
    _say(client, cid, "yes")
    _say(client, cid, "Ann Example")
    _say(client, cid, "07700 900123")
    _say(client, cid, "weekday mornings")
    cookie = _admin_cookie(env)

    masked = client.get(f"/staff/conversations/{cid}/story.yml", headers=cookie)
    assert masked.status_code == 200, masked.text
    assert masked.headers["content-type"].startswith("text/yaml")
    assert masked.headers["content-disposition"] == f'attachment; filename="story-{cid[:8]}.yml"'
    assert "07700 900123" not in masked.text and "Ann Example" not in masked.text
    document = yaml.safe_load(masked.text)
    assert document["version"] == "3.1"
    [story] = document["stories"]
    assert story["story"] == cid[:8]
    users = [step for step in story["steps"] if "user" in step]
    masked_words = [
        "does it hurt much",
        "can someone from the clinic call me back",
        "yes",
        "A***",
        "*** ** 23",
        "weekday mornings",
    ]
    assert [u["user"].strip() for u in users] == [
        '/start_conversation{"transcript_consent":"yes"}',
        *masked_words,
    ]
    actions = [step["action"] for step in story["steps"] if "action" in step]
    assert "action_listen" not in actions and "callback_form" in actions
    assert {"active_loop": "callback_form"} in story["steps"]

    # The masked story is the one for the suite; rasa replays it without an error.
    path = tmp_path / "test_exported.yml"
    path.write_text(masked.text, encoding="utf-8")
    result = _rasa_test(path, tmp_path / "results")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    # With personal details (admin only) the words are the patient's own.
    personal = client.get(f"/staff/conversations/{cid}/story.yml?personal=1", headers=cookie)
    assert personal.status_code == 200
    assert "07700 900123" in personal.text and "Ann Example" in personal.text

    # The same conversation as a conversation test: masked, and clean for the runner's reader.
    exported = client.get(f"/staff/conversations/{cid}/conversation-test.yml", headers=cookie)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-disposition"] == (
        f'attachment; filename="conversation-{cid[:8]}.yml"'
    )
    assert "07700 900123" not in exported.text and "Ann Example" not in exported.text
    path = tmp_path / "conversations" / "exported.yml"
    path.parent.mkdir()
    path.write_text(exported.text, encoding="utf-8")
    cases, problems = spec.read_file(path, catalog.build())
    assert problems == []
    [case] = cases
    assert [step.value for step in case.steps] == masked_words
    first = {a.name: a.value for a in case.steps[0].assertions}
    assert first["topic"] == "pain" and first["red_flag"] == "none"
