"""Start the real action server, Rasa server (trained model) and API once for this folder."""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest

from ops.stack import private_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[dict[str, str]]:
    with private_stack(MESO_RATE_LIMIT_CONVERSATIONS_PER_MINUTE="0") as env:
        yield env


@pytest.fixture(scope="session")
def api(stack: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack["MESO_API_URL"], timeout=15) as client:
        yield client


@pytest.fixture(scope="session")
def rasa(stack: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack["MESO_RASA_URL"], timeout=15,
                      params={"token": stack["MESO_RASA_TOKEN"]}) as client:
        yield client
