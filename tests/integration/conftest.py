"""Start the real action server, Rasa server (trained model) and API once for this folder."""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest

from api.patient_auth import PatientKeys
from ops.services import Services
from ops.stack import private_services


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """The session's stack; a test that stops one of its processes starts it again."""
    with private_services(MESO_RATE_LIMIT_CONVERSATIONS_PER_MINUTE="0") as started:
        yield started


@pytest.fixture(scope="session")
def stack(services: Services) -> dict[str, str]:
    return services.env


@pytest.fixture(scope="session")
def api(stack: dict[str, str]) -> Iterator[httpx.Client]:
    # A patient's browser: it keeps each conversation's token and sends it (api.patient_auth).
    with httpx.Client(base_url=stack["MESO_API_URL"], timeout=15, auth=PatientKeys()) as client:
        yield client


@pytest.fixture(scope="session")
def rasa(stack: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack["MESO_RASA_URL"], timeout=15,
                      params={"token": stack["MESO_RASA_TOKEN"]}) as client:
        yield client
