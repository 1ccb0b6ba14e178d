// My account (/teacher/account.html): my sessions (revoke one, sign out everywhere), my
// personal API tokens (mint one, shown once; revoke), and for admins every account (create,
// disable, enable). The credential is the other teacher pages' (common.js teacherCredential):
// the session cookie with its CSRF token on unsafe requests, or a pasted personal token.
import { formatDate, has, t as tr, typed } from "./i18n.js";
import { $, ApiError, api, confirmDialog, el, show, showLogin, signOut, teacherCredential } from "./common.js";

const TOKEN_KEY = "proctor.teacher.token";
const token = await teacherCredential(TOKEN_KEY);

const when = (iso) => (iso ? formatDate(iso) : "—");

function fatal(message) {
  const box = $("#fatal");
  box.textContent = message;
  show(box);
}

function status(id, message, error = false) {
  const box = $(id);
  box.textContent = message;
  box.className = error ? "notice error" : "muted";
}

// A short, readable device name from a user agent (the full string stays in the tooltip).
function device(userAgent) {
  if (!userAgent) return tr("account.unknown_device");
  const browser = /Edg\//.test(userAgent) ? "Edge" : /Firefox\//.test(userAgent) ? "Firefox"
    : /Chrome\//.test(userAgent) ? "Chrome" : /Safari\//.test(userAgent) ? "Safari" : tr("account.browser");
  const os = /Windows/.test(userAgent) ? "Windows" : /Android/.test(userAgent) ? "Android"
    : /iPhone|iPad/.test(userAgent) ? "iOS" : /Mac OS X/.test(userAgent) ? "macOS" : /Linux/.test(userAgent) ? "Linux" : "";
  return os ? tr("account.device_on", { browser, os }) : browser;
}

// The session cookie was revoked (here or elsewhere): nothing on this page works any more.
function gone(err) {
  if (err instanceof ApiError && err.status === 401) {
    location.href = "/teacher/signin.html";
    return true;
  }
  return false;
}

// -- sessions ---------------------------------------------------------------------------------

async function loadSessions() {
  try {
    const { sessions } = await api(token, "GET", "/auth/sessions");
    const rows = sessions.map((s) => el("tr", { "data-session": s.id, class: s.current ? "current" : undefined },
      el("td", { title: s.user_agent }, device(s.user_agent), s.current ? el("strong", {}, " ", tr("account.this_one")) : null),
      el("td", {}, s.address || "—"),
      el("td", {}, when(s.created_at)),
      el("td", {}, when(s.last_seen_at)),
      el("td", {}, s.current
        ? el("button", { type: "button", class: "secondary small", onclick: () => signOut(TOKEN_KEY, token) }, tr("account.sign_out"))
        : el("button", { type: "button", class: "secondary small revoke", onclick: () => revokeSession(s.id) }, tr("account.revoke")))));
    $("#sessions-table tbody").replaceChildren(...rows);
    status("#sessions-status", sessions.length ? tr("account.sessions_count", { count: sessions.length }) : tr("account.no_sessions"));
  } catch (err) {
    if (!gone(err)) status("#sessions-status", tr("account.cannot_load_sessions", { reason: err.message }), true);
  }
}

async function revokeSession(id) {
  try {
    await api(token, "DELETE", `/auth/sessions/${encodeURIComponent(id)}`);
  } catch (err) {
    if (!gone(err)) status("#sessions-status", tr("account.not_revoked", { reason: err.message }), true);
  }
  await loadSessions();
}

async function signOutEverywhere() {
  if (!(await confirmDialog(tr("account.confirm_everywhere"), tr("account.everywhere")))) return;
  try {
    await api(token, "POST", "/auth/signout-everywhere");
  } catch (err) {
    if (gone(err)) return;
    status("#sessions-status", tr("account.not_signed_out", { reason: err.message }), true);
    return;
  }
  sessionStorage.removeItem(TOKEN_KEY);
  location.href = "/teacher/signin.html";
}

// -- personal tokens --------------------------------------------------------------------------

async function loadTokens() {
  try {
    const { tokens } = await api(token, "GET", "/api/me/tokens");
    const rows = tokens.map((t) => el("tr", { "data-token": t.id },
      el("td", { translate: "no", dir: "auto" }, t.name),
      el("td", {}, el("code", {}, `${t.prefix}…`)),
      el("td", {}, when(t.created_at)),
      el("td", {}, t.last_used_at ? when(t.last_used_at) : tr("account.never")),
      el("td", {}, t.expires_at ? when(t.expires_at) : tr("account.never")),
      el("td", {}, el("button", { type: "button", class: "secondary small revoke", onclick: () => revokeToken(t) }, tr("account.revoke")))));
    $("#tokens-table tbody").replaceChildren(...rows);
    status("#tokens-status", tokens.length ? "" : tr("account.no_tokens"));
  } catch (err) {
    if (!gone(err)) status("#tokens-status", tr("account.cannot_load_tokens", { reason: err.message }), true);
  }
}

async function revokeToken(t) {
  if (!(await confirmDialog(tr("account.confirm_revoke", { name: t.name }), tr("account.revoke")))) return;
  try {
    await api(token, "DELETE", `/api/me/tokens/${encodeURIComponent(t.id)}`);
  } catch (err) {
    if (!gone(err)) status("#tokens-status", tr("account.not_revoked", { reason: err.message }), true);
  }
  await loadTokens();
}

async function mintToken(e) {
  e.preventDefault();
  const never = $("#mint-never").checked;
  const body = { name: $("#mint-name").value.trim(), ttl_days: never ? null : Number($("#mint-days").value) };
  try {
    const minted = await api(token, "POST", "/api/me/tokens", body);
    // Shown once: the server keeps only its hash.
    $("#minted-token").value = minted.token;
    $("#minted-copied").textContent = "";
    show($("#minted"));
    $("#minted-token").select();
    $("#mint-name").value = "";
  } catch (err) {
    if (!gone(err)) status("#tokens-status", tr("account.not_created", { reason: err.message }), true);
  }
  await loadTokens();
}

async function copyMinted() {
  try {
    await navigator.clipboard.writeText($("#minted-token").value);
    $("#minted-copied").textContent = tr("account.copied");
  } catch {
    $("#minted-token").select();
    $("#minted-copied").textContent = tr("account.press_copy");
  }
}

function forgetMinted() {
  $("#minted-token").value = "";
  show($("#minted"), false);
}

// -- accounts (admins) ------------------------------------------------------------------------

async function loadAccounts(me) {
  try {
    const { accounts } = await api(token, "GET", "/api/accounts");
    const rows = accounts.map((a) => {
      const self = a.id === me.sub;
      const next = a.state === "active" ? "disabled" : "active";
      const toggle = el("button", {
        type: "button", class: a.state === "active" ? "danger small state" : "secondary small state", disabled: self,
        title: self ? tr("account.not_yourself") : undefined,
        onclick: () => setState(me, a, next),
      }, tr(a.state === "active" ? "account.disable" : "account.enable"));
      return el("tr", { "data-account": a.id, "data-email": a.email },
        el("td", { translate: "no" }, a.email), el("td", { translate: "no", dir: "auto" }, a.name),
        el("td", {}, has(`role.${a.role}`) ? tr(`role.${a.role}`) : a.role),
        el("td", { class: "state", "data-state": a.state }, has(`account_state.${a.state}`) ? tr(`account_state.${a.state}`) : a.state),
        el("td", {}, tr(a.has_password ? "account.yes" : "account.sso_only")),
        el("td", {}, String(a.sso_identities)),
        el("td", {}, when(a.created_at)),
        el("td", {}, toggle));
    });
    $("#accounts-table tbody").replaceChildren(...rows);
    status("#accounts-status", tr("account.accounts_count", { count: accounts.length }));
  } catch (err) {
    if (!gone(err)) status("#accounts-status", tr("account.cannot_load_accounts", { reason: err.message }), true);
  }
}

async function setState(me, account, state) {
  if (state === "disabled"
    && !(await confirmDialog(tr("account.confirm_disable", { email: account.email }), tr("account.disable")))) return;
  try {
    await api(token, "POST", `/api/accounts/${encodeURIComponent(account.id)}/state`, { state });
  } catch (err) {
    if (!gone(err)) status("#accounts-status", tr("account.not_changed", { reason: err.message }), true);
  }
  await loadAccounts(me);
}

async function createAccount(me, e) {
  e.preventDefault();
  const password = $("#account-password").value;
  const body = {
    email: $("#account-email").value.trim(),
    name: $("#account-name").value.trim(),
    role: $("#account-role").value,
    password: password || null,
  };
  try {
    const made = await api(token, "POST", "/api/accounts", body);
    $("#account-form").reset();
    await loadAccounts(me);
    status("#accounts-status", tr("account.created_account", { email: made.email }));
  } catch (err) {
    if (gone(err)) return;
    const fields = err.fields ? ` (${Object.entries(err.fields).map(([k, v]) => `${k}: ${v}`).join(", ")})` : "";
    status("#accounts-status", tr("account.not_created", { reason: err.message }) + fields, true);
  }
}

// -- start ------------------------------------------------------------------------------------

async function main() {
  if (!token) {
    showLogin(TOKEN_KEY);
    return;
  }
  let me;
  try {
    me = await api(token, "GET", "/auth/me");
  } catch (err) {
    if (!gone(err)) fatal(tr("account.cannot_tell", { reason: err.message }));
    if (err.status === 401) sessionStorage.removeItem(TOKEN_KEY);
    return;
  }
  $("#whoami").replaceChildren(typed(me.name || me.sub), ` (${has(`role.${me.role}`) ? tr(`role.${me.role}`) : me.role})`);
  $("#logout").addEventListener("click", () => signOut(TOKEN_KEY, token));
  show($("#logout"));
  if (me.via === "token") {
    // A signed or static token belongs to no account: it has no sessions or personal tokens.
    fatal(tr("account.token_no_account"));
  } else {
    show($("#sessions"));
    show($("#tokens"));
    $("#signout-everywhere").addEventListener("click", signOutEverywhere);
    $("#mint-form").addEventListener("submit", mintToken);
    $("#mint-never").addEventListener("change", () => { $("#mint-days").disabled = $("#mint-never").checked; });
    $("#minted-copy").addEventListener("click", copyMinted);
    $("#minted-done").addEventListener("click", forgetMinted);
    loadSessions();
    loadTokens();
  }
  if (me.role === "admin") {
    show($("#accounts"));
    $("#account-form").addEventListener("submit", (e) => createAccount(me, e));
    loadAccounts(me);
  }
}

main();
