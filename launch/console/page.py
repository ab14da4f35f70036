"""The web console's page: one self-contained HTML file (no CDN, no build step, works offline).

The page keeps one websocket to /ws for the state, reloads the camera image when a new frame is
rendered, and posts the person's words, keys and push-to-talk clips. Push-to-talk records the
browser's microphone with MediaRecorder while the button (or the space bar, outside the text
box) is held, then uploads the clip to /api/audio; "send a recording" uploads an audio file
the same way.
"""

from __future__ import annotations

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>corrigible console</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; background: #111; color: #ddd; }
  header { padding: 6px 12px; background: #222; display: flex; gap: 12px; align-items: center; }
  main { display: grid; grid-template-columns: 340px 1fr 1fr; gap: 10px; padding: 10px; }
  section { background: #1b1b1b; border: 1px solid #333; border-radius: 6px; padding: 8px; }
  h2 { font-size: 13px; margin: 0 0 6px 0; color: #9cf; }
  pre { margin: 0; white-space: pre-wrap; font-size: 12px; }
  #camera { width: 320px; height: 240px; background: #000; display: block; }
  #trace { height: 300px; overflow-y: auto; }
  .current { background: #353; }
  button { font-size: 14px; padding: 6px 10px; }
  #estop { background: #b00; color: #fff; font-weight: bold; }
  #ptt.recording { background: #c60; }
  #say { width: 70%; font-size: 14px; }
</style>
</head>
<body>
<header>
  <b>corrigible console</b>
  <span id="status">connecting...</span>
  <span id="instruction"></span>
  <button id="pause">pause / resume</button>
  <button id="stop">stop</button>
  <button id="estop">E-STOP</button>
  <button id="undo">undo</button>
</header>
<main>
  <section>
    <h2>camera</h2>
    <img id="camera" alt="the robot's camera">
    <h2>say a correction</h2>
    <form id="correct"><input id="say" autocomplete="off"
      placeholder="e.g. a bit to the left"> <button id="send">send</button></form>
    <p><button id="ptt">hold to talk</button>
       <label>send a recording <input id="clip" type="file" accept="audio/*"></label></p>
    <h2>last reply</h2><pre id="reply"></pre>
  </section>
  <section>
    <h2>program</h2><pre id="program"></pre>
    <h2>skill</h2><pre id="skill"></pre>
    <h2>knowledge in use</h2><pre id="knowledge"></pre>
    <h2>knowledge base</h2><pre id="kb"></pre>
  </section>
  <section><h2>trace</h2><pre id="trace"></pre></section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let frames = -1;
let status = "";
function text(id, value) { $(id).textContent = value; }

function show(st) {
  status = st.status;
  text("status", st.status + (st.result ? " - " + st.result : ""));
  text("instruction", st.instruction);
  const program = $("program");
  program.replaceChildren(...st.program.map((line, i) => {
    const div = document.createElement("div");
    div.textContent = (i + 1 === st.line ? "> " : "  ") + String(i + 1).padStart(2) + " " + line;
    if (i + 1 === st.line) div.className = "current";
    return div;
  }));
  text("skill", st.skill || "");
  text("knowledge", st.knowledge.map(k => k.entry_id.slice(0, 8) + " " + k.text +
       "\\n    why: " + k.why).join("\\n") || "none");
  text("reply", st.reply);
  text("trace", st.trace.slice(-60).map(t => t.wall_s.toFixed(2) + " " + t.kind + ": " +
       t.text).join("\\n"));
  $("trace").scrollTop = $("trace").scrollHeight;
  if (st.frames !== frames) { frames = st.frames; $("camera").src = "/camera.png?n=" + frames; }
}

function connect() {
  const ws = new WebSocket("ws://" + location.host + "/ws");
  ws.onmessage = (msg) => show(JSON.parse(msg.data));
  ws.onclose = () => { text("status", "disconnected; retrying"); setTimeout(connect, 1000); };
}

async function post(url, body, type) {
  const init = { method: "POST" };
  if (body !== undefined) {
    init.body = type ? body : JSON.stringify(body);
    init.headers = { "Content-Type": type || "application/json" };
  }
  const res = await fetch(url, init);
  const out = await res.json();
  if (!res.ok) text("reply", "error: " + out.error);
  return out;
}

async function loadKb() {
  const res = await fetch("/api/kb");
  const out = await res.json();
  text("kb", res.ok ? (out.map(e => e.id.slice(0, 8) + " " + e.text + "\\n    from " +
       e.provenance.join("; ")).join("\\n") || "empty") : out.error);
}

$("correct").onsubmit = async (ev) => {
  ev.preventDefault();
  const words = $("say").value;
  $("say").value = "";
  if (words.trim()) await post("/api/correct", { text: words });
};
$("pause").onclick = () => post("/api/control/" + (status === "paused" ? "resume" : "pause"));
$("stop").onclick = () => post("/api/control/stop");
$("estop").onclick = () => post("/api/control/estop");
$("undo").onclick = () => post("/api/control/undo");

async function uploadClip(blob) {
  const out = await post("/api/audio", blob, blob.type || "audio/wav");
  window.lastUpload = out;
  return out;
}
window.uploadClip = uploadClip;
$("clip").onchange = () => { if ($("clip").files[0]) uploadClip($("clip").files[0]); };

let recorder = null;
let chunks = [];
async function startTalking() {
  if (recorder) return;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
    recorder.onstop = async () => {
      stream.getTracks().forEach(t => t.stop());
      const blob = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
      recorder = null;
      $("ptt").classList.remove("recording");
      await uploadClip(blob);
    };
    recorder.start();
    $("ptt").classList.add("recording");
  } catch (err) {
    recorder = null;
    text("reply", "no microphone: " + err);
  }
}
function stopTalking() { if (recorder && recorder.state === "recording") recorder.stop(); }
$("ptt").onmousedown = startTalking;
$("ptt").onmouseup = stopTalking;
$("ptt").onmouseleave = stopTalking;
document.addEventListener("keydown", (e) => {
  if (e.code === "Space" && e.target !== $("say") && !e.repeat) {
    e.preventDefault();
    startTalking();
  }
  if (e.code === "Escape") post("/api/control/estop");
});
document.addEventListener("keyup", (e) => {
  if (e.code === "Space" && e.target !== $("say")) { e.preventDefault(); stopTalking(); }
});

connect();
loadKb();
setInterval(loadKb, 5000);
</script>
</body>
</html>
"""
