// The low-resolution camera track (and, for an exam that listens for speech, the microphone
// track) to the server's analysis peer (when the exam enables analysis). Non-trickle signaling: wait for ICE gathering, send one offer through `rtc`
// {target: "server"}, the ack carries the answer. A server without analysis answers
// `rtc_unavailable`, and the exam simply goes on.
//
// In a cluster the exam room's host node answers, wherever this socket is; when the room
// moves to another host (its node died or drained) the old peer is closed and the server
// sends `rtc` {target: "server", type: "bye"}. `AnalysisLink` keeps one peer up: it offers
// on every (re)join, again after a bye, when the peer fails, and after a refusal that
// carries `retry_after` — at most MAX_RETRIES times in a row, then it gives up until the
// next join (analysis is a help for the teacher; the exam never depends on it).
import { call, iceGathered } from "./common.js";

// The server samples one frame a second; 2 fps keeps the freshest frame under 0.5 s old
// while costing the server about a third less decoding than 5 fps (docs/architecture.md).
const MAX_BITRATE = 100_000;
const MAX_FRAMERATE = 2;
const MAX_RETRIES = 5;
// Answers first: while answers wait to be sent, the camera track to the server drops to a
// trickle (half the size, one frame a second, 30 kbit/s) so it does not compete with them on a
// weak uplink. WebRTC's own congestion control lowers it further when the link demands.
export const LOW_BITRATE = 30_000;
const LOW_FRAMERATE = 1;

// One offer; resolves to {pc} or {error: {code, retry_after?}}.
export async function startAnalysis(socket, stream, iceServers, onState = () => {}) {
  const track = stream?.getVideoTracks()[0];
  if (!track) {
    onState("no camera");
    return { error: { code: "no_camera" } };
  }
  const pc = new RTCPeerConnection({ iceServers });
  const sender = pc.addTrack(track, stream);
  // Only a speaking exam's stream holds a microphone track (check.js asks for it only then):
  // it rides on the same peer connection, analysed on the server in memory and never stored.
  const microphone = stream.getAudioTracks()[0];
  if (microphone) pc.addTrack(microphone, stream);
  try {
    const params = sender.getParameters();
    params.encodings = params.encodings?.length ? params.encodings : [{}];
    params.encodings[0].maxFramerate = MAX_FRAMERATE;
    params.encodings[0].maxBitrate = MAX_BITRATE;
    params.degradationPreference = "maintain-resolution";
    await sender.setParameters(params);
  } catch {
    // Some browsers refuse encodings before negotiation; the capture is capped anyway.
  }
  pc.addEventListener("connectionstatechange", () => onState(pc.connectionState));
  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(pc);
  const ack = await call(socket, "rtc", { target: "server", type: "offer", sdp: pc.localDescription.sdp }, 15000);
  if (!ack.ok || ack.type !== "answer" || !ack.sdp) {
    pc.close();
    onState(ack.error?.code || "unavailable");
    return { error: ack.error || { code: "unavailable" } };
  }
  await pc.setRemoteDescription({ type: "answer", sdp: ack.sdp });
  // Re-apply the caps after negotiation, when every browser accepts them.
  try {
    const params = sender.getParameters();
    if (params.encodings?.[0]) {
      params.encodings[0].maxFramerate = MAX_FRAMERATE;
      params.encodings[0].maxBitrate = MAX_BITRATE;
      await sender.setParameters(params);
    }
  } catch {
    /* capped at capture */
  }
  return { pc };
}

export class AnalysisLink {
  constructor(socket, getStream, iceServers, onCaps = () => {}) {
    this.socket = socket;
    this.lowered = false;
    this.onCaps = onCaps; // (encoding actually in force, or null) after every change
    this.getStream = getStream;
    this.iceServers = iceServers;
    this.pc = null;
    this.generation = 0; // a newer (re)start makes an older one's result stale
    this.retries = 0;
    this.timer = null;
    this.running = false;
    socket.on("rtc", (msg) => {
      // The room moved to another host: offer there, spread over a few seconds so a
      // whole room does not offer in the same instant.
      if (msg?.target === "server" && msg.type === "bye" && this.running) this.#restart(500 + Math.random() * 2500);
    });
  }

  // On every join: a reconnect may have landed on another node, or the host may be gone.
  start() {
    this.running = true;
    this.retries = 0;
    this.#restart(0);
  }

  stop() {
    this.running = false;
    this.generation += 1;
    clearTimeout(this.timer);
    this.pc?.close();
    this.pc = null;
  }

  #restart(delayMs) {
    this.generation += 1;
    const generation = this.generation;
    clearTimeout(this.timer);
    this.pc?.close();
    this.pc = null;
    this.timer = setTimeout(() => this.#offer(generation).catch((err) => console.warn("analysis:", err)), delayMs);
  }

  #retry(afterSeconds) {
    if (!this.running || this.retries >= MAX_RETRIES) return;
    this.retries += 1;
    this.#restart(afterSeconds * 1000 * (0.5 + Math.random()));
  }

  async #offer(generation) {
    if (!this.running || generation !== this.generation) return;
    const onState = (state) => {
      if (generation !== this.generation) return;
      if (state === "connected") this.retries = 0;
      if (state === "failed") this.#retry(2);
    };
    const result = await startAnalysis(this.socket, this.getStream(), this.iceServers, onState);
    if (generation !== this.generation) {
      result.pc?.close(); // a bye or a rejoin overtook this offer
      return;
    }
    this.pc = result.pc || null;
    if (this.pc && this.lowered) await this.#applyCaps();
    if (result.error?.retry_after) this.#retry(result.error.retry_after);
  }

  // Lower (true) or restore (false) the uplink; a peer made later starts at the same level.
  async lower(on) {
    if (this.lowered === on) return;
    this.lowered = on;
    await this.#applyCaps();
  }

  async #applyCaps() {
    const sender = this.pc?.getSenders().find((s) => s.track?.kind === "video");
    const params = sender?.getParameters();
    if (!params?.encodings?.[0]) {
      this.onCaps(null, this.lowered);
      return;
    }
    Object.assign(params.encodings[0], this.lowered
      ? { maxBitrate: LOW_BITRATE, maxFramerate: LOW_FRAMERATE, scaleResolutionDownBy: 2 }
      : { maxBitrate: MAX_BITRATE, maxFramerate: MAX_FRAMERATE, scaleResolutionDownBy: 1 });
    try {
      await sender.setParameters(params);
    } catch (err) {
      console.warn("analysis: caps not applied", err);
    }
    this.onCaps(sender.getParameters().encodings[0], this.lowered);
  }
}
