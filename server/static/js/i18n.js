// The pages' message catalogs: every text a student or a teacher reads is a key looked up in
// /static/i18n/<language>.json. Plurals go through Intl.PluralRules, numbers, dates and times
// through Intl.NumberFormat / Intl.DateTimeFormat in the reader's language, never through
// string concatenation. Adding a language is adding its catalog file (docs/accessibility.md).
//
// The language, in order: an explicit choice (the `locale` claim of the page's token, i.e. the
// LTI launch's or the account's setting, then a choice kept in localStorage["proctor.locale"]),
// then the browser's languages (what it sends as Accept-Language); English if none is shipped.
//
// This module loads its catalog with a top-level await, so a page's modules that import it run
// only once the catalog is there: nothing is ever shown untranslated, and there is no race.

export const FALLBACK = "en";
const TOKEN_KEYS = ["proctor.student.token", "proctor.teacher.token"];
export const CHOICE_KEY = "proctor.locale";
const TAG = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

// A page framed by a learning platform after an LTI launch may be refused storage (a browser
// blocking third-party storage throws on every access, docs/lti.md): then nothing is stored.
// Not common.js's storageOr: common.js imports this module.
function stored(area, key) {
  try {
    return window[area].getItem(key);
  } catch {
    return null;
  }
}

function claimedLocale() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  for (const token of [fromHash, ...TOKEN_KEYS.map((k) => stored("sessionStorage", k))]) {
    if (!token) continue;
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const locale = JSON.parse(decodeURIComponent(escape(atob(part)))).locale;
      if (typeof locale === "string" && TAG.test(locale)) return locale;
    } catch {
      // not a JWT (a session cookie has no token): fall through to the next source
    }
  }
  return null;
}

export function wantedLanguages() {
  const wanted = [claimedLocale(), stored("localStorage", CHOICE_KEY), ...(navigator.languages || [navigator.language])];
  const out = [];
  for (const tag of wanted) {
    if (!tag || !TAG.test(tag)) continue;
    const base = tag.toLowerCase().split("-")[0];
    if (!out.includes(base)) out.push(base);
  }
  if (!out.includes(FALLBACK)) out.push(FALLBACK);
  return out;
}

async function fetchJson(url) {
  try {
    const resp = await fetch(url);
    return resp.ok ? await resp.json() : null;
  } catch {
    return null;
  }
}

const fetchCatalog = (lang) => fetchJson(`/static/i18n/${lang}.json`);

// The texts of the server's error codes come from the server's own catalog (gettext, Babel),
// so an error reads the same in a REST answer and in a Socket.IO ack: they become error.<code>.
async function withErrors(lang, catalog) {
  const errors = await fetchJson(`/i18n/errors/${lang}.json`);
  const merged = { ...catalog };
  for (const [code, text] of Object.entries(errors || {})) merged[`error.${code}`] ??= text;
  return merged;
}

async function load() {
  for (const lang of wantedLanguages()) {
    const catalog = await fetchCatalog(lang);
    if (!catalog) continue;
    const fallback = lang === FALLBACK ? null : await fetchCatalog(FALLBACK);
    const [own, english] = await Promise.all([withErrors(lang, catalog), fallback ? withErrors(FALLBACK, fallback) : null]);
    return { lang, catalog: own, fallback: english || own };
  }
  return { lang: FALLBACK, catalog: {}, fallback: {} };
}

const loaded = await load();
export const lang = loaded.lang;
export const dir = loaded.catalog["_meta.dir"] === "rtl" ? "rtl" : "ltr";
const plurals = new Intl.PluralRules(lang);
const numbers = new Intl.NumberFormat(lang);

export function formatNumber(value) {
  return typeof value === "number" ? numbers.format(value) : String(value);
}

export function formatDate(value, options = { dateStyle: "medium", timeStyle: "short" }) {
  if (value === null || value === undefined || value === "") return "";
  return new Intl.DateTimeFormat(lang, options).format(value instanceof Date ? value : new Date(value));
}

export function formatClock(value) {
  return formatDate(value, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function has(key) {
  return key in loaded.catalog || key in loaded.fallback;
}

// t("key", {name: "Ada", count: 3}): the catalog's text with {name} filled in; an entry that is
// an object is a plural, chosen by Intl.PluralRules from `count` (Hebrew has one/two/other).
export function t(key, params = {}) {
  let entry = loaded.catalog[key] ?? loaded.fallback[key];
  if (entry === undefined) {
    console.warn(`i18n: no text for ${key}`);
    return key;
  }
  if (typeof entry === "object") {
    const count = Number(params.count ?? 0);
    entry = entry[plurals.select(count)] ?? entry.other;
  }
  return entry.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? formatNumber(params[name]) : whole));
}

// t() as DOM nodes: a parameter given as a Node (a <bdi> around a name) is put in as that node,
// so a name keeps its own direction and is never mistaken for the page's text.
export function tNodes(key, params = {}) {
  const marked = Object.fromEntries(Object.entries(params).map(([name, value]) => [name, value instanceof Node ? `\u0000${name}\u0000` : value]));
  return t(key, marked).split(/\u0000(\w+)\u0000/).map((part, i) => (i % 2 ? params[part] : part)).filter((part) => part !== "");
}

// What people typed (names, titles, answers): isolated, in its own direction, never translated.
export function typed(text, tag = "bdi") {
  const node = document.createElement(tag);
  node.setAttribute("translate", "no");
  if (tag !== "bdi") node.setAttribute("dir", "auto");
  node.textContent = text ?? "";
  return node;
}

// Errors whose catalog text is generic while the server's message carries the facts (a version,
// a file name in an archive, a limit): the server's words follow the translated text.
const FACTS = new Set([
  "not_latest", "unreviewed_flags", "unsafe_path", "zip_bomb", "zip_encrypted", "zip_invalid", "zip_too_large",
  "zip_too_many_files", "xml_invalid", "xml_refused", "not_moodle_xml", "not_qti_package", "lti_platform",
]);

// An error's `fields` as t() parameters: "3" becomes the number 3 (plurals, Intl formatting).
function errorParams(fields) {
  const params = {};
  for (const [name, value] of Object.entries(fields || {})) params[name] = /^\d+$/.test(String(value)) ? Number(value) : value;
  return params;
}

// The text for a server error: the page's catalog by the error's code (codes never change),
// filled from the error's `fields`, else the server's own text (already in the reader's language
// when the server has it).
export function errorText(error) {
  const code = error?.code;
  const key = `error.${code}`;
  if (code && (key in loaded.catalog || key in loaded.fallback)) {
    const text = t(key, errorParams(error.fields));
    return FACTS.has(code) && error.message ? `${text} (${error.message})` : text;
  }
  return error?.text || error?.message || code || t("error.internal");
}

const ATTRIBUTES = ["aria-label", "placeholder", "title", "alt"];

// Fill the page's static text: data-i18n="key" sets the text, data-i18n-aria-label="key" (and
// -placeholder, -title, -alt) set that attribute.
export function translatePage(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const name of ATTRIBUTES) {
    for (const node of root.querySelectorAll(`[data-i18n-${name}]`)) node.setAttribute(name, t(node.getAttribute(`data-i18n-${name}`)));
  }
}

document.documentElement.lang = lang;
document.documentElement.dir = dir;
translatePage();
