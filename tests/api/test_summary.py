"""The consultation summary routes: the printable page and the JSON document."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_fakes import Harness

from api.main import STATIC_DIR
from api.models import utcnow
from api.pages import TEMPLATES_DIR

pytestmark = pytest.mark.anyio

CSP = "default-src 'self'"
XSS = '<script>alert("x")</script>'
SOURCES_YML = """\
sources:
  - id: critical-review
    title: "Mesotherapy for Hair Loss: A Critical Examination"
    publisher: A hair-loss information website
    url: null
  - id: nhs
    title: "Hair loss & you"
    publisher: The NHS
    url: https://www.nhs.uk/conditions/hair-loss/
"""
SUMMARY: dict[str, Any] = {
    "title": "Your questions for the consultation",
    "generated_at": "2026-11-29T10:15:00Z",
    "sections": [
        {
            "heading": "What you told me matters most",
            "intro": "You rated these highest.\nThey shape the questions below.",
            "items": [
                {"text": "Cost over a full course", "sources": ["critical-review", "nhs"]},
                {"text": f"Item with markup {XSS}", "sources": ["chat-only", "unknown-src"]},
            ],
        },
        {"heading": f"Heading {XSS}", "intro": None, "items": []},
    ],
    "footer": "General information only; prepared by the clinic's assistant.",
}


def json_url(conversation_id: str) -> str:
    return f"/api/v1/conversations/{conversation_id}/summary.json"


def page_url(h: Harness, conversation_id: str, now: datetime | None = None) -> str:
    """A signed link to the conversation's page, as the chat hands them out."""
    return h.app.state.runtime.summary_links.url(conversation_id, now or utcnow())


@pytest.fixture
async def hs(start: Callable[..., Any], tmp_path: Path) -> AsyncIterator[Harness]:
    """The app with a small knowledge folder of its own (two sources)."""
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    (knowledge / "sources.yml").write_text(SOURCES_YML, encoding="utf-8")
    async with start(knowledge_dir=knowledge) as harness:
        yield harness


async def with_summary(h: Harness, summary: dict[str, Any] | None = None) -> str:
    """A conversation whose assistant cited one source and then made ``summary``."""
    conversation_id = await h.new_conversation()
    document = summary or SUMMARY

    def reply(sender: str, message: str, command: bool) -> dict[str, Any]:
        if message == "cite":
            custom = {
                "sources": [
                    {"id": "chat-only", "title": "Clinic leaflet", "url": "javascript:alert(1)"}
                ]
            }
            return {"messages": [{"text": "An answer.", "custom": custom}]}
        return {"messages": [{"text": "Here it is.", "custom": {"summary": document}}]}

    h.rasa.reply = reply
    for text in ("cite", "summary please"):
        response = await h.client.post(
            f"/api/v1/conversations/{conversation_id}/messages", json={"text": text}
        )
        assert response.status_code == 200
    return conversation_id


def assert_private(response: Any) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-robots-tag"] == "noindex"
    assert response.headers["content-security-policy"] == CSP
    for name in ("cache-control", "referrer-policy", "x-robots-tag"):
        assert len(response.headers.get_list(name)) == 1, name


# --- the page ------------------------------------------------------------------------------


async def test_page_shows_the_summary_escaped_with_sources_by_title(hs: Harness) -> None:
    conversation_id = await with_summary(hs)

    response = await hs.client.get(page_url(hs, conversation_id))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert_private(response)
    page = response.text
    assert "<script" not in page
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    assert page.count(escaped) == 2  # the item's text and the second heading
    assert f"<p class=\"item-text\">Item with markup {escaped}</p>" in page
    assert f"<h2>Heading {escaped}</h2>" in page
    assert "<title>Your questions for the consultation</title>" in page
    assert "<h1>Your questions for the consultation</h1>" in page
    assert '<time datetime="2026-11-29T10:15:00+00:00">29 November 2026, 10:15 UTC</time>' in page
    assert "Print or save as PDF" in page
    assert "You rated these highest.\nThey shape the questions below." in page
    # Sources: from sources.yml, from the answers cited in this chat, else as the bot sent them.
    sources = re.search(r'<section class="sources">(.*?)</section>', page, flags=re.S)
    assert sources is not None
    items = re.findall(r"<li>(.*?)</li>", sources.group(1), flags=re.S)
    assert items == [
        "Mesotherapy for Hair Loss: A Critical Examination "
        '<span class="publisher">(A hair-loss information website)</span>',
        '<a href="https://www.nhs.uk/conditions/hair-loss/">Hair loss &amp; you</a> '
        '<span class="publisher">(The NHS)</span>',
        "Clinic leaflet",  # its javascript: URL is never made a link
        "unknown-src",
    ]
    assert "javascript:" not in page
    # Each point names its sources by number and title (print shows the number only).
    words = re.sub(r"<[^>]+>", "", page)
    assert "[1] Mesotherapy for Hair Loss: A Critical Examination" in words
    assert "[3] Clinic leaflet" in words
    assert "General information only; prepared by the clinic&#39;s assistant." in page


async def test_every_bot_supplied_field_is_escaped(hs: Harness) -> None:
    hostile = {
        "title": f"T {XSS}",
        "generated_at": "2026-11-29T10:15:00Z",
        "sections": [
            {
                "heading": f"H {XSS}",
                "intro": f"I {XSS}",
                "items": [{"text": f'X {XSS} "quoted" \'single\'', "sources": [f"S {XSS}"]}],
            }
        ],
        "footer": f"F {XSS}",
    }
    conversation_id = await with_summary(hs, hostile)

    page = (await hs.client.get(page_url(hs, conversation_id))).text

    assert "<script" not in page and "alert(\"x\")" not in page
    assert page.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") == 8
    # title + h1, heading, intro, item text, item source, sources list, footer
    assert "&#34;quoted&#34; &#39;single&#39;" in page


async def test_page_is_404_before_a_summary_and_200_after(hs: Harness) -> None:
    conversation_id = await hs.new_conversation()

    before = await hs.client.get(page_url(hs, conversation_id))

    assert before.status_code == 404
    assert before.headers["content-type"].startswith("text/html")
    assert "This summary is not available" in before.text
    assert_private(before)
    conversation_id_with = await with_summary(hs)
    after = await hs.client.get(page_url(hs, conversation_id_with))
    assert after.status_code == 200


@pytest.mark.parametrize(
    "conversation_id",
    ["B" * 43, "not-an-id", "A" * 42, "A" * 129, "%3Cscript%3E" + "A" * 40],
    ids=["unknown", "malformed", "too short", "too long", "bad characters"],
)
async def test_page_is_the_same_friendly_404_for_any_other_id(
    hs: Harness, conversation_id: str
) -> None:
    await with_summary(hs)

    page = await hs.client.get(page_url(hs, conversation_id))
    document = await hs.client.get(json_url(conversation_id))

    assert page.status_code == 404 and "This summary is not available" in page.text
    assert "<script" not in page.text
    assert_private(page)
    assert document.status_code == 404 and list(document.json()) == ["detail"]
    assert document.headers["cache-control"] == "no-store"  # as every /api/ response


async def test_page_needs_no_inline_script_or_style_and_has_a_print_stylesheet(
    hs: Harness,
) -> None:
    conversation_id = await with_summary(hs)
    pages = [
        (await hs.client.get(page_url(hs, conversation_id))).text,
        (await hs.client.get(page_url(hs, "B" * 43))).text,
    ]
    for page in pages:
        assert "<script" not in page.lower() and "<style" not in page.lower()
        assert not re.search(r"\sstyle\s*=", page, flags=re.I)
        assert not re.search(r"\son[a-z]+\s*=", page, flags=re.I)
        assert '<html lang="en">' in page
        assert '<link rel="stylesheet" href="/static/summary.css">' in page
        assert '<link rel="stylesheet" href="/static/summary-print.css" media="print">' in page
        assert '<meta name="robots" content="noindex, nofollow">' in page
    for name in ("summary.css", "summary-print.css"):
        response = await hs.client.get(f"/static/{name}")
        assert response.status_code == 200 and "text/css" in response.headers["content-type"]
    print_css = (STATIC_DIR / "summary-print.css").read_text(encoding="utf-8")
    assert ".print-hint { display: none; }" in print_css


def test_templates_never_turn_off_escaping() -> None:
    for template in TEMPLATES_DIR.glob("*.html"):
        source = template.read_text(encoding="utf-8")
        for forbidden in ("|safe", "| safe", "autoescape false", "Markup"):
            assert forbidden not in source, (template.name, forbidden)


async def test_the_page_shows_the_latest_summary(hs: Harness) -> None:
    conversation_id = await with_summary(hs)
    second = {**SUMMARY, "title": "Updated summary"}
    hs.rasa.reply = lambda sender, message, command: {
        "messages": [{"text": "Updated.", "custom": {"summary": second}}]
    }
    await hs.client.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"text": "again"}
    )

    page = (await hs.client.get(page_url(hs, conversation_id))).text
    document = (await hs.client.get(json_url(conversation_id))).json()

    assert "<h1>Updated summary</h1>" in page
    assert document["title"] == "Updated summary"


async def test_missing_knowledge_folder_still_lists_sources_by_what_the_bot_sent(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    async with start(knowledge_dir=tmp_path / "nowhere") as h:
        conversation_id = await with_summary(h)
        page = (await h.client.get(page_url(h, conversation_id))).text

    words = re.sub(r"<[^>]+>", "", page)
    assert "[1] critical-review" in words
    assert "[3] Clinic leaflet" in words


async def test_the_shipped_knowledge_names_its_sources(start: Callable[..., Any]) -> None:
    async with start() as h:  # the repository's knowledge/sources.yml
        assert h.app.state.runtime.sources["critical-review"].title == (
            "Mesotherapy for Hair Loss: A Critical Examination"
        )


# --- the JSON document ---------------------------------------------------------------------


async def test_json_route_returns_the_stored_document(hs: Harness) -> None:
    conversation_id = await hs.new_conversation()

    missing = await hs.client.get(json_url(conversation_id))

    assert missing.status_code == 404
    assert missing.json()["detail"].startswith("This summary is not available.")
    assert_private(missing)

    conversation_id = await with_summary(hs)
    response = await hs.client.get(json_url(conversation_id))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert_private(response)
    # Every item gains an empty list of figures (the shares of people it quotes).
    sections = [
        {**section, "items": [{**item, "figures": []} for item in section["items"]]}
        for section in SUMMARY["sections"]
    ]
    assert response.json() == {**SUMMARY, "sections": sections, "generated_at": "2026-11-29T10:15:00Z"}


async def test_summaries_belong_to_their_conversation(hs: Harness) -> None:
    first = await with_summary(hs, {**SUMMARY, "title": "First patient"})
    second = await with_summary(hs, {**SUMMARY, "title": "Second patient"})

    assert (await hs.client.get(json_url(first))).json()["title"] == "First patient"
    assert (await hs.client.get(json_url(second))).json()["title"] == "Second patient"


# --- rate limit ----------------------------------------------------------------------------


async def test_summary_requests_are_rate_limited_per_client(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    async with start(rate_limit_summaries_per_minute=3) as h:
        conversation_id = await with_summary(h)
        statuses = [
            (await h.client.get(page_url(h, conversation_id))).status_code,
            (await h.client.get(page_url(h, "B" * 43))).status_code,  # guesses count too
            (await h.client.get(json_url(conversation_id))).status_code,
        ]
        page = await h.client.get(page_url(h, conversation_id))
        document = await h.client.get(json_url(conversation_id))
        chat = await h.client.post(
            f"/api/v1/conversations/{conversation_id}/messages", json={"text": "still here"}
        )

    assert statuses == [200, 404, 200]
    assert page.status_code == 429 and page.headers["content-type"].startswith("text/html")
    assert 1 <= int(page.headers["retry-after"]) <= 60
    assert "Too many requests" in page.text
    assert_private(page)
    assert document.status_code == 429 and list(document.json()) == ["detail"]
    assert 1 <= int(document.headers["retry-after"]) <= 60
    assert chat.status_code == 200  # the chat has limits of its own


# --- the signed link ----------------------------------------------------------------------


async def test_the_link_the_chat_gives_opens_the_page_without_any_secret(hs: Harness) -> None:
    conversation_id = await with_summary(hs)
    history = await hs.client.get(f"/api/v1/conversations/{conversation_id}/messages")
    link = history.json()["messages"][-1]["summary_url"]

    assert link.startswith(f"/api/v1/summaries/{conversation_id}.")
    assert hs.token(conversation_id) not in link
    # Opened as a new browser tab would: no Authorization header at all.
    page = await hs.client.get(link, auth=None)
    assert page.status_code == 200 and "<h1>Your questions for the consultation</h1>" in page.text


async def test_a_link_stops_working_when_it_expires(hs: Harness) -> None:
    conversation_id = await with_summary(hs)
    lifetime = hs.app.state.runtime.summary_links.lifetime
    assert lifetime == timedelta(hours=1)  # the default

    fresh = page_url(hs, conversation_id, utcnow() - lifetime + timedelta(minutes=1))
    stale = page_url(hs, conversation_id, utcnow() - lifetime - timedelta(seconds=5))

    assert (await hs.client.get(fresh)).status_code == 200
    expired = await hs.client.get(stale)
    assert expired.status_code == 404 and "This summary is not available" in expired.text


async def test_an_altered_link_opens_nothing(hs: Harness) -> None:
    first = await with_summary(hs)
    second = await with_summary(hs)
    link = page_url(hs, first)
    prefix, expires, signature = link.rsplit(".", 2)
    later = f"{prefix}.{int(expires) + 86400}.{signature}"
    other = link.replace(first, second)
    flipped = f"{prefix}.{expires}.{('A' if signature[0] != 'A' else 'B')}{signature[1:]}"

    for forged in (later, other, flipped, f"{prefix}.{expires}"):
        response = await hs.client.get(forged)
        assert response.status_code == 404, forged
        assert "First patient" not in response.text


async def test_a_link_signed_with_another_key_opens_nothing(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    async with start(link_secret="k" * 32) as first:
        conversation_id = await with_summary(first)
        link = page_url(first, conversation_id)
        assert (await first.client.get(link)).status_code == 200
    async with start(link_secret="k" * 32) as again:  # the same key: links survive a restart
        assert (await again.client.get(link)).status_code == 200
    async with start(link_secret="z" * 32) as other:
        assert (await other.client.get(link)).status_code == 404
