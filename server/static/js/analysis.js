// The low-resolution camera track to the server's analysis peer (when the exam enables
// analysis). Non-trickle signaling: wait for ICE gathering, send one offer through `rtc`
// {target: "server"}, the ack carries the answer. A server without analysis answers
// `rtc_unavailable`, and the exam simply goes on.
import { call, iceGathered } from "./common.js";

// The server samples one frame a second; 2 fps keeps the freshest frame under 0.5 s old
// while costing the server about a third less decoding than 5 fps (docs/architecture.md).
const MAX_BITRATE = 100_000;
const MAX_FRAMERATE = 2;

export async function startAnalysis(socket, stream, iceServers, onState = () => {}) {
  const track = stream?.getVideoTracks()[0];
  if (!track) {
    onState("no camera");
    return null;
  }
  const pc = new RTCPeerConnection({ iceServers });
  const sender = pc.addTrack(track, stream);
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
    return null;
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
  return pc;
}
