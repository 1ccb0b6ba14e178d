// Teacher side of the live camera: a receive-only peer connection to one student, signaled
// through the server's `rtc` relay ({target: "peer", attempt_id, session, type, sdp,
// candidate}); the server names the session in its ack to the offer. The student's
// browser answers with its camera track.
import { errorText, t } from "./i18n.js";
import { call, iceGathered } from "./common.js";

export class LiveViewer {
  constructor(socket, iceServers) {
    this.socket = socket;
    this.iceServers = iceServers;
    this.pc = null;
    this.session = null;
    this.attemptId = null;
    socket.on("rtc", (msg) => this.#handle(msg).catch((err) => this.onState?.(`error: ${err.message}`)));
  }

  async open(attemptId, video, onState) {
    this.close();
    this.onState = onState;
    this.attemptId = attemptId;
    this.session = null; // the server names the view session in its ack to the offer
    this.offering = true;
    const pc = (this.pc = new RTCPeerConnection({ iceServers: this.iceServers }));
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addEventListener("track", (e) => {
      video.srcObject = e.streams[0] || new MediaStream([e.track]);
    });
    pc.addEventListener("connectionstatechange", () => onState(pc.connectionState));
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc, 1500);
    onState(t("live.asking"));
    const ack = await call(this.socket, "rtc", {
      target: "peer", type: "offer", attempt_id: attemptId, sdp: pc.localDescription.sdp,
    });
    this.offering = false;
    if (!ack.ok) {
      this.close(false);
      onState(t("live.unavailable", { reason: errorText(ack.error) }));
      return false;
    }
    this.session = this.session || ack.session;
    if (ack.type === "answer" && ack.sdp) await pc.setRemoteDescription({ type: "answer", sdp: ack.sdp });
    return true;
  }

  async #handle(msg) {
    if (!this.pc || !msg) return;
    // The answer may overtake the offer's ack: adopt the session of this attempt's reply.
    if (this.offering && !this.session && msg.attempt_id === this.attemptId) this.session = msg.session;
    if (msg.session !== this.session) return;
    if (msg.type === "answer" && msg.sdp) await this.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
    else if (msg.type === "candidate" && msg.candidate) await this.pc.addIceCandidate(msg.candidate);
    else if (msg.type === "bye") {
      this.close(false);
      this.onState?.(t("live.student_closed"));
    }
  }

  close(tellStudent = true) {
    if (!this.pc) return;
    if (tellStudent) {
      call(this.socket, "rtc", { target: "peer", type: "bye", attempt_id: this.attemptId, session: this.session });
    }
    this.pc.close();
    this.pc = null;
    this.session = null;
    this.offering = false;
  }
}
