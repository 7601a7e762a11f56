"""On a phone the chat is full-screen and the input stays above the on-screen keyboard."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chat_widget import ChatWidget
from conftest import Site, Traffic, open_context, screenshot
from playwright.sync_api import Browser, Page, expect

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser: Browser, traffic: Traffic) -> Iterator[Page]:
    context = open_context(
        browser, traffic, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.on("pageerror", lambda error: traffic.page_errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert traffic.page_errors == []


def test_phone_full_screen_and_input_visible(phone: Page, site: Site) -> None:
    phone.goto(site.api + "/")
    widget = ChatWidget(phone)
    widget.launcher.tap()
    expect(widget.panel).to_be_visible()
    box = widget.panel.bounding_box()
    assert box is not None
    assert (round(box["x"]), round(box["y"])) == (0, 0)
    assert (round(box["width"]), round(box["height"])) == (PHONE["width"], PHONE["height"])
    screenshot(phone, "14-phone-consent")

    phone.get_by_role("button", name="Agree and start").tap()
    expect(widget.assistant_messages.first).to_be_visible(timeout=30_000)
    widget.ask("does it hurt")
    screenshot(phone, "15-phone-answer")

    # The on-screen keyboard takes the lower part of the screen: the input stays in view.
    widget.input.focus()
    phone.set_viewport_size({"width": PHONE["width"], "height": 480})
    phone.wait_for_timeout(300)
    field = widget.input.bounding_box()
    send = widget.send_button.bounding_box()
    assert field is not None and send is not None
    assert field["y"] >= 0 and field["y"] + field["height"] <= 480
    assert send["y"] + send["height"] <= 480
    screenshot(phone, "16-phone-keyboard-open")
