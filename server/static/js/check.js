// The student's system check: browser support, camera, the microphone (only for an exam that
// listens for speech), connection. Each item says in plain words what failed and what to do.
import { el, localStore } from "./common.js";

// The page caps what it sends: the server cannot lower a sender's resolution or frame rate.
export const CAMERA_CONSTRAINTS = {
  audio: false,
  video: {
    width: { ideal: 320, max: 320 },
    height: { ideal: 240, max: 240 },
    frameRate: { ideal: 5, max: 5 },
  },
};

// Speech detection needs one channel; the server resamples to 16 kHz. Echo cancellation
// keeps a video call's loudspeaker (or the exam's own sounds) from counting as the student.
export const MICROPHONE_CONSTRAINTS = { channelCount: 1, echoCancellation: true };

// `withMicrophone` only when the exam analyses speech: otherwise the page never asks for it
// (and the server's Permissions-Policy would refuse it anyway).
export async function openCamera(withMicrophone = false) {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error("This browser cannot use a camera here (it needs a secure https:// page).");
  }
  const constraints = { ...CAMERA_CONSTRAINTS, audio: withMicrophone ? MICROPHONE_CONSTRAINTS : false };
  try {
    return await navigator.mediaDevices.getUserMedia(constraints);
  } catch (err) {
    const reasons = {
      NotAllowedError: withMicrophone
        ? "Camera or microphone permission was refused. This exam needs both: allow them for this site (the icons in the address bar), then check again."
        : "Camera permission was refused. Allow the camera for this site (the camera icon in the address bar), then check again.",
      NotFoundError: withMicrophone
        ? "No camera or no microphone was found. Connect them, then check again."
        : "No camera was found. Connect a camera, then check again.",
      NotReadableError: "The camera is in use by another program. Close it, then check again.",
      OverconstrainedError: "The camera does not support a small enough picture.",
    };
    throw new Error(reasons[err.name] || `The camera could not be started (${err.name || err}).`);
  }
}

function browserProblems() {
  const missing = [];
  if (!window.RTCPeerConnection) missing.push("WebRTC");
  if (!window.WebSocket) missing.push("WebSocket");
  if (!navigator.mediaDevices?.getUserMedia) missing.push("camera access");
  try {
    // The stand-in of a framed page that may not use storage passes (common.js storageOr).
    localStore.setItem("proctor.probe", "1");
    localStore.removeItem("proctor.probe");
  } catch {
    missing.push("local storage (private mode may block it)");
  }
  return missing;
}

function item(list, name) {
  const status = el("span", { class: "status" }, "checking…");
  const text = el("span", { class: "detail" });
  const li = el("li", { class: "pending" }, el("strong", {}, name), " ", status, el("br"), text);
  list.append(li);
  return {
    pass(detail = "") {
      li.className = "pass";
      status.textContent = "OK";
      text.textContent = detail;
    },
    fail(detail) {
      li.className = "fail";
      status.textContent = "Problem";
      text.textContent = detail;
    },
  };
}

// Runs every check; resolves to {ok, stream}. `socketReady` resolves when the Socket.IO
// connection is up (or rejects with a readable reason).
export async function runChecks(list, preview, socketReady, previousStream, withMicrophone = false) {
  list.replaceChildren();
  let ok = true;

  const browser = item(list, "Browser");
  const missing = browserProblems();
  if (missing.length) {
    ok = false;
    browser.fail(`This browser lacks: ${missing.join(", ")}. Use a current Chrome, Edge or Firefox.`);
  } else {
    browser.pass(document.fullscreenEnabled ? "" : "Full screen is not available; the exam still works.");
  }

  const camera = item(list, "Camera");
  let stream = previousStream && previousStream.active ? previousStream : null;
  if (stream && withMicrophone && !stream.getAudioTracks().length) stream = null;
  try {
    stream = stream || (await openCamera(withMicrophone));
    preview.srcObject = stream;
    const settings = stream.getVideoTracks()[0]?.getSettings() || {};
    const size = settings.width ? `${settings.width}×${settings.height}` : "";
    camera.pass(`Camera is working ${size ? `(${size})` : ""}.`);
  } catch (err) {
    ok = false;
    camera.fail(err.message);
  }
  if (withMicrophone) {
    const microphone = item(list, "Microphone");
    const track = stream?.getAudioTracks()[0];
    if (track && track.readyState === "live") {
      microphone.pass("Microphone is working. It is analysed on the server for speech, in memory; no audio is stored.");
    } else {
      ok = false;
      microphone.fail("This exam listens for speech and needs your microphone. Allow it for this site, then check again.");
    }
  }

  const connection = item(list, "Connection");
  try {
    const started = performance.now();
    const resp = await fetch("/healthz", { cache: "no-store" });
    if (!resp.ok) throw new Error(`the exam server answered ${resp.status}`);
    const ms = Math.round(performance.now() - started);
    await socketReady();
    connection.pass(`Connected to the exam server (${ms} ms).`);
  } catch (err) {
    ok = false;
    connection.fail(`${err.message || err}. Check your internet connection, then check again.`);
  }
  return { ok, stream };
}
