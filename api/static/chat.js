// Plain chat page for the public API v1. Bot text is rendered with textContent only,
// and nothing is kept in browser storage: the conversation id lives in this closure.
"use strict";

(function () {
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const sendButton = document.getElementById("send");
  const statusLine = document.getElementById("status");
  const errorLine = document.getElementById("error");
  let conversationId = null;
  let busy = false;

  function setBusy(value) {
    busy = value;
    statusLine.hidden = !value;
    input.disabled = value || conversationId === null;
    sendButton.disabled = value || conversationId === null;
    for (const button of log.querySelectorAll(".buttons button")) {
      button.disabled = value || button.dataset.stale === "1";
    }
  }

  function showError(text) {
    errorLine.textContent = text;
    errorLine.hidden = !text;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function addPatient(text) {
    const item = element("li", "patient");
    item.appendChild(element("span", "who", "You: "));
    item.appendChild(element("p", "text", text));
    log.appendChild(item);
    item.scrollIntoView({ block: "end" });
  }

  function addAssistant(message) {
    const item = element("li", "assistant");
    item.appendChild(element("span", "who", "Assistant: "));
    if (message.text) item.appendChild(element("p", "text", message.text));
    if (message.buttons && message.buttons.length) {
      const row = element("div", "buttons");
      for (const button of message.buttons) {
        const node = element("button", "", button.title);
        node.type = "button";
        node.addEventListener("click", function () {
          send(button.payload, button.title);
        });
        row.appendChild(node);
      }
      item.appendChild(row);
    }
    if (message.sources && message.sources.length) {
      const list = element("ul", "sources");
      list.setAttribute("aria-label", "Sources");
      for (const source of message.sources) {
        const entry = element("li");
        if (source.url && /^https?:\/\//i.test(source.url)) {
          const link = element("a", "", source.title);
          link.href = source.url;
          link.rel = "noopener noreferrer";
          link.target = "_blank";
          entry.appendChild(link);
        } else {
          entry.textContent = source.title;
        }
        list.appendChild(entry);
      }
      item.appendChild(list);
    }
    log.appendChild(item);
    item.scrollIntoView({ block: "end" });
  }

  async function call(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body || {}),
        cache: "no-store",
      });
    } catch (err) {
      throw new Error("The assistant could not be reached. Please check your connection and try again.");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : "Something went wrong (" + response.status + ").";
      throw new Error(detail);
    }
    return data;
  }

  async function start() {
    showError("");
    setBusy(true);
    try {
      const data = await call("/api/v1/conversations");
      conversationId = data.conversation_id;
      for (const message of data.messages) addAssistant(message);
    } catch (err) {
      showError(err.message);
    } finally {
      setBusy(false);
      if (conversationId !== null) input.focus();
    }
  }

  async function send(text, shownAs) {
    if (busy || conversationId === null) return;
    showError("");
    addPatient(shownAs || text);
    setBusy(true);
    try {
      const url = "/api/v1/conversations/" + encodeURIComponent(conversationId) + "/messages";
      const data = await call(url, { text: text });
      // Only the latest reply's buttons stay active: older ones are no longer offered.
      for (const button of log.querySelectorAll(".buttons button")) {
        button.dataset.stale = "1";
      }
      for (const message of data.messages) addAssistant(message);
    } catch (err) {
      showError(err.message);
    } finally {
      setBusy(false);
      input.focus();
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) {
      showError("Please type a question first.");
      return;
    }
    input.value = "";
    send(text);
  });

  start();
})();
