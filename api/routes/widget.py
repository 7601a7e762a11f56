"""What the chat widget needs to know before the first message: the clinic's contact facts
(from clinic.yml, read at start-up) and the API's limits."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RuntimeDep
from api.schemas import ClinicFacts, WidgetConfig

router = APIRouter(prefix="/api/v1/widget", tags=["widget"])


@router.get("/config", response_model=WidgetConfig, summary="The widget's configuration")
async def widget_config(runtime: RuntimeDep) -> WidgetConfig:
    """The clinic's name and contact facts, its emergency number, how long a conversation
    without transcript consent is kept after its last message, and the longest message."""
    clinic = runtime.clinic
    return WidgetConfig(
        clinic=ClinicFacts(
            name=clinic.name,
            phone=clinic.phone,
            email=clinic.email,
            hours=clinic.hours,
            booking=clinic.booking,
        ),
        emergency_number=clinic.emergency_number,
        transcript_idle_minutes=runtime.settings.transcript_idle_minutes,
        max_text_chars=runtime.settings.max_text_chars,
    )
