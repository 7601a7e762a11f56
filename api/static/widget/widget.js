/*! Meso chat widget: one script tag, no framework, no build step.
 * Embedding guide: README.md beside this file. The only global is window.MesoChat.
 * Safety: every text from the API or the person goes through textContent / Text nodes;
 * links are made only for http(s) URLs; no inline style (CSSOM sets custom properties only).
 * Privacy: only the conversation id, its token and the consent choice go to sessionStorage,
 * never text. The token goes only in the Authorization header, never in a URL.
 */
(() => {
  "use strict";
  if (window.MesoChat) return;

  const VERSION = "1.0.0";
  const STORE_KEY = "meso-chat";
  const TIMEOUT_MS = 30000;
  const CALLBACK_TEXT = "I would like a callback"; // sent to the (English) assistant as is
  const SVG_NS = "http://www.w3.org/2000/svg";
  const DEFAULT_ACCENT = [11, 110, 105]; // #0b6e69, white text 6.1:1

  const script = document.currentScript;
  if (!script || !script.src) return;
  const scriptUrl = new URL(script.src, location.href);
  const opts = script.dataset;

  // ---------------------------------------------------------------- interface texts
  const TEXTS = {
    en: {
      title: "Ask about hair mesotherapy",
      open: "Open chat",
      log: "Conversation",
      close: "Close chat",
      restart: "Restart",
      contact: "Contact the clinic",
      contactRegion: "Clinic contact details",
      phone: "Phone",
      email: "Email",
      hours: "Opening hours",
      noContact: "The clinic's contact details are not available right now.",
      callback: "Request a callback",
      callbackFirst: "Start the chat first. Then you can ask for a callback here.",
      confirm: "Start a new chat? This chat will be cleared from this window.",
      confirmYes: "Yes, start again",
      cancel: "Cancel",
      who: "This is the automated assistant of {clinic}. It answers questions about mesotherapy for hair loss. It is a computer program, not a person.",
      advice: "It gives general information, not medical advice. It can't tell you if a treatment is right for you.",
      emergency: "It is not for emergencies. If you need urgent help, call {number} now.",
      defaultEmergency: "999 (UK), 112 (EU) or 911 (US)",
      privacyTitle: "Your privacy",
      privacyAgree: "If you agree, {clinic} keeps this chat: your messages, the answers and your ratings. Only clinic staff read it. They use it to check and improve the answers, and to follow up when you ask them to contact you.",
      privacyDecline: "If you start without saving, nothing is kept for staff. The assistant keeps a working copy only while you chat. It is deleted after {minutes} minutes without activity.",
      privacyPersonal: "Please don't type your name or contact details unless you want the clinic to contact you.",
      privacyDelete: "You can delete this chat at any time: use \"Delete this chat\" at the top.",
      deleteChat: "Delete this chat",
      deleteConfirm: "Delete this chat for good? Your messages, any callback request and your summary are erased, for the clinic too. This cannot be undone.",
      deleteYes: "Yes, delete it",
      deleted: "Your chat was deleted. You can start a new one.",
      deleteFailed: "Your chat could not be deleted. Please try again.",
      agree: "Agree and start",
      decline: "Start without saving",
      ended: "Your earlier chat has ended. You can start a new one.",
      noSave: "This chat is not saved. Ratings are off. After a reload, earlier messages come back only within {minutes} minutes of your last message.",
      someMinutes: "a few",
      theClinic: "the clinic",
      loading: "Loading your chat...",
      restoreFailed: "Your chat could not be loaded.",
      you: "You said:",
      assistant: "Assistant said:",
      urgent: "Urgent",
      sources: "Sources ({n})",
      rate: "Rate this answer",
      helpful: "Helpful",
      notHelpful: "Not helpful",
      summary: "Open your consultation summary",
      notSent: "Not sent",
      retry: "Retry",
      suggestions: "Suggested replies",
      typing: "The assistant is typing",
      offline: "Can't reach the assistant. Trying again... If it is urgent, call your local emergency number.",
      label: "Your message",
      placeholder: "Type your question",
      send: "Send",
      waitReply: "Please wait for the answer before you send more.",
      waitOffline: "You can send again when the assistant is back.",
      waitRate: "Please wait a moment, then press Retry.",
      empty: "Type a message first.",
      failed: "Something went wrong. Please try again.",
      feedbackFailed: "Your rating could not be saved. Please try again.",
      footer: "Information only, not medical advice. Emergency: call {number}.",
      newTab: "(opens in a new tab)",
    },
    es: {
      title: "Pregunte sobre la mesoterapia capilar",
      open: "Abrir el chat",
      log: "Conversación",
      close: "Cerrar el chat",
      restart: "Empezar de nuevo",
      contact: "Contactar con la clínica",
      contactRegion: "Datos de contacto de la clínica",
      phone: "Teléfono",
      email: "Correo",
      hours: "Horario",
      noContact: "Los datos de contacto de la clínica no están disponibles ahora.",
      callback: "Pedir que me llamen",
      callbackFirst: "Primero empiece el chat. Luego podrá pedir que le llamen desde aquí.",
      confirm: "¿Empezar un chat nuevo? Este chat se borrará de esta ventana.",
      confirmYes: "Sí, empezar de nuevo",
      cancel: "Cancelar",
      who: "Este es el asistente automático de {clinic}. Responde preguntas sobre la mesoterapia para la caída del cabello. Es un programa, no una persona.",
      advice: "Da información general, no consejo médico. No puede decirle si un tratamiento es adecuado para usted.",
      emergency: "No es para urgencias. Si necesita ayuda urgente, llame ahora al {number}.",
      defaultEmergency: "112 (UE), 999 (Reino Unido) o 911 (EE. UU.)",
      privacyTitle: "Su privacidad",
      privacyAgree: "Si acepta, {clinic} guarda este chat: sus mensajes, las respuestas y sus valoraciones. Solo lo lee el personal de la clínica. Lo usa para revisar y mejorar las respuestas, y para contactarle si usted lo pide.",
      privacyDecline: "Si empieza sin guardar, no se guarda nada para el personal. El asistente guarda una copia de trabajo solo mientras chatea. Se borra tras {minutes} minutos sin actividad.",
      privacyPersonal: "No escriba su nombre ni sus datos de contacto, salvo que quiera que la clínica le contacte.",
      privacyDelete: "Puede borrar este chat cuando quiera: use «Borrar este chat», arriba.",
      deleteChat: "Borrar este chat",
      deleteConfirm: "¿Borrar este chat para siempre? Se borran sus mensajes, cualquier petición de llamada y su resumen, también para la clínica. No se puede deshacer.",
      deleteYes: "Sí, borrarlo",
      deleted: "Su chat se ha borrado. Puede empezar uno nuevo.",
      deleteFailed: "No se pudo borrar su chat. Inténtelo de nuevo.",
      agree: "Aceptar y empezar",
      decline: "Empezar sin guardar",
      ended: "Su chat anterior ha terminado. Puede empezar uno nuevo.",
      noSave: "Este chat no se guarda. Las valoraciones están desactivadas. Si recarga la página, los mensajes anteriores vuelven solo durante {minutes} minutos desde su último mensaje.",
      someMinutes: "unos",
      theClinic: "la clínica",
      loading: "Cargando su chat...",
      restoreFailed: "No se pudo cargar su chat.",
      you: "Usted dijo:",
      assistant: "El asistente dijo:",
      urgent: "Urgente",
      sources: "Fuentes ({n})",
      rate: "Valore esta respuesta",
      helpful: "Útil",
      notHelpful: "No es útil",
      summary: "Abrir el resumen de su consulta",
      notSent: "No enviado",
      retry: "Reintentar",
      suggestions: "Respuestas sugeridas",
      typing: "El asistente está escribiendo",
      offline: "No se puede conectar con el asistente. Reintentando... Si es urgente, llame a su número local de emergencias.",
      label: "Su mensaje",
      placeholder: "Escriba su pregunta",
      send: "Enviar",
      waitReply: "Espere la respuesta antes de enviar más.",
      waitOffline: "Podrá enviar cuando el asistente vuelva.",
      waitRate: "Espere un momento y pulse Reintentar.",
      empty: "Escriba un mensaje primero.",
      failed: "Algo salió mal. Inténtelo de nuevo.",
      feedbackFailed: "No se pudo guardar su valoración. Inténtelo de nuevo.",
      footer: "Solo información, no consejo médico. Urgencias: llame al {number}.",
      newTab: "(se abre en una pestaña nueva)",
    },
  };
  const langCode = String(opts.lang || "en").toLowerCase().split("-")[0];
  const lang = Object.prototype.hasOwnProperty.call(TEXTS, langCode) ? langCode : "en";
  const T = TEXTS[lang];
  const fmt = (text, values) => text.replace(/\{(\w+)\}/g, (all, key) => (key in values ? String(values[key]) : all));

  // ---------------------------------------------------------------- options
  /** An http(s) URL as a string, or null for anything else (javascript:, data:, junk). */
  function safeUrl(value, base) {
    try {
      const url = base === undefined ? new URL(value) : new URL(value, base);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (err) {
      return null;
    }
  }
  const api = ((opts.api && safeUrl(opts.api.trim(), scriptUrl.href)) || scriptUrl.origin).replace(/\/+$/, "");
  const cssUrl = new URL("widget.css", scriptUrl).href;
  const title = (opts.title || "").trim() || T.title;
  const theme = ["light", "dark", "auto"].includes(opts.theme) ? opts.theme : "auto";
  const position = opts.position === "left" ? "left" : "right";

  // ---------------------------------------------------------------- small helpers
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) if (child !== null && child !== undefined && child !== false) el.append(child);
    return el;
  }
  const button = (attrs, ...children) => h("button", Object.assign({ type: "button" }, attrs), ...children);

  const ICONS = {
    chat: "M4 5h16v11H10l-5 4v-4H4z",
    close: "M6 6l12 12M18 6L6 18",
    restart: "M4.5 12a7.5 7.5 0 1 0 2.2-5.3M4 4v4h4",
    trash: "M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13M10 11v6M14 11v6",
    phone: "M6 3h3l2 5-2.5 1.5a11 11 0 0 0 6 6L16 13l5 2v3a2 2 0 0 1-2 2A16 16 0 0 1 4 5a2 2 0 0 1 2-2z",
    thumb: "M7 11v9H4v-9zM7 11l4-8c1.7 0 3 1.3 3 3v3h5a2 2 0 0 1 2 2.3l-1.2 7A2 2 0 0 1 17.8 20H7",
    alert: "M12 3l10 18H2zM12 10v5M12 18v.01",
    info: "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18zM12 11v6M12 7.5v.01",
  };
  function icon(name, flip) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "icon");
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", ICONS[name]);
    if (flip) path.setAttribute("transform", "rotate(180 12 12)");
    svg.append(path);
    return svg;
  }

  /** 22 characters of base64url from 16 random bytes: the message's retry key. */
  function newClientId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // WCAG relative luminance and contrast.
  function luminance(rgb) {
    const c = rgb.map((v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }
  function contrast(a, b) {
    const [x, y] = [luminance(a), luminance(b)].sort((m, n) => n - m);
    return (x + 0.05) / (y + 0.05);
  }
  /** The data-accent colour as opaque sRGB bytes, or null when absent, invalid or see-through. */
  function accentRgb(value) {
    if (!value || !window.CSS || !CSS.supports("color", value)) return null;
    const ctx = document.createElement("canvas").getContext("2d");
    if (!ctx) return null;
    ctx.fillStyle = value;
    ctx.fillRect(0, 0, 1, 1);
    const [r, g, b, a] = ctx.getImageData(0, 0, 1, 1).data;
    return a === 255 ? [r, g, b] : null;
  }
  /** Accent and its text colour: white or near-black, whichever reaches 4.5:1 (else the default). */
  function pickAccent(value) {
    const white = [255, 255, 255];
    const dark = [17, 17, 17];
    for (const rgb of [accentRgb(value), DEFAULT_ACCENT]) {
      if (!rgb) continue;
      const onWhite = contrast(rgb, white);
      const onDark = contrast(rgb, dark);
      if (Math.max(onWhite, onDark) >= 4.5) {
        return { accent: `rgb(${rgb.join(", ")})`, text: onWhite >= onDark ? "#ffffff" : "#111111" };
      }
    }
    return null;
  }

  // ---------------------------------------------------------------- storage (id + consent only)
  function loadStored() {
    try {
      const value = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
      if (value && typeof value.id === "string" && value.id && typeof value.token === "string" && value.token) {
        return { id: value.id, token: value.token, consent: value.consent === true };
      }
    } catch (err) {
      /* storage blocked or junk: start afresh */
    }
    return null;
  }
  function saveStored() {
    try {
      if (state.id) sessionStorage.setItem(STORE_KEY, JSON.stringify({ id: state.id, token: state.token, consent: state.consent === true }));
      else sessionStorage.removeItem(STORE_KEY);
    } catch (err) {
      /* storage blocked: the chat still works until the page is left */
    }
  }

  // ---------------------------------------------------------------- network
  class ApiError extends Error {
    constructor(status, detail, retryAfter) {
      super(detail);
      this.status = status; // 0: network failure or timeout
      this.retryAfter = retryAfter;
    }
  }
  async function request(method, path, body) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    const init = {
      method,
      headers: { Accept: "application/json" },
      signal: controller.signal,
      cache: "no-store",
      credentials: "omit",
      mode: "cors",
    };
    if (path.startsWith("/api/v1/conversations/") && state.token) {
      init.headers.Authorization = `Bearer ${state.token}`;
    }
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    try {
      let response;
      try {
        response = await fetch(api + path, init);
      } catch (err) {
        throw new ApiError(0, T.offline);
      }
      let data = null;
      if (response.status !== 204) {
        try {
          data = await response.json();
        } catch (err) {
          data = null;
        }
      }
      if (!response.ok) {
        const detail = data && typeof data.detail === "string" && data.detail ? data.detail : T.failed;
        const retryAfter = parseInt(response.headers.get("Retry-After") || "", 10);
        throw new ApiError(response.status, detail, Number.isFinite(retryAfter) ? retryAfter : 5);
      }
      return data;
    } finally {
      clearTimeout(timer);
    }
  }
  const conversationPath = (suffix) => `/api/v1/conversations/${encodeURIComponent(state.id)}${suffix}`;

  // ---------------------------------------------------------------- state
  const state = {
    id: null,
    token: null, // the conversation's secret: sent only as a header
    consent: null,
    config: null,
    configLoading: null,
    started: false,
    open: false,
    busy: false,
    starting: false,
    offline: false,
    polling: false,
    blockedUntil: 0,
    pendingRestore: false,
    generation: 0, // bumped by restart: late answers of a forgotten chat are dropped
    quick: [], // the latest batch's buttons
  };

  // ---------------------------------------------------------------- DOM
  const host = h("div", { id: "meso-chat" });
  const shadow = host.attachShadow({ mode: "open" });
  const root = h("div", { class: `root pos-${position}`, lang, hidden: true });
  // "auto" follows the device's colour scheme, also when it changes while the page is open.
  const darkScheme = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  const applyTheme = () =>
    root.classList.toggle("theme-dark", theme === "dark" || (theme === "auto" && !!darkScheme && darkScheme.matches));
  applyTheme();
  if (theme === "auto" && darkScheme && darkScheme.addEventListener) darkScheme.addEventListener("change", applyTheme);
  const accent = pickAccent(opts.accent);
  if (accent) {
    root.style.setProperty("--meso-accent", accent.accent);
    root.style.setProperty("--meso-on-accent", accent.text);
  }

  const launcher = button(
    { class: "launcher", "aria-label": T.open, "aria-expanded": "false", "aria-controls": "meso-panel", title: T.open },
    icon("chat"),
  );

  const titleEl = h("h2", { id: "meso-title", class: "title" }, title);
  const contactButton = button(
    { class: "btn-contact", "aria-expanded": "false", "aria-controls": "meso-contact", onclick: () => toggleContact() },
    icon("phone"),
    h("span", {}, T.contact),
  );
  const restartButton = button(
    { class: "icon-btn", "aria-label": T.restart, title: T.restart, "aria-expanded": "false", "aria-controls": "meso-confirm", onclick: () => askRestart() },
    icon("restart"),
  );
  const deleteButton = button(
    { class: "btn-contact btn-delete", hidden: true, "aria-expanded": "false", "aria-controls": "meso-delete", onclick: () => askDelete() },
    icon("trash"),
    h("span", {}, T.deleteChat),
  );
  const closeButton = button({ class: "icon-btn", "aria-label": T.close, title: T.close, onclick: () => close(true) }, icon("close"));
  const header = h(
    "div",
    { class: "head" },
    h("div", { class: "head-row" }, titleEl, restartButton, closeButton),
    h("div", { class: "head-row" }, contactButton, deleteButton),
  );
  const noSaveNote = h("p", { class: "note-nosave", hidden: true });

  const contactBody = h("div", { class: "contact-body" });
  const contactRegion = h("section", { class: "contact", id: "meso-contact", "aria-label": T.contactRegion, hidden: true }, contactBody);

  const confirmYes = button({ class: "btn btn-primary", onclick: () => { hideConfirm(); restart(); } }, T.confirmYes);
  const confirmNo = button({ class: "btn btn-secondary", onclick: () => { hideConfirm(); restartButton.focus(); } }, T.cancel);
  const confirmText = h("p", { id: "meso-confirm-text" }, T.confirm);
  const confirmBox = h(
    "div",
    { class: "confirm", id: "meso-confirm", role: "group", "aria-labelledby": "meso-confirm-text", hidden: true },
    confirmText,
    h("div", { class: "btn-row" }, confirmYes, confirmNo),
  );

  const deleteYes = button({ class: "btn btn-primary", onclick: () => deleteConversation() }, T.deleteYes);
  const deleteNo = button({ class: "btn btn-secondary", onclick: () => { hideDelete(); deleteButton.focus(); } }, T.cancel);
  const deleteBox = h(
    "div",
    { class: "confirm", id: "meso-delete", role: "group", "aria-labelledby": "meso-delete-text", hidden: true },
    h("p", { id: "meso-delete-text" }, T.deleteConfirm),
    h("div", { class: "btn-row" }, deleteYes, deleteNo),
  );

  const banner = h("div", { class: "banner-offline", role: "status" });

  const introNote = h("p", { class: "intro-note", hidden: true });
  const introText = h("div", { class: "intro-text" });
  const agreeButton = button({ class: "btn btn-primary consent-yes", onclick: () => startConversation(true) }, T.agree);
  const declineButton = button({ class: "btn btn-secondary consent-no", onclick: () => startConversation(false) }, T.decline);
  const intro = h("div", { class: "intro", hidden: true }, introNote, introText, h("div", { class: "consent" }, agreeButton, declineButton));

  const log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": T.log });
  const loadingNote = h("p", { class: "loading", hidden: true });
  const restoreRetry = button({ class: "btn btn-secondary", hidden: true, onclick: () => restore() }, T.retry);
  const typingStatus = h("div", { class: "typing-status", role: "status" }); // holds .typing while waiting
  const quickReplies = h("div", { class: "quick-replies", role: "group", "aria-label": T.suggestions });
  const chat = h("div", { class: "chat", hidden: true }, loadingNote, restoreRetry, log, typingStatus, quickReplies);
  const scroller = h("div", { class: "body" }, intro, chat);

  const errorEl = h("div", { class: "error", role: "alert" });
  const composerNote = h("p", { class: "composer-note", id: "meso-composer-note", "aria-live": "polite" });
  const input = h("textarea", {
    id: "meso-input",
    rows: "1",
    placeholder: T.placeholder,
    "aria-describedby": "meso-composer-note",
    autocomplete: "off",
  });
  const sendButton = h("button", { type: "submit", class: "btn btn-primary send" }, T.send);
  const form = h(
    "form",
    { class: "composer", hidden: true },
    h("label", { for: "meso-input", class: "sr-only" }, T.label),
    input,
    sendButton,
  );
  const footer = h("p", { class: "foot" });

  const panel = h(
    "div",
    { class: "panel", id: "meso-panel", role: "dialog", "aria-labelledby": "meso-title", lang, hidden: true },
    header,
    noSaveNote,
    contactRegion,
    confirmBox,
    deleteBox,
    banner,
    scroller,
    errorEl,
    composerNote,
    form,
    footer,
  );
  root.append(launcher, panel);

  let resolveStyled;
  const styled = new Promise((resolve) => (resolveStyled = resolve));
  const link = h("link", { rel: "stylesheet", href: cssUrl });
  link.addEventListener("load", () => {
    root.hidden = false;
    resolveStyled();
  });
  shadow.append(link, root);

  // ---------------------------------------------------------------- texts that depend on the config
  const clinicName = () => (state.config && state.config.clinic.name) || T.theClinic;
  const emergencyNumber = () => (state.config && state.config.emergency_number) || T.defaultEmergency;
  const idleMinutes = () => (state.config ? state.config.transcript_idle_minutes : T.someMinutes);

  /** The notice is built only while it shows (hidden parts hold no stale links). */
  function renderIntro() {
    if (intro.hidden) {
      introText.replaceChildren();
      return;
    }
    introText.replaceChildren(
      h("p", { class: "intro-who" }, fmt(T.who, { clinic: clinicName() })),
      h("p", {}, T.advice),
      h("p", { class: "intro-emergency" }, icon("alert"), h("span", {}, fmt(T.emergency, { number: emergencyNumber() }))),
      h(
        "section",
        { class: "privacy", "aria-labelledby": "meso-privacy-title" },
        h("h3", { id: "meso-privacy-title" }, T.privacyTitle),
        h("p", {}, fmt(T.privacyAgree, { clinic: clinicName() })),
        h("p", {}, fmt(T.privacyDecline, { minutes: idleMinutes() })),
        h("p", {}, T.privacyPersonal),
        h("p", {}, T.privacyDelete, contactLine()),
      ),
    );
  }

  function renderConfigTexts() {
    renderIntro();
    noSaveNote.replaceChildren(icon("info"), h("span", {}, fmt(T.noSave, { minutes: idleMinutes() })));
    footer.textContent = fmt(T.footer, { number: emergencyNumber() });
    if (state.config && state.config.max_text_chars > 0) input.maxLength = state.config.max_text_chars;
    renderContact();
  }

  function phoneLink(phone) {
    const digits = phone.replace(/[^\d+]/g, "");
    return digits ? h("a", { href: `tel:${digits}` }, phone) : phone;
  }
  function emailLink(email) {
    return /^[^\s@<>()"',;:]+@[^\s@<>()"',;:]+\.[^\s@<>()"',;:]+$/.test(email) ? h("a", { href: `mailto:${email}` }, email) : email;
  }
  function contactLine() {
    const clinic = state.config && state.config.clinic;
    if (!clinic || (!clinic.phone && !clinic.email)) return null;
    const span = h("span", {}, " ");
    if (clinic.phone) span.append(phoneLink(clinic.phone));
    if (clinic.phone && clinic.email) span.append(" · ");
    if (clinic.email) span.append(emailLink(clinic.email));
    return span;
  }

  function renderContact() {
    if (contactRegion.hidden) {
      contactBody.replaceChildren();
      return;
    }
    const clinic = state.config && state.config.clinic;
    const parts = [h("p", { class: "contact-name" }, clinicName())];
    if (clinic && (clinic.phone || clinic.email || clinic.hours)) {
      const list = h("dl", {});
      if (clinic.phone) list.append(h("dt", {}, T.phone), h("dd", {}, phoneLink(clinic.phone)));
      if (clinic.email) list.append(h("dt", {}, T.email), h("dd", {}, emailLink(clinic.email)));
      if (clinic.hours) list.append(h("dt", {}, T.hours), h("dd", {}, clinic.hours));
      parts.push(list);
      if (clinic.booking) parts.push(h("p", {}, clinic.booking));
    } else {
      parts.push(h("p", {}, T.noContact));
    }
    if (state.id) parts.push(button({ class: "btn btn-primary", onclick: requestCallback }, T.callback));
    else parts.push(h("p", { class: "muted" }, T.callbackFirst));
    const hadFocus = shadow.activeElement && contactBody.contains(shadow.activeElement);
    contactBody.replaceChildren(...parts);
    if (hadFocus) contactButton.focus();
  }

  function toggleContact(show) {
    const visible = show === undefined ? contactRegion.hidden : show;
    contactRegion.hidden = !visible;
    contactButton.setAttribute("aria-expanded", String(visible));
    renderContact();
    if (visible) loadConfig();
  }

  function requestCallback() {
    if (send(CALLBACK_TEXT)) {
      toggleContact(false);
      input.focus();
    }
  }

  // ---------------------------------------------------------------- open / close
  /** Open the panel; focus moves into it unless it opened by itself (data-open) on page load. */
  async function open(moveFocus = true) {
    await styled;
    if (!state.open) {
      state.open = true;
      panel.hidden = false;
      launcher.setAttribute("aria-expanded", "true");
      root.classList.add("is-open");
      start();
      updateModal();
      fitViewport();
    }
    if (moveFocus) focusFirst();
  }

  function close(returnFocus) {
    if (!state.open) return;
    const hadFocus = shadow.activeElement !== null;
    state.open = false;
    hideConfirm();
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    root.classList.remove("is-open");
    if (returnFocus || hadFocus) launcher.focus();
  }

  function focusFirst() {
    if (!state.open) return;
    if (!intro.hidden) agreeButton.focus({ preventScroll: true }); // the buttons stick to the bottom
    else if (!form.hidden) input.focus();
    else closeButton.focus();
  }

  launcher.addEventListener("click", () => (state.open ? close(true) : open()));

  // Phones: the panel fills the screen, so it behaves as a modal (focus stays inside).
  const phone = window.matchMedia("(max-width: 600px)");
  function updateModal() {
    if (phone.matches && state.open) panel.setAttribute("aria-modal", "true");
    else panel.removeAttribute("aria-modal");
  }
  if (phone.addEventListener) phone.addEventListener("change", updateModal);

  function focusables() {
    return [...panel.querySelectorAll("button, a[href], textarea, summary, input")].filter(
      (el) => !el.disabled && el.getClientRects().length > 0,
    );
  }
  // Focus lost to the page body (a pressed control went away): Escape still closes the chat.
  document.addEventListener("keydown", (event) => {
    const active = document.activeElement;
    if (event.key === "Escape" && state.open && (!active || active === document.body)) close(true);
  });
  root.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.open && !event.isComposing) {
      event.preventDefault();
      close(true);
      return;
    }
    if (event.key === "Tab" && state.open && phone.matches) {
      const items = focusables();
      if (!items.length) return;
      const first = items[0];
      const last = items[items.length - 1];
      const active = shadow.activeElement;
      if (event.shiftKey && (active === first || !panel.contains(active))) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && active === last) {
        event.preventDefault();
        first.focus();
      }
    }
  });

  // The on-screen keyboard shrinks the visual viewport: keep the input above it.
  function fitViewport() {
    const vv = window.visualViewport;
    if (!vv) return;
    root.style.setProperty("--meso-vv-height", `${Math.round(vv.height)}px`);
    root.style.setProperty("--meso-vv-top", `${Math.round(vv.offsetTop)}px`);
  }
  if (window.visualViewport) {
    window.visualViewport.addEventListener("resize", fitViewport);
    window.visualViewport.addEventListener("scroll", fitViewport);
  }

  // ---------------------------------------------------------------- views
  function showIntro(note) {
    deleteButton.hidden = true;
    hideDelete();
    intro.hidden = false;
    chat.hidden = true;
    form.hidden = true;
    noSaveNote.hidden = true;
    introNote.hidden = !note;
    introNote.textContent = note || "";
    renderIntro();
    scroller.scrollTop = 0;
    renderContact();
  }

  function showChat() {
    deleteButton.hidden = !state.id;
    intro.hidden = true;
    renderIntro();
    chat.hidden = false;
    form.hidden = false;
    noSaveNote.hidden = state.consent !== false;
    renderContact();
  }

  function showLoading(text, withRetry) {
    loadingNote.textContent = text || "";
    loadingNote.hidden = !text;
    restoreRetry.hidden = !withRetry;
  }

  function showError(text) {
    errorEl.textContent = text || "";
  }

  function setNote(text) {
    composerNote.textContent = text || "";
  }

  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  // When the log area shrinks (banner, notes, on-screen keyboard) and its end was in view, keep it so.
  let lastHeight = 0;
  if (window.ResizeObserver) {
    new ResizeObserver(() => {
      const shrink = lastHeight - scroller.clientHeight;
      lastHeight = scroller.clientHeight;
      const gap = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
      if (shrink > 0 && intro.hidden && gap <= shrink + 24) scrollToBottom();
    }).observe(scroller);
  }

  function scrollToMessage(el) {
    // The start of a long reply stays in view; a short one scrolls to the end.
    scroller.scrollTop = Math.max(0, Math.min(el.offsetTop - 8, scroller.scrollHeight - scroller.clientHeight));
  }

  function setTyping(on) {
    if (on) {
      typingStatus.replaceChildren(
        h(
          "div",
          { class: "typing" },
          h("span", {}, T.typing),
          h("span", { class: "dots", "aria-hidden": "true" }, h("span", {}), h("span", {}), h("span", {})),
        ),
      );
      scrollToBottom();
    } else {
      typingStatus.replaceChildren();
    }
  }

  function updateSendState() {
    const blocked = state.busy || state.offline || Date.now() < state.blockedUntil;
    sendButton.setAttribute("aria-disabled", String(blocked));
    if (!blocked) setNote("");
    for (const b of quickReplies.querySelectorAll("button")) b.setAttribute("aria-disabled", String(blocked));
  }

  /** Why sending is not possible now, or "" when it is. */
  function blockedReason() {
    if (state.offline) return T.waitOffline;
    if (state.busy) return T.waitReply;
    if (Date.now() < state.blockedUntil) return T.waitRate;
    return "";
  }

  // ---------------------------------------------------------------- messages
  /** Bot text with http(s) URLs as links (trailing punctuation left outside). */
  function richText(text) {
    const p = h("p", { class: "msg-text" });
    const pattern = /\bhttps?:\/\/[^\s<>"']+/gi;
    let last = 0;
    let match;
    while ((match = pattern.exec(text)) !== null) {
      let url = match[0];
      for (;;) {
        const trimmed = url.replace(/[.,;:!?*]+$/, "");
        const unbalanced = /\)$/.test(trimmed) && (trimmed.match(/\(/g) || []).length < (trimmed.match(/\)/g) || []).length;
        const next = unbalanced ? trimmed.slice(0, -1) : trimmed;
        if (next === url) break;
        url = next;
      }
      const href = safeUrl(url);
      p.append(text.slice(last, match.index));
      p.append(href ? externalLink(href, url) : url);
      last = match.index + url.length;
      pattern.lastIndex = last;
    }
    p.append(text.slice(last));
    return p;
  }

  function externalLink(href, label) {
    return h("a", { href, target: "_blank", rel: "noopener noreferrer" }, label, h("span", { class: "sr-only" }, ` ${T.newTab}`));
  }

  function addPatient(text) {
    const el = h("div", { class: "msg msg-patient", "data-speaker": T.you }, h("p", { class: "msg-text" }, text));
    log.append(el);
    scrollToBottom();
    return el;
  }

  function addAssistant(message) {
    const el = h("div", { class: message.red_flag ? "msg msg-assistant msg-urgent" : "msg msg-assistant", "data-speaker": T.assistant });
    if (message.red_flag) el.append(h("p", { class: "urgent-label" }, icon("alert"), h("span", {}, T.urgent)));
    if (message.text) {
      const text = richText(String(message.text));
      if (lang !== "en") text.setAttribute("lang", "en");
      el.append(text);
    }
    const figures = Array.isArray(message.figures) ? message.figures : [];
    for (const figure of figures.slice(0, 20)) {
      const array = iconArray(figure);
      if (array) el.append(array);
    }
    const sources = Array.isArray(message.sources) ? message.sources : [];
    if (sources.length) {
      const list = h("ul", {});
      for (const source of sources) {
        const name = String(source.title || source.id || "");
        const href = source.url ? safeUrl(String(source.url)) : null;
        list.append(h("li", {}, href ? externalLink(href, name) : name));
      }
      el.append(h("details", { class: "sources" }, h("summary", {}, fmt(T.sources, { n: sources.length })), list));
    }
    if (typeof message.summary_url === "string" && message.summary_url) {
      const path = message.summary_url;
      const href = path.startsWith("/") && !path.startsWith("//") ? safeUrl(api + path) : safeUrl(path);
      if (href) el.append(h("p", { class: "summary-link" }, externalLink(href, T.summary)));
    }
    if (message.id) el.append(feedbackRow(String(message.id), message.feedback || null));
    log.append(el);
    return el;
  }

  /** A share of people as 100 marks (10 by 10), the first per_100 filled: role="img" with the
   * text alternative as its name; the caption repeats it visibly, so it is hidden from readers. */
  function iconArray(figure) {
    if (!figure || typeof figure !== "object") return null;
    const n = figure.per_100;
    const alt = typeof figure.alt === "string" ? figure.alt.trim() : "";
    if (!Number.isInteger(n) || n < 0 || n > 100 || !alt) return null;
    const label = typeof figure.label === "string" && figure.label.trim() ? figure.label.trim() : alt;
    const grid = h("div", { class: "icon-array", role: "img", "aria-label": alt });
    for (let i = 0; i < 100; i++) grid.append(h("span", { class: i < n ? "mark on" : "mark" }));
    const wrapper = h("div", { class: "figure" }, h("p", { class: "figure-label", "aria-hidden": "true" }, label), grid);
    if (lang !== "en") wrapper.setAttribute("lang", "en"); // the assistant's words are English
    return wrapper;
  }

  function feedbackRow(messageId, initial) {
    let rating = initial === "up" || initial === "down" ? initial : null;
    let pending = false;
    const make = (value, label) =>
      button({ class: "icon-btn fb", "aria-label": label, title: label, "aria-pressed": String(rating === value), onclick: () => rate(value) }, icon("thumb", value === "down"));
    const up = make("up", T.helpful);
    const down = make("down", T.notHelpful);
    const paint = () => {
      up.setAttribute("aria-pressed", String(rating === "up"));
      down.setAttribute("aria-pressed", String(rating === "down"));
    };
    async function rate(value) {
      if (pending || !state.id) return;
      const before = rating;
      rating = rating === value ? null : value;
      paint();
      pending = true;
      try {
        await request("POST", conversationPath("/feedback"), { message_id: messageId, rating });
        showError("");
      } catch (err) {
        rating = before;
        paint();
        if (err.status === 0) goOffline();
        else showError(err.status === 404 || err.status === 422 ? T.feedbackFailed : err.message);
      } finally {
        pending = false;
      }
    }
    return h("div", { class: "feedback", role: "group", "aria-label": T.rate }, up, down);
  }

  function setQuickReplies(buttons) {
    state.quick = buttons;
    quickReplies.replaceChildren(
      ...buttons.map((b) =>
        button({ class: "quick", onclick: () => send(String(b.payload), String(b.title)) && input.focus() }, String(b.title)),
      ),
    );
    updateSendState();
  }

  /** Draw a batch of messages; the trailing assistant messages' buttons become the quick replies. */
  function renderBatch(messages, history) {
    let first = null;
    let buttons = [];
    for (const message of messages || []) {
      if (message.role === "patient") {
        addPatient(String(message.text || ""));
        buttons = [];
        continue;
      }
      const el = addAssistant(message);
      first = first || el;
      const seen = new Set(buttons.map((b) => b.payload));
      for (const b of message.buttons || []) {
        if (b && typeof b.payload === "string" && !seen.has(b.payload)) {
          seen.add(b.payload);
          buttons.push(b);
        }
      }
    }
    setQuickReplies(buttons);
    if (history || !first) scrollToBottom();
    else scrollToMessage(first);
  }

  // ---------------------------------------------------------------- conversation
  function start() {
    if (state.started) return;
    state.started = true;
    loadConfig();
    if (state.id) restore();
    else showIntro();
  }

  function loadConfig() {
    if (state.config) return Promise.resolve();
    if (!state.configLoading) {
      state.configLoading = request("GET", "/api/v1/widget/config")
        .then((data) => {
          const clinic = (data && data.clinic) || {};
          const text = (v) => (typeof v === "string" && v.trim() ? v.trim() : null);
          state.config = {
            clinic: { name: text(clinic.name), phone: text(clinic.phone), email: text(clinic.email), hours: text(clinic.hours), booking: text(clinic.booking) },
            emergency_number: text(data && data.emergency_number),
            transcript_idle_minutes: Number.isInteger(data && data.transcript_idle_minutes) ? data.transcript_idle_minutes : T.someMinutes,
            max_text_chars: Number.isInteger(data && data.max_text_chars) ? data.max_text_chars : 0,
          };
          renderConfigTexts();
        })
        .catch((err) => {
          if (err.status === 0) goOffline();
        })
        .finally(() => {
          state.configLoading = null;
        });
    }
    return state.configLoading;
  }

  async function startConversation(consent) {
    if (state.starting) return;
    state.starting = true;
    intro.setAttribute("aria-busy", "true");
    showError("");
    const generation = state.generation;
    try {
      const data = await request("POST", "/api/v1/conversations", { consent });
      if (generation !== state.generation) return;
      state.id = String(data.conversation_id);
      state.token = String(data.token);
      state.consent = data.consent === true;
      saveStored();
      log.replaceChildren();
      showLoading("");
      showChat();
      renderBatch(data.messages, false);
      if (state.open) input.focus();
    } catch (err) {
      if (err.status === 0) goOffline();
      else showError(err.message);
    } finally {
      state.starting = false;
      intro.removeAttribute("aria-busy");
    }
  }

  async function restore() {
    if (!state.id) return;
    const generation = state.generation;
    state.pendingRestore = false;
    showChat();
    showLoading(T.loading, false);
    chat.setAttribute("aria-busy", "true");
    try {
      const data = await request("GET", conversationPath("/messages"));
      if (generation !== state.generation) return;
      state.consent = data.consent === true;
      saveStored();
      showChat();
      showLoading("");
      log.replaceChildren();
      renderBatch(data.messages, true);
    } catch (err) {
      if (generation !== state.generation) return;
      if (err.status === 404) {
        forget();
        showLoading("");
        showIntro(T.ended);
        if (state.open) focusFirst();
      } else if (err.status === 0) {
        state.pendingRestore = true;
        goOffline();
      } else {
        showLoading(T.restoreFailed, true);
        showError(err.message);
      }
    } finally {
      chat.removeAttribute("aria-busy");
    }
  }

  function forget() {
    state.id = null;
    state.token = null;
    state.consent = null;
    saveStored();
  }

  /** Send a text (a typed message, a button payload, or a retry). False when sending is blocked. */
  function send(text, shown, retryItem) {
    if (!state.id) return false;
    const reason = blockedReason();
    if (reason) {
      setNote(reason);
      return false;
    }
    const item = retryItem || { text, shown: shown || text, clientId: newClientId(), el: addPatient(shown || text) };
    if (retryItem) {
      item.el.classList.remove("msg-failed");
      if (item.failRow) item.failRow.remove();
    }
    const buttonsBefore = state.quick;
    setQuickReplies([]);
    showError("");
    state.busy = true;
    updateSendState();
    setTyping(true);
    const generation = state.generation;
    request("POST", conversationPath("/messages"), { text: item.text, client_id: item.clientId })
      .then((data) => {
        if (generation !== state.generation) return;
        state.busy = false;
        setTyping(false);
        renderBatch(data.messages, false);
      })
      .catch((err) => {
        if (generation !== state.generation) return;
        state.busy = false;
        setTyping(false);
        sendFailed(err, item, buttonsBefore);
      })
      .finally(() => {
        if (generation === state.generation) updateSendState();
      });
    return true;
  }

  function putBack(item) {
    if (item.text === item.shown && !input.value.trim()) input.value = item.text;
  }

  function sendFailed(err, item, buttonsBefore) {
    if (err.status === 404) {
      item.el.remove();
      putBack(item);
      forget();
      log.replaceChildren();
      setQuickReplies([]);
      showIntro(T.ended);
      if (state.open) focusFirst();
    } else if (err.status === 413 || err.status === 422) {
      item.el.remove();
      putBack(item);
      setQuickReplies(buttonsBefore);
      showError(err.message);
      if (state.open) input.focus();
    } else {
      const wait = err.status === 429 ? Math.max(1, err.retryAfter) : 0;
      markFailed(item, wait);
      if (err.status === 0) goOffline();
      else showError(err.message);
      if (wait) {
        state.blockedUntil = Date.now() + wait * 1000;
        setTimeout(updateSendState, wait * 1000 + 50);
      }
    }
  }

  function markFailed(item, waitSeconds) {
    item.el.classList.add("msg-failed");
    const retry = button(
      { class: "btn btn-small", onclick: () => item.el.isConnected && send(item.text, item.shown, item) && input.focus() },
      T.retry,
    );
    if (waitSeconds) {
      retry.disabled = true;
      setTimeout(() => {
        retry.disabled = false;
      }, waitSeconds * 1000 + 50);
    }
    item.failRow = h("p", { class: "fail-row" }, h("span", { class: "fail-label" }, icon("alert"), h("span", {}, T.notSent)), retry);
    item.el.append(item.failRow);
    scrollToBottom();
  }

  // ---------------------------------------------------------------- offline and recovery
  function goOffline() {
    if (!state.offline) {
      state.offline = true;
      banner.textContent = T.offline;
      updateSendState();
    }
    if (!state.polling) {
      state.polling = true;
      poll(1000);
    }
  }

  function poll(delay) {
    setTimeout(async () => {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
      let up = false;
      try {
        const response = await fetch(`${api}/healthz`, { cache: "no-store", credentials: "omit", signal: controller.signal });
        up = response.ok;
      } catch (err) {
        up = false;
      } finally {
        clearTimeout(timer);
      }
      if (up) backOnline();
      else poll(Math.min(delay * 2, 10000));
    }, delay);
  }

  function backOnline() {
    state.polling = false;
    state.offline = false;
    banner.textContent = "";
    updateSendState();
    if (state.started) loadConfig();
    if (state.pendingRestore) restore();
  }

  // ---------------------------------------------------------------- restart
  function askRestart() {
    hideDelete();
    confirmBox.hidden = false;
    restartButton.setAttribute("aria-expanded", "true");
    confirmNo.focus();
  }

  function hideConfirm() {
    confirmBox.hidden = true;
    restartButton.setAttribute("aria-expanded", "false");
  }

  function restart() {
    state.generation += 1;
    state.busy = false;
    state.blockedUntil = 0;
    state.pendingRestore = false;
    forget();
    hideConfirm();
    log.replaceChildren();
    setTyping(false);
    setQuickReplies([]);
    showLoading("");
    showError("");
    setNote("");
    state.started = true;
    loadConfig();
    showIntro();
    if (state.open) focusFirst();
  }

  // ---------------------------------------------------------------- delete
  function askDelete() {
    hideConfirm();
    deleteBox.hidden = false;
    deleteButton.setAttribute("aria-expanded", "true");
    deleteNo.focus();
  }

  function hideDelete() {
    deleteBox.hidden = true;
    deleteButton.setAttribute("aria-expanded", "false");
  }

  async function deleteConversation() {
    if (!state.id || state.deleting) return;
    state.deleting = true;
    deleteYes.disabled = true;
    showError("");
    try {
      await request("DELETE", conversationPath(""));
    } catch (err) {
      if (err.status !== 404) {
        // Not deleted: say so and keep everything as it was.
        showError(err.status === 0 ? T.offline : T.deleteFailed);
        return;
      }
      // 404: already gone (erased or ended); nothing left to delete.
    } finally {
      state.deleting = false;
      deleteYes.disabled = false;
    }
    restart();
    showIntro(T.deleted);
    if (state.open) focusFirst();
  }

  // ---------------------------------------------------------------- composer
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) {
      setNote(T.empty);
      return;
    }
    if (send(text)) input.value = "";
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : sendButton.click();
    }
  });
  input.addEventListener("input", () => {
    if (!blockedReason()) setNote("");
  });

  // ---------------------------------------------------------------- boot
  renderConfigTexts();
  window.MesoChat = Object.freeze({
    open: () => {
      open();
    },
    close: () => close(false),
    restart: () => {
      restart();
    },
    version: VERSION,
  });

  function boot() {
    document.body.append(host);
    const stored = loadStored();
    if (stored) {
      state.id = stored.id;
      state.token = stored.token;
      state.consent = stored.consent;
      start(); // mid-conversation: redraw it now, so it is there when the panel opens
    }
    if (opts.open === "true") open(false);
  }
  if (document.body) boot();
  else document.addEventListener("DOMContentLoaded", boot, { once: true });
})();
