"""Everything by keyboard alone, with a visible focus indicator at every stop."""

from __future__ import annotations

from chat_widget import ChatWidget
from conftest import Site, screenshot
from playwright.sync_api import Page, expect

FOCUSED = """() => {
  let el = document.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const inWidget = el.getRootNode() !== document;
  return {
    inWidget,
    tag: el.tagName.toLowerCase(),
    name: (el.getAttribute('aria-label') || el.textContent || '').trim().slice(0, 80),
    quickReply: !!el.closest('.quick-replies'),
    inPanel: !!el.closest('[role=dialog]'),
    outline: style.outlineStyle !== 'none' ? parseFloat(style.outlineWidth) : 0,
    shadow: style.boxShadow !== 'none',
  };
}"""


def focused(page: Page) -> dict | None:
    return page.evaluate(FOCUSED)


def tab_until(page: Page, wanted, limit: int = 60, back: bool = False) -> dict:
    """Press Tab until ``wanted(focus)``; every widget control on the way shows its focus."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        focus = focused(page)
        if focus and focus["inWidget"]:
            assert focus["outline"] >= 2 or focus["shadow"], f"no visible focus on {focus}"
        if focus and wanted(focus):
            return focus
    raise AssertionError(f"never reached the wanted control; last focus {focused(page)}")


def test_keyboard_only_conversation(page: Page, site: Site) -> None:
    page.goto(site.api + "/")
    widget = ChatWidget(page)

    tab_until(page, lambda f: f["inWidget"] and f["name"] == "Open chat")
    screenshot(page, "08-keyboard-focus-on-launcher")
    page.keyboard.press("Enter")
    expect(widget.panel).to_be_visible()
    expect(widget.launcher).to_have_attribute("aria-expanded", "true")
    assert focused(page)["inPanel"], "opening moves focus into the panel"

    if focused(page)["name"] != "Agree and start":
        tab_until(page, lambda f: f["name"] == "Agree and start")
    page.keyboard.press("Enter")
    expect(widget.assistant_messages.first).to_be_visible(timeout=30_000)

    if focused(page)["tag"] != "textarea":
        tab_until(page, lambda f: f["tag"] == "textarea")
    before = widget.assistant_messages.count()
    page.keyboard.type("is it painful")
    page.keyboard.press("Enter")
    widget.wait_for_reply(before)
    expect(widget.patient_messages.last).to_have_text("is it painful")

    # Reach a quick reply by keyboard (backwards from the input) and press it.
    before = widget.assistant_messages.count()
    if not widget.quick_replies.count():
        widget.ask("hello")
        before = widget.assistant_messages.count()
        widget.input.focus()
    tab_until(page, lambda f: f["quickReply"], back=True)
    page.keyboard.press("Enter")
    widget.wait_for_reply(before)
    screenshot(page, "09-keyboard-quick-reply")

    page.keyboard.press("Escape")
    expect(widget.panel).to_be_hidden()
    focus = focused(page)
    assert focus and focus["name"] == "Open chat", "Escape returns focus to the launcher"
    expect(widget.launcher).to_have_attribute("aria-expanded", "false")
