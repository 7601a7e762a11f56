"""Every staff route, walked from the app's route table and checked by its tag.

``staff-public`` (the login pages), ``staff`` (any member of staff), ``staff-admin``
(admins). A /staff route with no tag, or another tag, fails; so a new route is checked the
day it is added: unauthenticated it redirects to the login page without rendering anything,
a reviewer gets 403 on admin routes, and every form POST is refused without its CSRF token
or from another origin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import httpx
import pytest
from api_fakes import Harness
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.exc import OperationalError
from staff_fakes import StaffClient

from api.main import create_app

pytestmark = pytest.mark.anyio

TAGS = {"staff-public", "staff", "staff-admin"}
PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
SOME_CONVERSATION = "A" * 43
"""The shape of a conversation id (``secrets.token_urlsafe(32)``); no such conversation."""


@dataclass(frozen=True)
class StaffRoute:
    method: str
    path: str
    tag: str

    @property
    def url(self) -> str:
        """The path with every parameter filled in (ints with 1, others with an id)."""
        return PARAM.sub(
            lambda m: SOME_CONVERSATION if m.group(1) == "conversation_id" else "1", self.path
        )


def staff_routes(app: FastAPI) -> list[StaffRoute]:
    """Every (method, path) under /staff with its one tag; AssertionError when a route has
    no tag, several tags or an unknown one."""
    found: list[StaffRoute] = []
    for context in iter_route_contexts(app.routes):
        path = context.path or ""
        if not (path == "/staff" or path.startswith("/staff/")):
            continue
        tags = list(getattr(context, "tags", None) or [])
        assert len(tags) == 1 and tags[0] in TAGS, f"{path}: tags {tags}, want one of {TAGS}"
        for method in sorted(context.methods or ()):
            if method != "HEAD":
                found.append(StaffRoute(method, path, tags[0]))
    return found


def by_tag(routes: Iterable[StaffRoute], *tags: str) -> list[StaffRoute]:
    return [route for route in routes if route.tag in tags]


@pytest.fixture
def routes() -> list[StaffRoute]:
    return staff_routes(create_app())


def test_every_staff_route_has_one_known_tag_and_the_walk_sees_them_all(
    routes: list[StaffRoute],
) -> None:
    paths = {(r.method, r.path) for r in routes}
    # a few routes of each area, so an empty walk cannot pass
    for expected in [
        ("GET", "/staff/login"),
        ("POST", "/staff/logout"),
        ("GET", "/staff/account"),
        ("POST", "/staff/admin/users"),
        ("GET", "/staff/admin/audit"),
        ("POST", "/staff/admin/conversations/{conversation_id}/erase"),
    ]:
        assert expected in paths
    assert {r.tag for r in routes} == TAGS


def test_a_route_without_a_tag_fails_the_walk() -> None:
    app = create_app()
    untagged = APIRouter()

    @untagged.get("/staff/forgotten")
    async def forgotten() -> str:
        return "secret"

    app.include_router(untagged)
    with pytest.raises(AssertionError, match="/staff/forgotten"):
        staff_routes(app)
    assert any(isinstance(r, APIRoute) for r in untagged.routes)


async def test_unauthenticated_requests_are_sent_to_the_login_page(
    h: Harness, routes: list[StaffRoute]
) -> None:
    checked = 0
    for route in by_tag(routes, "staff", "staff-admin"):
        response = await h.client.request(route.method, route.url, data={"x": "1"})
        assert response.status_code == 303, (route, response.status_code)
        location = response.headers["location"]
        if route.method == "GET":
            assert location.startswith("/staff/login?next=%2Fstaff"), (route, location)
        else:
            assert location == "/staff/login", (route, location)
        assert response.content == b"", route  # nothing of the page is rendered
        checked += 1
    assert checked >= 10


async def test_the_public_pages_let_in_nobody_without_a_login_token(
    h: Harness, routes: list[StaffRoute]
) -> None:
    public = by_tag(routes, "staff-public")
    assert 0 < len([r for r in public if r.method == "POST"]) < len(public)
    for route in public:
        response = await h.client.request(route.method, route.url, data={"csrf_token": "x"})
        expected = {303, 403} if route.method == "POST" else {200, 303}
        assert response.status_code in expected, route
        assert not response.cookies.get("meso_staff"), route  # no session given


async def test_a_reviewer_is_refused_every_admin_route(
    reviewer_client: StaffClient, routes: list[StaffRoute]
) -> None:
    admin_routes = by_tag(routes, "staff-admin")
    assert admin_routes
    for route in admin_routes:
        if route.method == "GET":
            response = await reviewer_client.client.get(route.url)
        else:  # with a valid CSRF token: the role alone refuses it
            response = await reviewer_client.post(route.url)
        assert response.status_code == 403, (route, response.status_code)
        assert "administrators only" in response.text


async def test_every_form_post_without_the_csrf_token_is_refused(
    admin_client: StaffClient, routes: list[StaffRoute]
) -> None:
    posts = [r for r in by_tag(routes, "staff", "staff-admin") if r.method == "POST"]
    assert len(posts) >= 8
    for route in posts:
        missing = await admin_client.client.post(route.url, data={"role": "reviewer"})
        wrong = await admin_client.client.post(route.url, data={"csrf_token": "forged"})
        assert (missing.status_code, wrong.status_code) == (403, 403), route
        assert "nothing was changed" in missing.text
    # still logged in: the refusals did not end the session
    assert (await admin_client.client.get("/staff/account")).status_code == 200


async def test_a_post_from_another_origin_is_refused_even_with_the_token(
    admin_client: StaffClient, routes: list[StaffRoute]
) -> None:
    posts = [r for r in by_tag(routes, "staff", "staff-admin") if r.method == "POST"]
    for route in posts:
        response = await admin_client.client.post(
            route.url,
            data={"csrf_token": admin_client.csrf},
            headers={"Origin": "https://evil.example"},
        )
        assert response.status_code == 403, route
    same_site = await admin_client.client.post(
        "/staff/logout",
        data={"csrf_token": admin_client.csrf},
        headers={"Origin": "http://testserver"},
    )
    assert same_site.status_code == 303


async def test_staff_pages_are_not_cached_nor_framed(admin_client: StaffClient) -> None:
    for url in ("/staff/account", "/staff/login", "/staff/no-such-page"):
        response = await admin_client.client.get(url)
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "default-src 'self'" in response.headers["content-security-policy"]


async def test_an_unknown_staff_page_is_an_html_404(admin_client: StaffClient) -> None:
    response = await admin_client.client.get("/staff/no-such-page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text


@pytest.mark.parametrize(
    ("error", "status"), [(RuntimeError("boom"), 500), (OperationalError("x", {}, Exception()), 503)]
)
async def test_a_failure_of_ours_is_an_html_page_in_the_console(
    h: Harness, admin_client: StaffClient, error: Exception, status: int
) -> None:
    async def broken() -> None:
        raise error

    h.app.add_api_route("/staff/broken", broken, methods=["GET"], tags=["staff"])
    h.app.add_api_route("/api/v1/broken", broken, methods=["GET"])
    transport = httpx.ASGITransport(app=h.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url=admin_client.client.base_url,
        cookies=admin_client.client.cookies,
    ) as client:
        response = await client.get("/staff/broken")
        api_response = await client.get("/api/v1/broken")

    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in response.text and "boom" not in response.text
    assert response.headers["cache-control"] == "no-store"
    # The public API keeps its JSON errors, with its headers too.
    assert api_response.status_code == status
    assert api_response.headers["content-type"].startswith("application/json")
    assert api_response.headers["cache-control"] == "no-store"
    assert list(api_response.json()) == ["detail"]
