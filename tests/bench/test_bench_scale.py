"""``make bench --scale`` (bench.scale): what it counts as stored in either database, and
its targets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from api.db import create_engine, upgrade_head
from bench import scale


def _setup(measured: dict[str, Any]) -> dict[str, Any]:
    return {"turns_per_s": 40.0, "errors": 0, "lost": 0, "burst": {"errors": 0}, **measured}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_stored_counts_patient_messages_and_answers_in_either_database(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'meso.db'}" if kind == "sqlite" else request.getfixturevalue("postgres_url")

    async def fill() -> None:
        engine = create_engine(url if kind != "sqlite" else f"sqlite+aiosqlite:///{tmp_path / 'meso.db'}")
        now = datetime.now(UTC)
        try:
            await upgrade_head(engine)
            async with engine.begin() as connection:
                for cid in ("a", "b", "other"):
                    await connection.execute(text(
                        "INSERT INTO conversations (id, created_at, updated_at, last_activity_at, "
                        "transcript_consent) VALUES (:id, :now, :now, :now, true)"), {"id": cid, "now": now})
                rows = [("a", 1, "patient", "answered"), ("a", 2, "assistant", None),
                        ("a", 3, "patient", "unanswered"), ("b", 1, "patient", "answered"),
                        ("other", 1, "patient", "answered")]
                for cid, seq, role, status in rows:
                    await connection.execute(text(
                        "INSERT INTO messages (conversation_id, seq, role, text, status, created_at) "
                        "VALUES (:c, :s, :r, 'x', :st, :now)"), {"c": cid, "s": seq, "r": role, "st": status, "now": now})
        finally:
            await engine.dispose()

    asyncio.run(fill())
    assert asyncio.run(scale.stored(url, ["a", "b"])) == (3, 2)
    assert asyncio.run(scale.stored(url, [])) == (0, 0)


def test_the_targets_ask_for_nothing_lost_no_error_and_three_quarters_of_the_throughput() -> None:
    single = _setup({})
    assert all(met for _, met, _ in scale.targets(single, _setup({"turns_per_s": 30.0})))
    assert [met for _, met, _ in scale.targets(single, _setup({"turns_per_s": 29.9}))] == [True, True, False]
    assert [met for _, met, _ in scale.targets(single, _setup({"lost": 1}))] == [False, True, True]
    assert [met for _, met, _ in scale.targets(single, _setup({"burst": {"errors": 2}}))] == [True, False, True]
    assert scale.throughput_kept(_setup({"turns_per_s": 0.0}), single) == 0.0
