"""The staff console at ``/staff`` (server-rendered pages), one module per area.

Every route has exactly one tag saying who may use it: ``staff-public`` (the login pages),
``staff`` (any member of staff) or ``staff-admin`` (admins). ``tests/api/test_staff_access.py``
walks the route table and checks each route against its tag, so a route cannot be forgotten.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.routes.staff import (
    account,
    audit,
    auth,
    erasure,
    export,
    field_check,
    inbox,
    notifications,
    questions,
    summary,
    transcript,
    users,
)

router = APIRouter(include_in_schema=False)
"""Every staff route. The ``/staff`` prefix is given to each sub-router as it is included
(not to this router), so a sub-router may have a route at ``/staff`` itself (path "")."""
for module in (auth, account, users, audit, erasure, inbox, summary, transcript, export,
               questions, field_check, notifications):
    router.include_router(module.router, prefix="/staff")
