// The single sign-on button of the teacher sign-in page. The page includes this module and
// marks where the button goes with an element `data-sso` (hidden until SSO is known to be on):
//   <div data-sso hidden></div>  <script type="module" src="/static/js/sso.js"></script>
// GET /auth/config says whether the node has an identity provider; the button is a plain link
// to /auth/oidc/login, which redirects to the provider (no script runs the flow itself).
import { t } from "./i18n.js";

async function showSsoButton() {
  const slot = document.querySelector("[data-sso]");
  if (!slot) return;
  let config;
  try {
    const response = await fetch("/auth/config", { credentials: "same-origin" });
    if (!response.ok) return;
    config = await response.json();
  } catch {
    return; // no button is the safe answer when the node cannot say
  }
  if (!config.sso || !config.sso.enabled || !config.sso.login_url) return;
  const link = document.createElement("a");
  link.className = "button";
  link.id = "sso-login";
  link.href = config.sso.login_url;
  link.textContent = slot.dataset.ssoLabel || t("signin.sso");
  slot.replaceChildren(link);
  slot.hidden = false;
}

showSsoButton();
