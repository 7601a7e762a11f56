"""A property-based run over every public endpoint: no request gets a 5xx, and no request
without the conversation's token succeeds on a conversation.

The public routes are read from the running app (everything outside ``/staff``: the API,
the pages, the static mounts), so a new route is fuzzed, and must be exercised, without
anyone listing it here. Requests are drawn with Hypothesis from the app's OpenAPI document
(path, query and body schemas), mixed with what a hostile client sends: unpaired
surrogates, NUL and C1 controls, bidirectional overrides, invisible-only text, bodies that
are not UTF-8 or not JSON, wrong content types and methods, huge numbers. Every request on
a conversation is made on a fresh one (created through the API, so its token is known) and
sent with its token, without one, with a wrong one, with another conversation's token, or
with a malformed header.

Derandomised (the same examples every run), no example database, a bounded number of
examples and a deadline per example: it runs in well under two minutes on two slow cores.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from anyio.from_thread import start_blocking_portal
from api_fakes import COST_PAYLOAD, FakeRasa, running_app, rasa_tracker_db
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount

from api.patient_auth import bearer
from api.routes.access import NOT_FOUND_DETAIL
from api.settings import Settings
from api.staff.errors import is_staff_path

MAX_EXAMPLES = int(os.environ.get("MESO_FUZZ_EXAMPLES", "1500"))
"""Examples in one run (``MESO_FUZZ_EXAMPLES`` raises it for a longer local run)."""
DEADLINE_MS = 5000
"""Longest one example may take (one or two requests, in-process)."""
TIME_BUDGET_S = 110.0
"""The whole run must finish within this (the target is two minutes with set-up)."""

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class Endpoint:
    """One public route and method (a mount: GET on anything under it)."""

    method: str
    path: str
    mount: Mount | None = None

    @property
    def on_conversation(self) -> bool:
        return "{conversation_id}" in self.path

    def __str__(self) -> str:
        return f"{self.method} {self.path}{'/...' if self.mount else ''}"


def public_endpoints(app: FastAPI) -> list[Endpoint]:
    """Every route of ``app`` a patient's browser (or anyone) can reach: not the staff
    console's."""
    endpoints: list[Endpoint] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path
        if path is None or is_staff_path(path):
            continue
        if isinstance(route, Mount):
            endpoints.append(Endpoint("GET", path, route))
            continue
        for method in sorted(context.methods or ()):
            endpoints.append(Endpoint(method, path))
    return sorted({str(e): e for e in endpoints}.values(), key=str)


# Values ---------------------------------------------------------------------------------------

NASTY_CHARACTERS = [
    "\x00", "\x01", "\x1b", "\x7f", "\x85", "\x9f", "\ud800", "\udbff\udbff", "\udfff",
    "\u202e", "\u202a", "\u2066", "\u2069", "\u200e", "\u061c", "\u200b", "\u200d", "\ufeff",
    "\u2060", "\u3164", "\u2800", "\u00ad", "\r", "\r\n", "\n", "\t", "\u2028", "\u0301",
    "\uffff", "\U0010ffff", "\U000e0041", "😀", "ß", "İ", "/", "\\", '"', "<script>", "%00",
    "{", "'", "=", "\u0000\u0000",
]
"""Characters (and short strings) that break naive handling of text."""

nasty_text = st.lists(
    st.one_of(st.sampled_from(NASTY_CHARACTERS), st.characters(), st.just("a")), max_size=24
).map("".join)
long_text = st.sampled_from(["a" * 1000, " " * 999 + "a", "a" * 1001, "é" * 1500, "x" * 20_000])
any_text = st.one_of(st.text(max_size=30), nasty_text, long_text)

GOOD_STRINGS: dict[str, list[Any]] = {
    "text": ["How much does it cost?", "Does it hurt?", COST_PAYLOAD, "one\r\ntwo", "/restart"],
    "client_id": ["m-5f2c9a1e", "client-id-0001", "zzzzzzzz"],
    "message_id": ["1", "2", "3", "4", "0", "999999999", "01"],
    "rating": ["up", "down", None],
}
"""Values a field of that name takes in real use (so requests reach the handlers' work)."""

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
)
any_json = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.one_of(st.sampled_from(list(GOOD_STRINGS)), any_text), children,
                      max_size=3),
    max_leaves=6,
)


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def from_schema(
    schema: dict[str, Any], components: dict[str, Any], name: str = "", hostile: bool = True
) -> st.SearchStrategy[Any]:
    """Values of ``schema``'s shape (OpenAPI 3.1 / JSON schema as FastAPI writes it), their
    strings hostile as often as not; with ``hostile``, wrong types and unknown keys too."""
    schema = _resolve(schema, components)
    if "anyOf" in schema or "oneOf" in schema:
        options = schema.get("anyOf") or schema.get("oneOf")
        shaped = st.one_of(
            *(from_schema(option, components, name, hostile) for option in options)
        )
    elif "enum" in schema:
        shaped = st.sampled_from(schema["enum"])
    elif "const" in schema:
        shaped = st.just(schema["const"])
    else:
        kind = schema.get("type")
        if kind == "object":
            shaped = _object(schema, components, hostile)
        elif kind == "array":
            items = from_schema(schema.get("items", {}), components, hostile=hostile)
            shaped = st.lists(items, max_size=3)
        elif kind == "string":
            options = [any_text]
            if "pattern" in schema:
                options.append(st.from_regex(schema["pattern"], fullmatch=True))
            shaped = st.one_of(*options)
        elif kind == "boolean":
            shaped = st.booleans()
        elif kind in {"integer", "number"}:
            shaped = st.integers(min_value=-(2**40), max_value=2**40)
        elif kind == "null":
            shaped = st.none()
        else:
            shaped = any_json
    options = [shaped, shaped]
    if name in GOOD_STRINGS:
        options = [st.sampled_from(GOOD_STRINGS[name]), shaped]
    if hostile:
        options.append(st.one_of(scalars, any_json))
    return st.one_of(*options)


def _object(
    schema: dict[str, Any], components: dict[str, Any], hostile: bool
) -> st.SearchStrategy[Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    strategies = {
        key: from_schema(value, components, key, hostile) for key, value in properties.items()
    }

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        value: dict[str, Any] = {}
        for key, strategy in strategies.items():
            if key in required or draw(st.booleans()):
                value[key] = draw(strategy)
        if hostile and draw(st.integers(0, 5)) == 0:
            value[draw(any_text)] = draw(scalars)
        return value

    return build()


def encoded(value: Any, how: str) -> bytes:
    """``value`` as a request body: JSON (escaped ASCII, or raw UTF-8 where an unpaired
    surrogate makes invalid bytes), UTF-16 JSON."""
    if how == "utf-8":
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if how == "utf-16":
        return json.dumps(value).encode("utf-16")
    return json.dumps(value).encode("ascii")


header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)
"""What an HTTP server lets through in a header value (no CTL; obs-text, i.e. C1 as latin-1,
included)."""

CONTENT_TYPES = [
    *["application/json"] * 8, None, "text/plain",
    "application/json; charset=latin-1", "application/merge-patch+json",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
]

AUTH_KINDS = ("valid", "valid", "valid", "none", "wrong", "other", "malformed")


# The run --------------------------------------------------------------------------------------


def good_value(schema: dict[str, Any], components: dict[str, Any], name: str = "") -> Any:
    """A well-formed value of ``schema`` (the sweep's body: every property, first choices)."""
    schema = _resolve(schema, components)
    if name in GOOD_STRINGS:
        return GOOD_STRINGS[name][0]
    if "anyOf" in schema or "oneOf" in schema:
        options = schema.get("anyOf") or schema.get("oneOf")
        usable = [o for o in options if _resolve(o, components).get("type") != "null"]
        return good_value((usable or options)[0], components, name)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if schema.get("examples"):
        return schema["examples"][0]
    kind = schema.get("type")
    if kind == "object":
        return {
            key: good_value(value, components, key)
            for key, value in schema.get("properties", {}).items()
        }
    return {"array": [], "string": "x", "boolean": True, "integer": 1, "number": 1.5}.get(
        str(kind)
    )


@dataclass
class Tally:
    """What the run did, per endpoint (to prove each was exercised)."""

    calls: Counter[str]
    auth: dict[str, Counter[str]]
    statuses: dict[str, Counter[int]]
    passed_auth: Counter[str]

    @classmethod
    def empty(cls) -> Tally:
        return cls(Counter(), defaultdict(Counter), defaultdict(Counter), Counter())

    def total(self) -> int:
        return sum(self.calls.values())


class Client:
    """The running app, driven from Hypothesis's (synchronous) examples through a portal."""

    def __init__(self, portal: Any, app: FastAPI) -> None:
        self.portal = portal
        transport = httpx.ASGITransport(
            app=app, client=("198.51.100.9", 40000), raise_app_exceptions=False
        )
        self.http = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.portal.call(partial(self.http.request, method, url, **kwargs))

    def new_conversation(self, consent: bool) -> tuple[str, str]:
        response = self.request("POST", "/api/v1/conversations", json={"consent": consent})
        assert response.status_code == 201, response.text
        body = response.json()
        return str(body["conversation_id"]), str(body["token"])


@dataclass
class Request:
    """One request to send, and what it is for."""

    endpoint: Endpoint
    method: str
    auth: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    content: bytes | None


class Run:
    """A sweep (each endpoint once per kind of token, well-formed) and the Hypothesis run."""

    def __init__(self, client: Client, app: FastAPI, endpoints: list[Endpoint]) -> None:
        self.client = client
        self.endpoints = endpoints
        self.document = app.openapi()
        self.components = self.document.get("components", {}).get("schemas", {})
        self.other_id, self.other_token = client.new_conversation(consent=True)
        self.tally = Tally.empty()

    def operation(self, endpoint: Endpoint) -> dict[str, Any]:
        paths = self.document.get("paths", {})
        return paths.get(endpoint.path, {}).get(endpoint.method.lower(), {})

    def body_schema(self, endpoint: Endpoint) -> dict[str, Any]:
        content = self.operation(endpoint).get("requestBody", {}).get("content", {})
        return content.get("application/json", {}).get("schema", {})

    def on_conversation(
        self, endpoint: Endpoint, auth: str, consent: bool, wrong: str, malformed: str
    ) -> tuple[str, dict[str, str]]:
        """A fresh conversation for the request: the path and the Authorization header."""
        conversation_id, token = self.client.new_conversation(consent)
        path = endpoint.path.replace(
            "{conversation_id}", self.other_id if auth == "other" else conversation_id
        )
        headers: dict[str, str] = {}
        if auth in {"valid", "other"}:
            headers.update(bearer(token))
        elif auth == "wrong":
            headers.update(bearer({"other's": self.other_token, "changed": token[:-1] + (
                "A" if token[-1] != "A" else "B"), "made up": "x" * 43}.get(wrong, wrong)))
        elif auth == "malformed":
            headers["Authorization"] = malformed.replace("{token}", token)
        return path, headers

    def send(self, request: Request) -> None:
        """Send ``request`` and check the answer."""
        endpoint, method, auth, path = (
            request.endpoint, request.method, request.auth, request.path
        )
        key = str(endpoint)
        started = time.perf_counter()
        response = self.client.request(
            method,
            path,
            params=request.params,
            headers={name: value.encode("latin-1") for name, value in request.headers.items()},
            content=request.content,
        )
        elapsed = time.perf_counter() - started
        tally = self.tally
        tally.calls[key] += 1
        tally.auth[key][auth] += 1
        tally.statuses[key][response.status_code] += 1
        detail = _detail(response)
        where = f"{method} {path} ({key}, token {auth}) -> {response.status_code} {detail!r}"
        assert response.status_code < 500, where
        assert elapsed < DEADLINE_MS / 1000, where
        if endpoint.on_conversation and method == endpoint.method:
            if auth == "valid":
                # Its own token opens a fresh conversation: never the unknown-conversation 404.
                assert detail != NOT_FOUND_DETAIL, f"its token refused: {where}"
                tally.passed_auth[key] += 1
            else:
                assert not 200 <= response.status_code < 300, f"opened without its token: {where}"
        if _answers_json(self.operation(endpoint)) and response.status_code >= 400 \
                and method != "HEAD":
            assert isinstance(detail, str) and detail, f"no JSON detail: {where}"

    def sweep(self) -> None:
        """Every endpoint, well-formed, with each kind of token (so each is surely reached)."""
        for endpoint in self.endpoints:
            spec = self.operation(endpoint)
            kinds = sorted(set(AUTH_KINDS)) if endpoint.on_conversation else ["none"]
            for auth in kinds:
                path, headers = endpoint.path, {}
                if endpoint.on_conversation:
                    path, headers = self.on_conversation(
                        endpoint, auth, True, "changed", "Basic {token}"
                    )
                for parameter in spec.get("parameters", []):
                    if parameter.get("in") == "path":
                        path = path.replace("{" + parameter["name"] + "}", "x" * 43)
                if endpoint.mount is not None:
                    path = f"{path}/{(_files(endpoint) or ['index.html'])[0]}"
                content = None
                schema = self.body_schema(endpoint)
                if schema:
                    content = json.dumps(good_value(schema, self.components)).encode()
                    headers["Content-Type"] = "application/json"
                self.send(Request(endpoint, endpoint.method, auth, path, {}, headers, content))

    def fuzz(self) -> None:
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=DEADLINE_MS,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )
        @given(st.data())
        def one_request(data: st.DataObject) -> None:
            self.send(self.draw_request(data))

        one_request()

    def draw_request(self, data: st.DataObject) -> Request:
        endpoint = data.draw(st.sampled_from(self.endpoints), label="endpoint")
        method = endpoint.method
        if data.draw(st.integers(0, 19), label="odd method?") == 0:
            method = data.draw(st.sampled_from(METHODS), label="method")
        spec = self.operation(endpoint)
        components = self.components
        path, headers, auth = endpoint.path, {}, "none"
        if endpoint.on_conversation:
            auth = data.draw(st.sampled_from(AUTH_KINDS), label="token")
            path, headers = self.on_conversation(
                endpoint,
                auth,
                data.draw(st.booleans(), label="consent"),
                data.draw(st.sampled_from(["other's", "changed", "made up"]), label="wrong"),
                data.draw(st.one_of(
                    # Not "bearer  {token}": the scheme is case-insensitive and may be followed
                    # by more than one space (RFC 7235, RFC 6750), so that one is valid.
                    st.sampled_from(["Bearer", "Bearer ", "Basic {token}", "{token}",
                                     "Bearer {token} extra", "Token {token}", "Bearer\t{token}"]),
                    header_text,
                ), label="malformed"),
            )
        for parameter in spec.get("parameters", []):
            if parameter.get("in") == "path" and "{" + parameter["name"] + "}" in path:
                value = data.draw(from_schema(parameter.get("schema", {}), components,
                                              parameter["name"]), label=parameter["name"])
                path = path.replace("{" + parameter["name"] + "}",
                                    quote(str(value).encode("utf-8", "surrogatepass"), safe=""))
        if endpoint.mount is not None:
            tail = data.draw(st.one_of(
                st.sampled_from(_files(endpoint) or ["index.html"]),
                st.sampled_from(["", "..", "../../etc/passwd", "%2e%2e/x", "a/../../b", "%00"]),
                st.text(max_size=12).map(lambda t: quote(t, safe="/")),
            ), label="file")
            path = f"{path}/{tail}"

        params: dict[str, str] = {}
        for parameter in spec.get("parameters", []):
            if parameter.get("in") == "query" and data.draw(st.booleans(), label="query?"):
                params[parameter["name"]] = str(data.draw(
                    from_schema(parameter.get("schema", {}), components, parameter["name"]),
                    label=parameter["name"],
                ))
        if data.draw(st.integers(0, 9), label="extra query?") == 0:
            params[data.draw(header_text, label="q name") or "q"] = data.draw(
                header_text, label="q value")
        for name in ("User-Agent", "Accept-Language", "Origin"):
            if data.draw(st.integers(0, 9), label=f"{name}?") == 0:
                headers[name] = data.draw(header_text, label=name)

        content: bytes | None = None
        body_schema = self.body_schema(endpoint)
        if method in {"POST", "PUT", "PATCH", "DELETE"} and (
            body_schema or data.draw(st.integers(0, 4), label="body?") == 0
        ):
            shape = data.draw(st.sampled_from(
                ["well-formed", "well-formed", "well-formed", "hostile", "json", "bytes", "none"]
            ), label="body shape")
            if shape == "well-formed":
                value = data.draw(
                    from_schema(body_schema, components, hostile=False) if body_schema
                    else any_json, label="body")
                content = encoded(value, "ascii")
                headers["Content-Type"] = "application/json"
            elif shape == "bytes":
                content = data.draw(st.one_of(
                    st.binary(max_size=40),
                    st.sampled_from([b'{"text": "caf\xe9"}', b'{"text": "\xed\xa0\x80"}',
                                     b"{", b"[]" * 3000, b"[" * 2000 + b"]" * 2000,
                                     b'{"text": 1e999}', b'{"text": "a", "text": "\\u0000"}']),
                ), label="raw body")
            elif shape != "none":
                value = data.draw(
                    from_schema(body_schema, components) if shape == "hostile" and body_schema
                    else any_json,
                    label="body",
                )
                content = encoded(value, data.draw(
                    st.sampled_from(["ascii", "ascii", "ascii", "utf-8", "utf-16"]),
                    label="encoding",
                ))
            if shape != "well-formed":
                content_type = data.draw(st.sampled_from(CONTENT_TYPES), label="content type")
                if content_type is not None:
                    headers["Content-Type"] = content_type
        return Request(endpoint, method, auth, path, params, headers, content)


def _files(endpoint: Endpoint) -> list[str]:
    """The files a static mount serves (top level)."""
    directory = getattr(endpoint.mount.app, "directory", None) if endpoint.mount else None
    return sorted(p.name for p in Path(directory).iterdir()) if directory else []


def _answers_json(spec: dict[str, Any]) -> bool:
    """Whether the operation's success is JSON (its errors are then ``{"detail": str}``);
    pages (the summary) answer errors with pages."""
    for code, response in spec.get("responses", {}).items():
        if code.startswith("2"):
            return "application/json" in response.get("content", {}) or code == "204"
    return False


def _detail(response: httpx.Response) -> Any:
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("detail") if isinstance(body, dict) else None


def test_no_public_endpoint_answers_5xx_and_none_opens_without_its_token(
    make_settings: Callable[..., Settings],
    fake_rasa: FakeRasa,
    db_path: Path,
    tracker_path: Path,
) -> None:
    rasa_tracker_db(tracker_path, {})  # a started Rasa's tracker store: /readyz is ready
    started = time.perf_counter()
    with start_blocking_portal(backend="asyncio") as portal:
        docs = {"api_docs": True} if "api_docs" in Settings.model_fields else {}
        context = running_app(make_settings(**docs), fake_rasa, db_path)
        with portal.wrap_async_context_manager(context) as harness:
            client = Client(portal, harness.app)
            try:
                run = Run(client, harness.app, public_endpoints(harness.app))
                run.sweep()
                swept = run.tally.total()
                run.fuzz()
            finally:
                portal.call(client.http.aclose)
    elapsed = time.perf_counter() - started
    tally, endpoints = run.tally, run.endpoints

    names = {str(e) for e in endpoints}
    assert {"POST /api/v1/conversations", "POST /api/v1/conversations/{conversation_id}/messages",
            "POST /api/v1/conversations/{conversation_id}/feedback"} <= names
    for endpoint in endpoints:
        key = str(endpoint)
        assert tally.calls[key] > (len(set(AUTH_KINDS)) if endpoint.on_conversation else 1), key
        if endpoint.on_conversation:
            assert set(AUTH_KINDS) <= set(tally.auth[key]), (key, tally.auth[key])
            assert tally.passed_auth[key] > 0, f"{key}: no request got past its token check"
    successes = sum(
        count for statuses in tally.statuses.values() for code, count in statuses.items()
        if 200 <= code < 300
    )
    assert successes >= tally.total() // 10, dict(tally.statuses)
    assert elapsed < TIME_BUDGET_S, f"the run took {elapsed:.0f} s"
    statuses = sum((Counter(s) for s in tally.statuses.values()), Counter())
    for key in sorted(tally.statuses):  # shown with -s, or when the test fails
        print(key, dict(sorted(tally.statuses[key].items())), dict(tally.auth[key]))
    print(
        f"\n{len(endpoints)} public endpoints: {swept} swept requests, "
        f"{tally.total() - swept} fuzzed, {elapsed:.1f} s; statuses "
        + ", ".join(f"{code}: {count}" for code, count in sorted(statuses.items()))
    )


def test_public_endpoints_are_read_from_the_app_and_leave_out_the_staff_console() -> None:
    from api.main import create_app

    endpoints = [str(e) for e in public_endpoints(create_app())]

    assert "GET /healthz" in endpoints and "GET /widget/..." in endpoints
    assert not [e for e in endpoints if " /staff" in e]
