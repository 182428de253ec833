// CLIPSeg web page: upload an image, type prompts, see a heatmap per prompt, draw a visual
// prompt, download the masks. Plain JS, no build step; talks to POST /segment.
"use strict";

const $ = (id) => document.getElementById(id);
const PALETTE = ["#e6194b", "#3cb44b", "#ffe119", "#0082c8", "#f58230", "#911eb4", "#46f0f0", "#f032e6",
                 "#d2f53c", "#fabed4", "#008080", "#dcbeff"];
const MAX_VIEW = 640;      // longest side of the result canvases
const MAX_SUPPORT_VIEW = 340;

const state = {
  file: null,          // the image File
  bitmap: null,        // decoded for display (null when the browser cannot decode it)
  sha: null,           // sha256 the server reported for this image (lets us skip re-uploading)
  supportBlob: null,   // example image of the visual prompt
  supportBitmap: null,
  mask: null,          // offscreen canvas at the example's natural size: white = object
  drawn: false,
  last: null,          // last JSON answer, re-rendered when the opacity changes
  busy: false,
};

function showError(msg) {
  const e = $("error");
  e.textContent = msg || "";
  e.hidden = !msg;
}
function setStatus(msg) { $("status").textContent = msg || ""; }

function fit(w, h, max) {
  const s = Math.min(1, max / Math.max(w, h));
  return [Math.max(1, Math.round(w * s)), Math.max(1, Math.round(h * s))];
}

function slug(text) {
  return (text.trim().replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._-]+|[._-]+$/g, "") || "prompt").slice(0, 40);
}

function stem(name) { return (name || "image").replace(/\.[^.]*$/, "") || "image"; }

async function decode(blob) {
  try { return await createImageBitmap(blob); } catch (e) { return null; }
}

async function loadInfo() {
  try {
    const r = await fetch("/info");
    const j = await r.json();
    const m = j.model;
    $("model-info").textContent = `${m.weights} · ${m.input_size}px input · ${m.device}`;
  } catch (e) {
    $("model-info").textContent = "model info unavailable";
  }
}

// ------------------------------------------------------------------ the image

$("image-input").addEventListener("change", async (ev) => {
  const file = ev.target.files[0];
  showError("");
  if (!file) return;
  state.file = file;
  state.sha = null;
  state.bitmap = await decode(file);
  const c = $("image-preview");
  if (state.bitmap) {
    const [w, h] = fit(state.bitmap.width, state.bitmap.height, 340);
    c.width = w; c.height = h;
    c.getContext("2d").drawImage(state.bitmap, 0, 0, w, h);
    c.hidden = false;
    $("image-meta").textContent = `${file.name} · ${state.bitmap.width}×${state.bitmap.height} · ${(file.size / 1024).toFixed(0)} KiB`;
  } else {
    c.hidden = true;
    $("image-meta").textContent = `${file.name}: this browser cannot display it; the server will still try to read it`;
  }
  $("segment-btn").disabled = false;
  $("support-use-image").disabled = false;
});

// ------------------------------------------------------------------ the visual prompt

async function setSupport(blob) {
  const bmp = await decode(blob);
  if (!bmp) { showError("cannot display the example image"); return; }
  state.supportBlob = blob;
  state.supportBitmap = bmp;
  const [w, h] = fit(bmp.width, bmp.height, MAX_SUPPORT_VIEW);
  for (const id of ["support-canvas", "support-draw"]) {
    const c = $(id);
    c.width = w; c.height = h;
    c.style.width = w + "px"; c.style.height = h + "px";
  }
  $("support-canvas").getContext("2d").drawImage(bmp, 0, 0, w, h);
  state.mask = document.createElement("canvas");
  state.mask.width = bmp.width; state.mask.height = bmp.height;
  clearMask();
  $("support-area").hidden = false;
}

function clearMask() {
  const d = $("support-draw");
  d.getContext("2d").clearRect(0, 0, d.width, d.height);
  if (state.mask) {
    const g = state.mask.getContext("2d");
    g.fillStyle = "#000";
    g.fillRect(0, 0, state.mask.width, state.mask.height);
  }
  state.drawn = false;
  $("use-visual").checked = false;
}

$("support-input").addEventListener("change", (ev) => { if (ev.target.files[0]) setSupport(ev.target.files[0]); });
$("support-use-image").addEventListener("click", () => { if (state.file) setSupport(state.file); });
$("support-clear").addEventListener("click", clearMask);

(function drawing() {
  const d = $("support-draw");
  let last = null;
  const pos = (ev) => {
    const r = d.getBoundingClientRect();
    return [(ev.clientX - r.left) * d.width / r.width, (ev.clientY - r.top) * d.height / r.height];
  };
  const stroke = (a, b) => {
    const brush = +$("brush").value;
    const g = d.getContext("2d");
    g.strokeStyle = "rgba(255, 40, 40, 0.55)"; g.lineWidth = brush; g.lineCap = "round"; g.lineJoin = "round";
    g.beginPath(); g.moveTo(a[0], a[1]); g.lineTo(b[0], b[1]); g.stroke();
    const s = state.mask.width / d.width;  // the same stroke on the full-size mask
    const m = state.mask.getContext("2d");
    m.strokeStyle = "#fff"; m.lineWidth = brush * s; m.lineCap = "round"; m.lineJoin = "round";
    m.beginPath(); m.moveTo(a[0] * s, a[1] * s); m.lineTo(b[0] * s, b[1] * s); m.stroke();
    state.drawn = true;
    $("use-visual").checked = true;
  };
  d.addEventListener("pointerdown", (ev) => {
    if (!state.mask) return;
    d.setPointerCapture(ev.pointerId);
    last = pos(ev);
    stroke(last, [last[0] + 0.01, last[1]]);
  });
  d.addEventListener("pointermove", (ev) => {
    if (!last) return;
    const p = pos(ev);
    stroke(last, p);
    last = p;
  });
  const end = () => { last = null; };
  d.addEventListener("pointerup", end);
  d.addEventListener("pointercancel", end);
})();

// ------------------------------------------------------------------ segmenting

function prompts() {
  return $("prompts").value.split("\n").map((s) => s.trim()).filter((s) => s.length > 0);
}

function canvasBlob(canvas) {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

async function request(withImage) {
  const fd = new FormData();
  if (withImage || !state.sha) fd.append("image", state.file, state.file.name || "image");
  else fd.append("image_sha256", state.sha);
  for (const p of prompts()) fd.append("prompt", p);
  if ($("use-visual").checked && state.drawn && state.supportBlob) {
    fd.append("support_image", state.supportBlob, "support.png");
    fd.append("support_mask", await canvasBlob(state.mask), "support_mask.png");
    if ($("text-weight").value !== "") fd.append("text_weight", $("text-weight").value);  // mixed prompts
  }
  fd.append("threshold", $("threshold").value);
  fd.append("outputs", "rle,mask_png,prob_png");
  const r = await fetch("/segment", { method: "POST", body: fd });
  let j = null;
  try { j = await r.json(); } catch (e) { /* not JSON */ }
  return [r, j];
}

async function segment() {
  if (state.busy) return;
  showError("");
  if (!state.file) { showError("choose an image first"); return; }
  const useVisual = $("use-visual").checked && state.drawn;
  if (prompts().length === 0 && !useVisual) { showError("type at least one prompt, or draw a visual prompt"); return; }
  state.busy = true;
  $("segment-btn").disabled = true;
  setStatus("segmenting…");
  const t0 = performance.now();
  try {
    let [r, j] = await request(false);
    if (r.status === 404 && j && j.error === "image_not_cached") [r, j] = await request(true);
    if (!r.ok) {
      showError(j ? `${j.error}: ${j.detail}` : `HTTP ${r.status}`);
      setStatus("");
      return;
    }
    state.sha = j.image.sha256;
    state.last = j;
    const warn = $("warning");  // e.g. words the loaded model does not know
    warn.textContent = (j.warnings || []).join(" ");
    warn.hidden = !(j.warnings && j.warnings.length);
    await render(j);
    const ms = Math.round(performance.now() - t0);
    setStatus(`${j.results.length} prompt(s) in ${ms} ms · image features ${j.image.cached ? "from the cache" : "computed"}`);
  } catch (e) {
    showError(`request failed: ${e}`);
    setStatus("");
  } finally {
    state.busy = false;
    $("segment-btn").disabled = false;
  }
}

$("segment-btn").addEventListener("click", segment);
$("threshold").addEventListener("input", () => { $("threshold-value").textContent = (+$("threshold").value).toFixed(2); });
$("threshold").addEventListener("change", () => { if (state.last) segment(); });  // cached: no backbone pass
$("opacity").addEventListener("input", () => { if (state.last) render(state.last); });

// ------------------------------------------------------------------ results

function heat(t) {  // jet-like colour map, t in [0, 1]
  const c = (x) => Math.max(0, Math.min(1, x)) * 255;
  return [c(1.5 - Math.abs(4 * t - 3)), c(1.5 - Math.abs(4 * t - 2)), c(1.5 - Math.abs(4 * t - 1))];
}

async function pngImage(b64) {
  const img = new Image();
  img.src = "data:image/png;base64," + b64;
  await img.decode();
  return img;
}

async function drawResult(canvas, r, width, height) {
  const [w, h] = fit(width, height, MAX_VIEW);
  canvas.width = w; canvas.height = h;
  const g = canvas.getContext("2d");
  g.fillStyle = "#000"; g.fillRect(0, 0, w, h);
  if (state.bitmap) g.drawImage(state.bitmap, 0, 0, w, h);
  const base = g.getImageData(0, 0, w, h);
  const off = document.createElement("canvas");
  off.width = w; off.height = h;
  const og = off.getContext("2d");
  og.drawImage(await pngImage(r.prob_png), 0, 0, w, h);
  const prob = og.getImageData(0, 0, w, h).data;
  og.clearRect(0, 0, w, h);
  og.drawImage(await pngImage(r.mask_png), 0, 0, w, h);
  const mask = og.getImageData(0, 0, w, h).data;
  const opacity = +$("opacity").value;
  const px = base.data;
  for (let i = 0; i < px.length; i += 4) {
    const p = prob[i] / 255;
    const [hr, hg, hb] = heat(p);
    const a = opacity * (0.25 + 0.75 * p);
    px[i] = px[i] * (1 - a) + hr * a;
    px[i + 1] = px[i + 1] * (1 - a) + hg * a;
    px[i + 2] = px[i + 2] * (1 - a) + hb * a;
  }
  // outline of the mask at the threshold
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const i = (y * w + x) * 4;
      if (mask[i] > 127 && (mask[i - 4] <= 127 || mask[i + 4] <= 127 || mask[i - 4 * w] <= 127 || mask[i + 4 * w] <= 127)) {
        px[i] = 255; px[i + 1] = 255; px[i + 2] = 255;
      }
    }
  }
  g.putImageData(base, 0, 0);
}

async function render(j) {
  const box = $("results");
  box.textContent = "";
  $("results-empty").hidden = true;
  const name = stem(state.file && state.file.name);
  for (const r of j.results) {
    const card = document.createElement("div");
    card.className = "result";
    card.dataset.index = r.index;
    const title = document.createElement("h3");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = PALETTE[r.index % PALETTE.length];
    const label = document.createElement("span");
    label.className = "prompt";
    label.textContent = r.prompt;
    title.append(sw, label);
    const canvas = document.createElement("canvas");
    canvas.className = "heatmap";
    canvas.setAttribute("aria-label", `heatmap for ${r.prompt}`);
    const stats = document.createElement("div");
    stats.className = "stats";
    stats.textContent = `mask: ${(100 * r.area_fraction).toFixed(1)}% of the image · max p ${r.score.toFixed(2)} · mean p ${r.mean_probability.toFixed(2)}`;
    const links = document.createElement("div");
    const file = `${name}.${slug(r.prompt.replace("<visual prompt>", "visual"))}`;
    const dl = document.createElement("a");
    dl.className = "download-mask";
    dl.href = "data:image/png;base64," + r.mask_png;
    dl.download = `${file}.mask.png`;
    dl.textContent = "download mask";
    const dp = document.createElement("a");
    dp.className = "download-prob";
    dp.href = "data:image/png;base64," + r.prob_png;
    dp.download = `${file}.prob.png`;
    dp.textContent = "probabilities (16-bit PNG)";
    links.append(dl, dp);
    card.append(title, canvas, stats, links);
    box.append(card);
    await drawResult(canvas, r, j.image.width, j.image.height);
  }
  const rle = document.createElement("a");
  rle.id = "download-rle";
  rle.textContent = "all masks as COCO RLE JSON";
  rle.download = `${name}.rle.json`;
  rle.href = URL.createObjectURL(new Blob([JSON.stringify({
    image: state.file && state.file.name, height: j.image.height, width: j.image.width, threshold: j.threshold,
    annotations: j.results.map((r) => ({ index: r.index, prompt: r.prompt, segmentation: r.segmentation, area: r.area,
                                          bbox: r.bbox, score: r.score })),
  }, null, 1)], { type: "application/json" }));
  const holder = document.createElement("div");
  holder.className = "result-extra";
  holder.append(rle);
  box.append(holder);
  box.dataset.done = String(Date.now());
}

loadInfo();
