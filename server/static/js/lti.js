// LTI platforms (/teacher/lti.html, admins): the tool's values to paste into a platform, the
// registered platforms (remove one) and a form to register one (POST /api/lti/platforms).
import { $, api, confirmDialog, el, show, showLogin, teacherCredential } from "./common.js";
import { t, typed } from "./i18n.js";

const TOKEN_KEY = "proctor.teacher.token";
const token = await teacherCredential(TOKEN_KEY);

const LABELS = {
  login_url: "lti.value_login_url",
  launch_url: "lti.value_launch_url",
  redirect_uris: "lti.value_redirect_uris",
  deep_linking_url: "lti.value_deep_linking_url",
  jwks_url: "lti.value_jwks_url",
  domain: "lti.value_domain",
};

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

async function loadTool() {
  const values = await api(token, "GET", "/api/lti/tool");
  const rows = Object.entries(LABELS).flatMap(([key, label]) => [
    el("dt", {}, t(label)),
    el("dd", {}, el("code", { id: `tool-${key}`, translate: "no" }, values[key])),
  ]);
  $("#tool-values").replaceChildren(...rows);
}

async function loadPlatforms() {
  const { platforms } = await api(token, "GET", "/api/lti/platforms");
  const rows = platforms.map((p) => el("tr", { "data-platform": p.id },
    el("td", {}, p.name ? typed(p.name) : "—"),
    el("td", {}, el("code", {}, p.issuer)),
    el("td", {}, el("code", {}, p.client_id)),
    el("td", {}, el("code", {}, p.deployment_ids.join(", "))),
    el("td", {}, el("button", {
      type: "button", class: "danger small", "aria-label": t("lti.remove_named", { name: p.name || p.issuer }),
      onclick: () => remove(p),
    }, t("lti.remove")))));
  $("#platforms-table tbody").replaceChildren(...rows);
  status("#platforms-status", platforms.length ? t("lti.platforms_count", { count: platforms.length }) : t("lti.no_platform"));
}

async function remove(platform) {
  const ok = await confirmDialog(t("lti.confirm_remove", { name: platform.name || platform.issuer }), t("lti.remove"));
  if (!ok) return;
  try {
    await api(token, "DELETE", `/api/lti/platforms/${encodeURIComponent(platform.id)}`);
    await loadPlatforms();
  } catch (err) {
    status("#platforms-status", t("lti.cannot_remove", { reason: err.message }), true);
  }
}

async function register(event) {
  event.preventDefault();
  const body = {
    name: $("#p-name").value.trim(),
    issuer: $("#p-issuer").value.trim(),
    client_id: $("#p-client").value.trim(),
    deployment_ids: $("#p-deployments").value.split(",").map((s) => s.trim()).filter(Boolean),
    auth_login_url: $("#p-auth").value.trim(),
    access_token_url: $("#p-token").value.trim(),
    jwks_url: $("#p-jwks").value.trim(),
  };
  try {
    const platform = await api(token, "POST", "/api/lti/platforms", body);
    status("#register-status", t("lti.registered", { issuer: platform.issuer }));
    event.target.reset();
    await loadPlatforms();
  } catch (err) {
    const fields = err.fields;
    const detail = fields ? " " + Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join("; ") : "";
    status("#register-status", t("lti.not_registered", { reason: err.message, detail }), true);
  }
}

if (!token) {
  showLogin(TOKEN_KEY);
} else {
  try {
    await loadTool();
    await loadPlatforms();
    for (const id of ["#tool", "#platforms", "#register"]) show($(id));
    $("#register-form").addEventListener("submit", register);
  } catch (err) {
    fatal(err.status === 403 ? t("lti.admins_only") : t("lti.cannot_load", { reason: err.message }));
  }
}
