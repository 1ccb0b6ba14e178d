// Lockdown signals: the page reports, it does not block. Each signal becomes an `event`
// {seq, kind, occurred_at, details} through the outbox; the server decides its weight.

export function watchLockdown(report) {
  const now = () => new Date().toISOString();
  const send = (kind, details = {}) => report(kind, now(), details);
  let wasFullscreen = Boolean(document.fullscreenElement);

  const handlers = {
    visibilitychange: () => {
      if (document.visibilityState === "hidden") send("tab_hidden", { visibility: "hidden" });
    },
    fullscreenchange: () => {
      const inFullscreen = Boolean(document.fullscreenElement);
      if (wasFullscreen && !inFullscreen) send("fullscreen_exit");
      wasFullscreen = inFullscreen;
    },
    copy: () => send("copy"),
    cut: () => send("cut"),
    paste: () => send("paste"),
    contextmenu: () => send("context_menu"),
    keyup: (e) => {
      if (e.key === "PrintScreen") send("print_screen");
    },
  };
  for (const [type, fn] of Object.entries(handlers)) document.addEventListener(type, fn);

  // A tab switch fires blur too; report it once, as tab_hidden.
  let blurTimer = null;
  const onBlur = () => {
    clearTimeout(blurTimer);
    blurTimer = setTimeout(() => {
      if (document.visibilityState !== "hidden") send("window_blur");
    }, 150);
  };
  window.addEventListener("blur", onBlur);

  // A second screen, where the browser reveals it (Chromium's window.screen.isExtended).
  let extended = false;
  const checkScreens = () => {
    if (window.screen?.isExtended === true && !extended) send("screen_extended");
    extended = window.screen?.isExtended === true;
  };
  checkScreens();
  window.screen?.addEventListener?.("change", checkScreens);

  return {
    fullscreenEntered() {
      wasFullscreen = true;
    },
    stop() {
      for (const [type, fn] of Object.entries(handlers)) document.removeEventListener(type, fn);
      window.removeEventListener("blur", onBlur);
      window.screen?.removeEventListener?.("change", checkScreens);
      clearTimeout(blurTimer);
    },
  };
}
