"""The widget's configuration (from clinic.yml, read at start-up) and CORS for the widget's
host sites."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_fakes import Harness

from api.settings import REPO_ROOT
from bot.kb.loader import KnowledgeError, load_clinic

pytestmark = pytest.mark.anyio

CONFIG = "/api/v1/widget/config"
CLINIC_SITE = "https://www.example-clinic.test"


def clinic_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "clinic.yml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_config_gives_the_clinic_facts_and_the_limits(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    path = clinic_file(
        tmp_path,
        "name: Northside Hair Clinic\n"
        "phone: '+44 161 000 0000'\n"
        "email: desk@northside.test\n"
        "hours: Mon to Sat, 8 to 18\n"
        "booking: Book online.\n"
        "emergency_number: '112'\n"
        "price_course: 900\n",
    )
    async with start(clinic_file=path, transcript_idle_minutes=45, max_text_chars=600) as h:
        response = await h.client.get(CONFIG)

    assert response.status_code == 200
    assert response.json() == {
        "clinic": {
            "name": "Northside Hair Clinic",
            "phone": "+44 161 000 0000",
            "email": "desk@northside.test",
            "hours": "Mon to Sat, 8 to 18",
            "booking": "Book online.",
        },
        "emergency_number": "112",
        "transcript_idle_minutes": 45,
        "max_text_chars": 600,
    }
    assert response.headers["cache-control"] == "no-store"


async def test_facts_the_clinic_has_not_set_are_null(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    path = clinic_file(tmp_path, "name: Tiny Clinic\nphone: 5551234\nemail: ''\nhours: null\n")
    async with start(clinic_file=path) as h:
        body = (await h.client.get(CONFIG)).json()

    assert body["clinic"] == {
        "name": "Tiny Clinic",
        "phone": "5551234",  # YAML reads an unquoted number; it is still shown as text
        "email": None,
        "hours": None,
        "booking": None,
    }
    assert body["emergency_number"] is None


async def test_the_file_is_read_at_start_up_not_per_request(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    path = clinic_file(tmp_path, "name: Before\n")
    async with start(clinic_file=path) as h:
        path.write_text("name: After\n", encoding="utf-8")
        assert (await h.client.get(CONFIG)).json()["clinic"]["name"] == "Before"


async def test_the_repository_clinic_file_is_the_default(h: Harness) -> None:
    expected = load_clinic(REPO_ROOT / "clinic.yml")
    body = (await h.client.get(CONFIG)).json()
    assert body["clinic"]["name"] == expected.name
    assert body["transcript_idle_minutes"] == 30


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (None, "file not found"),
        ("name: [unclosed", "not valid YAML"),
        ("phone: '1'\n", "needs a 'name'"),
        ("name: X\nfax: '1'\n", "unknown field"),
    ],
)
async def test_an_unusable_clinic_file_stops_start_up_with_a_clear_error(
    start: Callable[..., Any], tmp_path: Path, text: str | None, problem: str
) -> None:
    path = tmp_path / "clinic.yml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeError, match=problem):
        async with start(clinic_file=path):
            pass


# --- CORS ------------------------------------------------------------------------------------


async def test_a_listed_origin_may_call_the_api(start: Callable[..., Any]) -> None:
    async with start(widget_origins=[CLINIC_SITE, "http://localhost:8080"]) as h:
        preflight = await h.client.options(
            "/api/v1/conversations",
            headers={
                "Origin": CLINIC_SITE,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        created = await h.client.post(
            "/api/v1/conversations", json={"consent": False}, headers={"Origin": CLINIC_SITE}
        )

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == CLINIC_SITE
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in preflight.headers
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == CLINIC_SITE
    assert "retry-after" in created.headers["access-control-expose-headers"].lower()


async def test_refusals_are_readable_by_a_listed_origin(start: Callable[..., Any]) -> None:
    async with start(widget_origins=[CLINIC_SITE]) as h:
        response = await h.client.post(
            f"/api/v1/conversations/{'B' * 43}/messages",
            json={"text": "x" * 50_000},
            headers={"Origin": CLINIC_SITE},
        )
    assert response.status_code == 413
    assert response.headers["access-control-allow-origin"] == CLINIC_SITE


async def test_other_origins_and_other_paths_get_no_cors(start: Callable[..., Any]) -> None:
    async with start(widget_origins=[CLINIC_SITE]) as h:
        preflight = await h.client.options(
            "/api/v1/conversations",
            headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"},
        )
        simple = await h.client.get(CONFIG, headers={"Origin": "https://evil.test"})
        page = await h.client.get("/healthz", headers={"Origin": CLINIC_SITE})

    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers
    assert "access-control-allow-origin" not in page.headers


async def test_no_origin_is_allowed_by_default(h: Harness) -> None:
    response = await h.client.get(CONFIG, headers={"Origin": CLINIC_SITE})
    preflight = await h.client.options(
        CONFIG, headers={"Origin": CLINIC_SITE, "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in preflight.headers
