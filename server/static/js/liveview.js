// Student side of the teacher's live camera view: peer to peer, signaled through the
// server's `rtc` relay as {target: "peer", type, sdp, candidate, session}. The teacher
// offers (receive-only); the student answers with the camera track. The page always shows
// when a teacher is watching.
import { call, iceGathered } from "./common.js";

export class LiveView {
  constructor(socket, getStream, iceServers, onWatching = () => {}) {
    this.socket = socket;
    this.getStream = getStream;
    this.iceServers = iceServers;
    this.onWatching = onWatching;
    this.peers = new Map(); // session -> RTCPeerConnection
    socket.on("rtc", (msg) => this.#handle(msg).catch((err) => console.warn("live view:", err)));
  }

  async #handle(msg) {
    if (!msg || msg.target === "server") return;
    const session = msg.session || "default";
    if (msg.type === "offer") {
      this.#close(session);
      const pc = new RTCPeerConnection({ iceServers: this.iceServers });
      this.peers.set(session, pc);
      pc.addEventListener("connectionstatechange", () => {
        if (["failed", "closed", "disconnected"].includes(pc.connectionState)) this.#close(session);
        this.#changed();
      });
      const stream = this.getStream();
      for (const track of stream?.getVideoTracks() || []) pc.addTrack(track, stream);
      await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await iceGathered(pc, 1500); // non-trickle: the answer carries the candidates
      await call(this.socket, "rtc", { target: "peer", type: "answer", session, sdp: pc.localDescription.sdp });
      this.#changed();
    } else if (msg.type === "candidate" && msg.candidate) {
      await this.peers.get(session)?.addIceCandidate(msg.candidate);
    } else if (msg.type === "bye") {
      this.#close(session);
    }
  }

  #close(session) {
    const pc = this.peers.get(session);
    if (pc) {
      pc.close();
      this.peers.delete(session);
      this.#changed();
    }
  }

  #changed() {
    this.onWatching(this.peers.size > 0);
  }

  closeAll() {
    for (const session of [...this.peers.keys()]) this.#close(session);
  }
}
