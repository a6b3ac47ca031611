/// The single page at /: inline CSS and JavaScript, no external resources, so it works offline.
/// Elements carry stable ids (`sample-test-0`, `ask-btn`, `ask-answer`, `ask-card[data-state]`, …)
/// for scripts that drive it.
enum Page {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>UniLIP</title>
<link rel="icon" href="data:,">
<style>
:root { --bg:#f4f5f8; --card:#fff; --ink:#1d2330; --muted:#667085; --line:#e3e6ec; --accent:#4f46e5; --accent2:#7c3aed; --bad:#c0262d; --good:#12805c; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink); background:var(--bg); }
header { background:linear-gradient(120deg,var(--accent),var(--accent2)); color:#fff; padding:18px 28px; display:flex; align-items:center; gap:18px; flex-wrap:wrap; }
header h1 { margin:0; font-size:22px; letter-spacing:.3px; }
header p { margin:0; opacity:.85; font-size:14px; flex:1; }
#health { font-size:12px; background:rgba(255,255,255,.18); padding:4px 10px; border-radius:999px; white-space:nowrap; }
main { display:grid; grid-template-columns: 330px 1fr; gap:20px; padding:20px 28px 36px; max-width:1280px; margin:0 auto; }
@media (max-width: 900px) { main { grid-template-columns: 1fr; } }
.card { background:var(--card); border:1px solid var(--line); border-radius:12px; padding:16px 18px; box-shadow:0 1px 2px rgba(16,24,40,.05); }
.card h2 { margin:0 0 10px; font-size:16px; display:flex; align-items:center; gap:8px; }
.card h2 .n { display:inline-grid; place-items:center; width:22px; height:22px; border-radius:50%; background:var(--accent); color:#fff; font-size:12px; }
#samples { display:grid; grid-template-columns:repeat(4,1fr); gap:6px; margin-bottom:10px; }
.sample { padding:0; border:2px solid transparent; border-radius:8px; background:#eef0f4; cursor:pointer; aspect-ratio:1; overflow:hidden; }
.sample img { width:100%; height:100%; display:block; image-rendering:pixelated; }
.sample.selected { border-color:var(--accent); box-shadow:0 0 0 2px rgba(79,70,229,.25); }
.upload { display:block; font-size:13px; color:var(--muted); margin:6px 0 12px; }
.preview { display:flex; gap:12px; align-items:center; }
.preview img, .result img { width:150px; height:150px; border-radius:8px; background:#eef0f4; image-rendering:pixelated; object-fit:contain; border:1px solid var(--line); }
.preview img:not([src]), .result img:not([src]) { visibility:hidden; }
#selected-name { font-size:13px; color:var(--muted); word-break:break-all; }
.settings { display:grid; grid-template-columns:repeat(3,1fr); gap:8px; margin-top:12px; }
label { font-size:12px; color:var(--muted); display:block; }
input[type=text], input[type=number] { width:100%; padding:8px 10px; border:1px solid var(--line); border-radius:8px; font:inherit; background:#fbfbfd; }
input:focus { outline:2px solid rgba(79,70,229,.35); border-color:var(--accent); }
.tasks { display:grid; grid-template-columns:repeat(2, minmax(0,1fr)); gap:20px; align-content:start; }
@media (max-width: 1100px) { .tasks { grid-template-columns:1fr; } }
.row { display:flex; gap:8px; }
.row input { flex:1; }
button.go { padding:8px 16px; border:0; border-radius:8px; background:var(--accent); color:#fff; font:inherit; font-weight:600; cursor:pointer; white-space:nowrap; }
button.go:disabled { background:#a5a8c8; cursor:progress; }
.bar { height:8px; border-radius:999px; background:#eceef3; overflow:hidden; margin:12px 0 4px; }
.bar div { height:100%; width:0; background:linear-gradient(90deg,var(--accent),var(--accent2)); transition:width .25s; }
.status { font-size:12px; color:var(--muted); min-height:1.4em; }
.error { color:var(--bad); font-size:13px; min-height:0; }
.error:empty { display:none; }
#error { margin:14px 28px 0; padding:10px 14px; border-radius:8px; background:#fde8e8; color:var(--bad); border:1px solid #f5c2c2; }
#error:empty { display:none; }
.result { display:flex; flex-wrap:wrap; gap:12px; align-items:center; margin-top:8px; min-height:40px; }
.result img.in { width:72px; height:72px; }
.result .arrow { color:var(--muted); font-size:20px; }
.result:not(.shown) .arrow { visibility:hidden; }
.answer { font-size:18px; font-weight:600; color:var(--good); }
.metric { font-size:14px; white-space:nowrap; }
.metric b { font-size:20px; color:var(--good); }
.hint { font-size:12px; color:var(--muted); margin:4px 0 8px; }
</style>
</head>
<body>
<header>
  <h1>UniLIP</h1>
  <p>One CLIP-style encoder for understanding, reconstruction, generation and editing — tiny models, on the CPU.</p>
  <span id="health">checking…</span>
</header>
<div id="error" role="alert"></div>
<main>
  <section class="card" id="input-card">
    <h2><span class="n">1</span>Pick an image</h2>
    <div class="hint">ShapesWorld test scenes, or your own PNG/JPEG.</div>
    <div id="samples"></div>
    <label class="upload">Upload <input type="file" id="upload" accept="image/png,image/jpeg"></label>
    <div class="preview"><img id="selected-image" alt="selected image"><div id="selected-name">nothing selected</div></div>
    <div class="settings">
      <div><label for="steps">Steps</label><input type="number" id="steps" value="20" min="1" max="50"></div>
      <div><label for="guidance">Guidance</label><input type="number" id="guidance" value="4.5" min="0" max="20" step="0.5"></div>
      <div><label for="seed">Seed</label><input type="number" id="seed" value="42" min="0"></div>
    </div>
    <div class="hint">Steps, guidance and seed apply to edit and generate.</div>
  </section>
  <section class="tasks">
    <div class="card" id="ask-card" data-state="idle">
      <h2><span class="n">2</span>Ask about it</h2>
      <div class="row"><input type="text" id="question" placeholder="What color is the circle?"><button class="go" id="ask-btn">Ask</button></div>
      <div class="bar"><div id="ask-progress"></div></div><div class="status" id="ask-status"></div>
      <div class="error" id="ask-error"></div>
      <div class="result"><img class="in" id="ask-input" alt="asked about"><div><div class="hint" id="ask-caption"></div><span class="answer" id="ask-answer"></span></div></div>
    </div>
    <div class="card" id="reconstruct-card" data-state="idle">
      <h2><span class="n">3</span>Reconstruct it</h2>
      <div class="row"><span class="hint" style="flex:1">Encode with the UniLIP encoder, decode with its pixel decoder.</span><button class="go" id="reconstruct-btn">Reconstruct</button></div>
      <div class="bar"><div id="reconstruct-progress"></div></div><div class="status" id="reconstruct-status"></div>
      <div class="error" id="reconstruct-error"></div>
      <div class="result"><img class="in" id="reconstruct-input" alt="input"><span class="arrow">→</span><img id="reconstruct-image" alt="reconstruction"><div class="metric" id="reconstruct-psnr"></div></div>
      <div class="hint" id="reconstruct-note"></div>
    </div>
    <div class="card" id="edit-card" data-state="idle">
      <h2><span class="n">4</span>Edit it</h2>
      <div class="row"><input type="text" id="instruction" placeholder="Make the red circle green."><button class="go" id="edit-btn">Edit</button></div>
      <div class="bar"><div id="edit-progress"></div></div><div class="status" id="edit-status"></div>
      <div class="error" id="edit-error"></div>
      <div class="result"><img class="in" id="edit-input" alt="input"><span class="arrow">→</span><img id="edit-image" alt="edited image"><div class="hint" id="edit-caption"></div></div>
    </div>
    <div class="card" id="generate-card" data-state="idle">
      <h2><span class="n">5</span>Generate from a prompt</h2>
      <div class="hint">The tiny model knows its training captions' style: sizes, colours, shapes, places and a background.</div>
      <div class="row"><input type="text" id="prompt" placeholder="a large red circle at the middle left and a large blue square at the middle right on a wavy background."><button class="go" id="generate-btn">Generate</button></div>
      <div class="bar"><div id="generate-progress"></div></div><div class="status" id="generate-status"></div>
      <div class="error" id="generate-error"></div>
      <div class="result"><img id="generate-image" alt="generated image"><div class="hint" id="generate-caption"></div></div>
    </div>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let selected = null;

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const text = body && body.error ? body.error : "HTTP " + response.status + " " + response.statusText;
    const err = new Error(text);
    err.status = response.status;
    throw err;
  }
  return body;
}

function showError(text) { $("error").textContent = text || ""; }

async function checkHealth() {
  try {
    const h = await api("/api/health");
    $("health").textContent = "ready · " + h.running + " running · " + h.queued + " queued";
  } catch (e) {
    $("health").textContent = "server unreachable";
  }
}

function choose(sample, button) {
  selected = { sample: sample.name, name: sample.name };
  document.querySelectorAll(".sample").forEach((b) => b.classList.remove("selected"));
  if (button) button.classList.add("selected");
  $("selected-image").src = sample.url;
  $("selected-name").textContent = "sample " + sample.name + ": " + sample.caption;
  if (sample.questions.length) $("question").value = sample.questions[0];
  if (sample.edits.length) $("instruction").value = sample.edits[0];
  if (!$("prompt").value) $("prompt").value = sample.caption;
}

async function loadSamples() {
  try {
    const list = await api("/api/samples");
    const grid = $("samples");
    list.samples.forEach((s, i) => {
      const b = document.createElement("button");
      b.className = "sample";
      b.id = "sample-" + s.name;
      b.title = s.caption;
      const img = document.createElement("img");
      img.src = s.url;
      img.alt = s.caption;
      b.appendChild(img);
      b.addEventListener("click", () => choose(s, b));
      grid.appendChild(b);
      if (i === 0) choose(s, b);
    });
  } catch (e) {
    showError("Could not list the samples: " + e.message);
  }
}

$("upload").addEventListener("change", () => {
  const file = $("upload").files[0];
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    const url = String(reader.result);
    selected = { image: url.slice(url.indexOf(",") + 1), name: file.name };
    document.querySelectorAll(".sample").forEach((b) => b.classList.remove("selected"));
    $("selected-image").src = url;
    $("selected-name").textContent = "uploaded: " + file.name + " (" + Math.round(file.size / 1024) + " KB)";
  };
  reader.onerror = () => showError("Could not read " + file.name);
  reader.readAsDataURL(file);
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function number(id) {
  const v = $(id).value.trim();
  return v === "" ? undefined : Number(v);
}

function setProgress(task, fraction, text) {
  $(task + "-progress").style.width = Math.round(fraction * 100) + "%";
  $(task + "-status").textContent = text;
}

async function run(task) {
  const card = $(task + "-card"), button = $(task + "-btn");
  $(task + "-error").textContent = "";
  showError("");
  const body = { task: task };
  if (task !== "generate") {
    if (!selected) { $(task + "-error").textContent = "Pick a sample or upload an image first."; card.dataset.state = "failed"; return; }
    if (selected.sample) body.sample = selected.sample; else body.image = selected.image;
  }
  if (task === "ask") body.question = $("question").value;
  if (task === "edit") body.instruction = $("instruction").value;
  if (task === "generate") body.prompt = $("prompt").value;
  if (task === "edit" || task === "generate") {
    body.steps = number("steps"); body.guidance = number("guidance"); body.seed = number("seed");
  }
  const inputSrc = task === "generate" ? "" : $("selected-image").src;
  card.dataset.state = "running";
  button.disabled = true;
  setProgress(task, 0, "submitting…");
  try {
    let job = await api("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    while (job.state === "queued" || job.state === "running") {
      setProgress(task, job.progress, Math.round(job.progress * 100) + "% · " + job.message);
      await sleep(250);
      job = await api(job.url);
    }
    if (job.state === "failed") throw new Error(job.error || "the job failed");
    setProgress(task, 1, "100% · done in " + (job.seconds || 0).toFixed(1) + " s");
    show(task, job.result, body, inputSrc);
    card.dataset.state = "done";
  } catch (e) {
    $(task + "-error").textContent = e.message;
    showError(task + ": " + e.message);
    setProgress(task, 0, "");
    card.dataset.state = "failed";
  } finally {
    button.disabled = false;
    checkHealth();
  }
}

function show(task, result, body, inputSrc) {
  if (inputSrc) { $(task + "-input").src = inputSrc; $(task + "-input").parentElement.classList.add("shown"); }
  if (task === "ask") { $("ask-answer").textContent = result.answer; $("ask-caption").textContent = body.question; }
  if (task === "reconstruct") {
    $("reconstruct-image").src = result.image_url;
    $("reconstruct-psnr").innerHTML = "PSNR <b></b> dB" + (result.ssim != null ? "<br>SSIM " + result.ssim.toFixed(3) : "");
    $("reconstruct-psnr").querySelector("b").textContent = result.psnr.toFixed(2);
    $("reconstruct-note").textContent = result.note || "";
  }
  if (task === "edit") { $("edit-image").src = result.image_url; $("edit-caption").textContent = body.instruction; }
  if (task === "generate") { $("generate-image").src = result.image_url; $("generate-caption").textContent = body.prompt; }
}

["ask", "reconstruct", "edit", "generate"].forEach((task) => {
  $(task + "-btn").addEventListener("click", () => run(task));
});
["question", "instruction", "prompt"].forEach((id, i) => {
  $(id).addEventListener("keydown", (e) => { if (e.key === "Enter") run(["ask", "edit", "generate"][i]); });
});
loadSamples();
checkHealth();
</script>
</body>
</html>
"""#
}
