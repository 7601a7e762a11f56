"""The script tag on a foreign clinic page: another origin, a strict CSP, hostile styles, and
every data- option. The widget works, looks like itself, and leaves the page alone."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from chat_widget import ChatWidget
from conftest import Site, Traffic, screenshot
from playwright.sync_api import BrowserContext, Page, expect

GLOBALS_BEFORE = "window.__globalsBefore = Object.getOwnPropertyNames(window);"
TEST_GLOBALS = {"__globalsBefore", "__cspViolations"}


def inside(page: Page, selector: str, prop: str) -> str:
    return str(
        page.evaluate(
            "([s, p]) => getComputedStyle(document.getElementById('meso-chat').shadowRoot"
            ".querySelector(s)).getPropertyValue(p)",
            [selector, prop],
        )
    )


def test_foreign_page_with_every_option(
    context: BrowserContext, page: Page, site: Site, traffic: Traffic
) -> None:
    context.add_init_script(GLOBALS_BEFORE)
    page.goto(site.host + "/index.html")
    widget = ChatWidget(page)

    # data-open: it opens by itself; data-title; data-lang="es" for the interface texts.
    expect(widget.panel).to_be_visible()
    expect(widget.panel.get_by_role("heading", level=2)).to_have_text("Pregunte sobre la mesoterapia")
    assert widget.panel.get_attribute("lang") == "es"
    expect(page.get_by_role("button", name="Agree and start")).to_have_count(0)
    # data-position="left"
    box = widget.panel.bounding_box()
    assert box is not None and box["x"] < 100

    # The host's styles do not reach in...
    assert inside(page, "button", "text-transform") == "none"
    assert "comic" not in inside(page, "button", "font-family").lower()
    assert inside(page, "[role=log]", "display") != "none"
    # ...and the widget's do not reach out.
    assert page.evaluate("getComputedStyle(document.getElementById('host-text')).color") == "rgb(0, 128, 0)"
    assert page.evaluate("getComputedStyle(document.getElementById('host-button')).textTransform") == "uppercase"

    # One global name, no matter how much it does.
    added = set(page.evaluate(
        "Object.getOwnPropertyNames(window).filter(n => !window.__globalsBefore.includes(n))"
    )) - TEST_GLOBALS
    assert added == {"MesoChat"}
    assert page.evaluate("typeof MesoChat.open + typeof MesoChat.close + typeof MesoChat.restart") == (
        "functionfunctionfunction"
    )

    # Cross-origin chat (CORS for MESO_WIDGET_ORIGINS) under the page's strict CSP.
    widget.panel.locator(".consent-yes").click()
    expect(widget.assistant_messages.first).to_be_visible(timeout=30_000)
    expect(page.get_by_role("log", name="Conversación")).to_be_visible()
    expect(page.get_by_role("textbox", name="Su mensaje")).to_be_enabled()
    widget.ask("how much does it cost")
    screenshot(page, "13-foreign-page-dark-left-spanish")

    api_host = urlsplit(site.api).netloc
    host_host = urlsplit(site.host).netloc
    assert traffic.hosts() <= {api_host, host_host}, traffic.hosts()

    # The page's own API: close and open again.
    page.evaluate("MesoChat.close()")
    expect(widget.panel).to_be_hidden()
    page.evaluate("MesoChat.open()")
    expect(widget.panel).to_be_visible()


def test_demo_page_talks_to_its_own_origin_only(page: Page, site: Site, traffic: Traffic) -> None:
    page.goto(site.api + "/")
    widget = ChatWidget(page)
    widget.start(consent=True)
    widget.ask("what is mesotherapy")
    assert traffic.hosts() == {urlsplit(site.api).netloc}
    requested = {urlsplit(url.split(" ")[-1]).path for url in traffic.urls}
    assert {"/widget/widget.js", "/widget/widget.css"} <= requested
    assert not [p for p in requested if re.search(r"\.(woff2?|ttf|png|jpe?g|gif)$", p)]


def test_auto_theme_follows_the_device(page: Page, site: Site) -> None:
    page.emulate_media(color_scheme="dark")
    page.goto(site.api + "/")  # the demo page sets no data-theme: "auto"
    widget = ChatWidget(page)
    widget.open()
    dark = inside(page, ".panel", "background-color")
    page.emulate_media(color_scheme="light")
    expect(widget.panel).not_to_have_css("background-color", dark)
    light = inside(page, ".panel", "background-color")
    page.emulate_media(color_scheme="dark")
    expect(widget.panel).to_have_css("background-color", dark)
    assert dark != light
