// Shared by every page: tokens, the Socket.IO connection, REST calls, DOM helpers.
import { errorText, formatClock, has, t } from "./i18n.js";
import { io } from "/vendor/socket.io.esm.min.js";

// Storage a third-party iframe may be refused: a learning platform frames the pages after an
// LTI launch (docs/lti.md), and a browser blocking third-party storage throws on every access.
// Then an in-memory stand-in serves for the page's life; `storageDenied` says so.
export const storageDenied = { sessionStorage: false, localStorage: false };
function storageOr(name) {
  try {
    const store = window[name];
    store.getItem("proctor.probe");
    return store;
  } catch {
    storageDenied[name] = true;
    const items = new Map();
    return {
      getItem: (k) => (items.has(k) ? items.get(k) : null),
      setItem: (k, v) => items.set(k, String(v)),
      removeItem: (k) => items.delete(k),
    };
  }
}
export const sessionStore = storageOr("sessionStorage");
export const localStore = storageOr("localStorage");

// A token arrives in the URL fragment (#token=…), never in the query string, so it is not
// sent to the server in request lines or logged by proxies. It is kept in sessionStorage so
// a reload works, and removed from the address bar — unless sessionStorage is refused (a
// framed LTI page): then the fragment stays, so that a reload still has it.
export function takeToken(storageKey) {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromHash = params.get("token");
  if (fromHash) {
    sessionStore.setItem(storageKey, fromHash);
    if (!storageDenied.sessionStorage) history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStore.getItem(storageKey);
}

// The teacher pages' credential: a pasted or linked token (as before), else the browser's
// session cookie (signed in at /teacher/signin.html). A session is an object: the cookie goes
// by itself, and every unsafe request carries the session's CSRF token from /auth/me.
export async function teacherCredential(storageKey) {
  const token = takeToken(storageKey);
  if (token) return token;
  try {
    const resp = await fetch("/auth/me", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!resp.ok) return null;
    const me = await resp.json();
    if (me.via !== "session") return null;
    return { session: true, csrf: me.csrf_token, role: me.role, sub: me.sub, name: me.name };
  } catch {
    return null;
  }
}

// Sign out: forget a pasted token, or end the browser session on the server.
export async function signOut(storageKey, credential) {
  sessionStore.removeItem(storageKey);
  if (credential && typeof credential === "object") {
    await fetch("/auth/signout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": credential.csrf } }).catch(() => null);
    location.href = "/teacher/signin.html";
    return;
  }
  location.href = "/teacher/";
}

// The sign-in form of the teacher pages: store the pasted token and reload.
export function showLogin(storageKey) {
  const section = document.querySelector("#login");
  show(section);
  if (!section.querySelector(".signin-link")) {
    section.append(el("p", { class: "signin-link" }, el("a", { href: "/teacher/signin.html" }, t("login.with_password"))));
  }
  document.querySelector("#login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStore.setItem(storageKey, document.querySelector("#login-token").value.trim());
    location.reload();
  });
}

// The claims of a JWT, for display only (the server verifies every use of the token).
export function claimsOf(token) {
  if (token && typeof token === "object") return { role: token.role, sub: token.sub, name: token.name, rooms: [] };
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(escape(atob(part)));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

export function connect(namespace, token) {
  return io(namespace, {
    // A session: no token, the handshake carries the cookie (signaling/guard.py).
    auth: typeof token === "string" ? { token } : {},
    transports: ["websocket", "polling"],
    reconnection: true,
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
    randomizationFactor: 0.5, // jittered back-off: a hall of students does not reconnect in step
    timeout: 8000,
  });
}

// emit with an ack; resolves to the server's ack, or to a synthetic error ack on timeout.
export function call(socket, event, payload, timeoutMs = 10000) {
  return new Promise((resolve) => {
    socket.timeout(timeoutMs).emit(event, payload ?? {}, (err, ack) => {
      if (err) resolve({ ok: false, error: { code: "timeout", message: t("error.timeout"), retry_after: 2 } });
      else resolve(ack ?? { ok: false, error: { code: "internal", message: "empty ack" } });
    });
  });
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error ? errorText(body.error) : `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code || String(status);
    this.fields = body?.error?.fields || null;
  }
}

export async function api(token, method, path, body) {
  const session = token && typeof token === "object";
  const headers = session ? { "X-CSRF-Token": token.csrf } : { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = resp.headers.get("Content-Type") || "";
  if (!resp.ok) {
    const data = type.includes("json") ? await resp.json().catch(() => null) : null;
    throw new ApiError(resp.status, data);
  }
  if (type.includes("json")) return resp.json();
  return resp.blob();
}

// Fetch a protected file with the bearer token and offer it as a download.
export async function download(token, path, filename) {
  const blob = await api(token, "GET", path);
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function saveFile(text, filename, type = "text/csv") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// el("button", {class: "x", onclick: fn}, "text", child…): no innerHTML anywhere, so
// nothing a student or teacher typed can become markup.
const PROPS = new Set(["value", "checked", "disabled", "selected", "textContent", "srcObject", "muted", "autoplay", "playsInline"]);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (PROPS.has(key)) node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function show(node, visible = true) {
  node.hidden = !visible;
}

export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

// A clock time in the reader's language (Intl.DateTimeFormat, js/i18n.js).
export function formatTime(iso) {
  return iso ? formatClock(iso) : "";
}

// Signal kinds by id, filled by appConfig(): the labels, default weights and explanations are
// declared once on the server (core/vocabulary.py) and served in /app-config.json.
let kindsById = new Map();

// The label a teacher reads for a signal kind; the id itself until appConfig() has resolved
// (pages await it before they render any kind) or for a kind this server does not know.
// The page's catalog names a kind in the reader's language (kind.<id>); the server's English
// label otherwise (a kind added on the server before its translation).
export function kindLabel(kind) {
  return has(`kind.${kind}`) ? t(`kind.${kind}`) : kindsById.get(kind)?.label || kind;
}

// Every signal kind ({id, label, source, default_weight, explanation}), in the server's order.
export function signalKinds() {
  return [...kindsById.values()];
}

// A modal confirmation built on <dialog>: resolves true when the user confirms.
export function confirmDialog(message, confirmLabel = t("dialog.confirm")) {
  return new Promise((resolve) => {
    const dialog = el("dialog", { class: "confirm", "aria-label": t("dialog.confirm") },
      el("p", {}, message),
      el("form", { method: "dialog", class: "row" },
        el("button", { value: "cancel", class: "secondary" }, t("dialog.cancel")),
        el("button", { value: "ok", class: "danger" }, confirmLabel)));
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// What the server tells every page (/app-config.json): ICE servers, the consent version, the
// signal kinds and the analysis bounds. Fetched once per page and shared by every caller; a
// failed fetch is not cached (the next call tries again) and yields no ICE servers and no kinds.
let configPromise = null;

export function appConfig() {
  if (!configPromise) {
    configPromise = fetch("/app-config.json")
      .then((resp) => {
        if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
        return resp.json();
      })
      .then((config) => {
        kindsById = new Map((config.kinds || []).map((kind) => [kind.id, kind]));
        return config;
      })
      .catch(() => {
        configPromise = null;
        return { ice_servers: [], kinds: [], analysis_bounds: [] };
      });
  }
  return configPromise;
}

// Resolve when ICE gathering finished (non-trickle signaling: one offer, one answer).
export function iceGathered(pc, timeoutMs = 3000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, timeoutMs);
  });
}
