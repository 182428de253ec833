// CLIPSeg web page: choose an image (file, drop, paste or example), type prompts, see each
// prompt's map and all prompts in one label map with a legend, paint a visual prompt, download
// the masks. Plain JS, no build step; talks to POST /segment.
"use strict";

const $ = (id) => document.getElementById(id);
// The server's palette (clipseg.inference.outputs.PALETTE): the colours of the CLI's overlays and
// label maps, so a prompt has the same colour everywhere.
const PALETTE = [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
  [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255],
  [170, 110, 40], [255, 250, 200], [128, 0, 0], [170, 255, 195], [128, 128, 0], [255, 215, 180],
  [0, 0, 128], [128, 128, 128]];
const colour = (k) => PALETTE[k % PALETTE.length];
const css = (rgb) => `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
const MAX_VIEW = 640;      // longest side of the result canvases
const MAX_SUPPORT_VIEW = 480;  // the visual prompt's canvas, longer side (CSS fits it to the column)
const BRUSH = "rgb(255, 0, 200)";  // magenta: rare in photos; shown half-transparent over the example
const UNDO_DEPTH = 30;

const state = {
  file: null,          // the image Blob
  name: "image",       // its file name (downloads are named after it, like the CLI's outputs)
  bitmap: null,        // decoded for display (null when the browser cannot decode it)
  sha: null,           // sha256 the server reported for this image (lets us skip re-uploading)
  supportBlob: null,   // example image of the visual prompt
  supportBitmap: null,
  mask: null,          // offscreen canvas at the example's natural size: white = object
  drawn: false,
  undo: [],            // mask snapshots before each stroke
  cursor: null,        // keyboard painting position on the support canvas
  view: null,          // the answer shown: {answer, maps: [{prob, mask}], w, h}
  generation: 0,       // bumped per request and per image change: stale work never lands on the page
  controller: null,    // AbortController of the request in flight
  examplePrompts: null,
  presenceMin: 0.01,  // /info's presence_min_fraction (clipseg.constants.PRESENCE_MIN_FRACTION): a prompt is present when its mask holds this share
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

async function decode(blob) {
  try { return await createImageBitmap(blob); } catch (e) { return null; }
}

async function loadInfo() {
  try {
    const r = await fetch("/info");
    const j = await r.json();
    const m = j.model;
    $("model-info").textContent = `${m.weights} · ${m.input_size}px input · ${m.device} · threshold ${(+m.threshold).toFixed(2)} (the model's own)`;
    $("threshold").value = m.threshold;  // the model's recommended threshold until the user moves the slider
    $("threshold-value").textContent = (+m.threshold).toFixed(2);
    if (m.note) { $("model-note").textContent = m.note; $("model-note").hidden = false; }
    if (typeof j.presence_min_fraction === "number") state.presenceMin = j.presence_min_fraction;
  } catch (e) {
    $("model-info").textContent = "model info unavailable (is the server running?)";
  }
}

// ------------------------------------------------------------------ the image

async function setImage(blob, name) {
  showError("");
  state.generation += 1;  // results of the previous image are stale now
  state.file = blob;
  state.name = name || "image";
  state.sha = null;
  state.bitmap = await decode(blob);
  const c = $("image-preview");
  if (state.bitmap) {
    const [w, h] = fit(state.bitmap.width, state.bitmap.height, 340);
    c.width = w; c.height = h;
    c.getContext("2d").drawImage(state.bitmap, 0, 0, w, h);
    c.setAttribute("aria-label", `the chosen image, ${state.name}`);
    c.hidden = false;
    $("image-meta").textContent = `${state.name} · ${state.bitmap.width}×${state.bitmap.height} · ${(blob.size / 1024).toFixed(0)} KiB`;
  } else {
    c.hidden = true;
    $("image-meta").textContent = `${state.name}: this browser cannot display it; the server will still try to read it`;
  }
  clearResults();
  updateSegmentButton();
  $("support-use-image").disabled = false;
}

// Segment needs an image and a prompt: a text line, or a painted visual prompt that is switched on
function hasPrompt() { return prompts().length > 0 || ($("use-visual").checked && state.drawn); }
function updateSegmentButton() {
  const ready = Boolean(state.file) && hasPrompt();
  $("segment-btn").disabled = Boolean(state.controller) || !ready;
  $("segment-btn").title = ready ? "" : (state.file ? "type a prompt (or paint a visual prompt) first" : "choose an image first");
}

$("image-input").addEventListener("change", (ev) => {
  const file = ev.target.files[0];
  if (file) setImage(file, file.name);
});

(function dropAndPaste() {
  const zone = $("drop-zone");
  const box = $("image-box");
  box.addEventListener("dragover", (ev) => { ev.preventDefault(); zone.classList.add("over"); });
  box.addEventListener("dragleave", () => zone.classList.remove("over"));
  box.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("over");
    const file = [...(ev.dataTransfer.files || [])].find((f) => f.type.startsWith("image/")) || ev.dataTransfer.files[0];
    if (file) setImage(file, file.name);
  });
  zone.addEventListener("click", (ev) => { if (ev.target === zone) $("image-input").click(); });
  zone.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); $("image-input").click(); }
  });
  document.addEventListener("paste", (ev) => {
    const item = [...(ev.clipboardData ? ev.clipboardData.items : [])].find((i) => i.type.startsWith("image/"));
    if (!item) return;
    ev.preventDefault();
    const file = item.getAsFile();
    setImage(file, file.name && file.name !== "image.png" ? file.name : "pasted.png");
  });
})();

async function loadExamples() {
  let list = [];
  try { list = (await (await fetch("/examples")).json()).examples || []; } catch (e) { return; }
  list.sort((a, b) => Number(b.suited) - Number(a.suited));
  const box = $("examples");
  for (const ex of list) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "example";
    b.title = `${ex.credit}; prompts: ${ex.prompts.join(", ")}`;
    b.setAttribute("aria-label", `use the example image ${ex.name}` + (ex.suited ? " (fits the loaded model)" : ""));
    const img = document.createElement("img");
    img.src = ex.url; img.alt = "";
    const label = document.createElement("span");
    label.textContent = ex.suited ? `${ex.name} ★` : ex.name;
    b.append(img, label);
    b.addEventListener("click", async () => {
      const blob = await (await fetch(ex.url)).blob();
      await setImage(blob, ex.name);
      const current = $("prompts").value.trim();
      if (!current || current === state.examplePrompts) {
        state.examplePrompts = ex.prompts.join("\n");
        $("prompts").value = state.examplePrompts;
      }
      updateSegmentButton();
    });
    box.append(b);
  }
}

// ------------------------------------------------------------------ the visual prompt

async function setSupport(blob) {
  const bmp = await decode(blob);
  if (!bmp) { showError("cannot display the example image"); return; }
  state.supportBlob = blob;
  state.supportBitmap = bmp;
  // drawn at MAX_SUPPORT_VIEW on its longer side whatever the example's size (small ones enlarged,
  // large ones reduced); CSS then fits it to the column
  const s = MAX_SUPPORT_VIEW / Math.max(bmp.width, bmp.height);
  const [w, h] = [Math.max(1, Math.round(bmp.width * s)), Math.max(1, Math.round(bmp.height * s))];
  for (const id of ["support-canvas", "support-draw"]) {
    const c = $(id);
    c.width = w; c.height = h;
    c.classList.toggle("small", s > 2);  // an enlarged small example keeps sharp pixels
  }
  $("support-area").style.setProperty("--aspect", `${w} / ${h}`);
  $("support-canvas").getContext("2d").drawImage(bmp, 0, 0, w, h);
  state.mask = document.createElement("canvas");
  state.mask.width = bmp.width; state.mask.height = bmp.height;
  state.undo = [];
  state.cursor = [w / 2, h / 2];
  clearMask(false);
  $("support-area").hidden = false;
}

function snapshot() {
  const d = $("support-draw");
  state.undo.push([d.getContext("2d").getImageData(0, 0, d.width, d.height),
                   state.mask.getContext("2d").getImageData(0, 0, state.mask.width, state.mask.height), state.drawn]);
  if (state.undo.length > UNDO_DEPTH) state.undo.shift();
  $("support-undo").disabled = false;
}

function undo() {
  const last = state.undo.pop();
  if (!last) return;
  $("support-draw").getContext("2d").putImageData(last[0], 0, 0);
  state.mask.getContext("2d").putImageData(last[1], 0, 0);
  state.drawn = last[2];
  $("use-visual").checked = state.drawn;
  $("support-undo").disabled = state.undo.length === 0;
  updateSegmentButton();
}

function clearMask(keepUndo = true) {
  if (keepUndo && state.mask) snapshot();
  const d = $("support-draw");
  d.getContext("2d").clearRect(0, 0, d.width, d.height);
  if (state.mask) {
    const g = state.mask.getContext("2d");
    g.fillStyle = "#000";
    g.fillRect(0, 0, state.mask.width, state.mask.height);
  }
  state.drawn = false;
  $("use-visual").checked = false;
  updateSegmentButton();
}

$("support-input").addEventListener("change", (ev) => { if (ev.target.files[0]) setSupport(ev.target.files[0]); });
$("support-use-image").addEventListener("click", () => { if (state.file) setSupport(state.file); });
$("support-clear").addEventListener("click", () => clearMask());
$("support-undo").addEventListener("click", undo);

function stroke(a, b) {
  const d = $("support-draw");
  const brush = +$("brush").value;
  const erase = $("eraser").checked;
  const g = d.getContext("2d");
  g.save();
  g.globalCompositeOperation = erase ? "destination-out" : "source-over";
  g.lineCap = "round"; g.lineJoin = "round";
  if (erase) {
    g.lineWidth = brush + 4;
    g.beginPath(); g.moveTo(a[0], a[1]); g.lineTo(b[0], b[1]); g.stroke();
  } else {  // opaque paint (alpha stays even where strokes cross); the canvas's CSS opacity shows the image through
    g.strokeStyle = BRUSH; g.lineWidth = brush;
    g.beginPath(); g.moveTo(a[0], a[1]); g.lineTo(b[0], b[1]); g.stroke();
  }
  g.restore();
  const s = state.mask.width / d.width;  // the same stroke on the full-size mask
  const m = state.mask.getContext("2d");
  m.strokeStyle = erase ? "#000" : "#fff"; m.lineWidth = brush * s; m.lineCap = "round"; m.lineJoin = "round";
  m.beginPath(); m.moveTo(a[0] * s, a[1] * s); m.lineTo(b[0] * s, b[1] * s); m.stroke();
  if (!erase) state.drawn = true;
  $("use-visual").checked = state.drawn;
  updateSegmentButton();
}

(function drawing() {
  const d = $("support-draw");
  let last = null;
  const pos = (ev) => {
    const r = d.getBoundingClientRect();
    return [(ev.clientX - r.left) * d.width / r.width, (ev.clientY - r.top) * d.height / r.height];
  };
  d.addEventListener("pointerdown", (ev) => {
    if (!state.mask) return;
    d.setPointerCapture(ev.pointerId);
    snapshot();
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
  // keyboard: arrows move the brush and paint (Shift: move without painting), E eraser, Ctrl+Z undo, C clear
  d.addEventListener("keydown", (ev) => {
    if (!state.mask) return;
    const step = 6;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[ev.key]) {
      ev.preventDefault();
      const a = state.cursor;
      const b = [Math.min(d.width, Math.max(0, a[0] + moves[ev.key][0])), Math.min(d.height, Math.max(0, a[1] + moves[ev.key][1]))];
      if (!ev.shiftKey) { if (!ev.repeat) snapshot(); stroke(a, b); }
      state.cursor = b;
    } else if (ev.key === " " || ev.key === "Enter") {
      ev.preventDefault(); snapshot(); stroke(state.cursor, [state.cursor[0] + 0.01, state.cursor[1]]);
    } else if (ev.key.toLowerCase() === "e" && !ev.ctrlKey && !ev.metaKey) {
      $("eraser").checked = !$("eraser").checked;
    } else if (ev.key.toLowerCase() === "z" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault(); undo();
    } else if (ev.key.toLowerCase() === "c" && !ev.ctrlKey && !ev.metaKey) {
      clearMask();
    }
  });
})();

// ------------------------------------------------------------------ segmenting

function prompts() {
  return lines("prompts");
}

function canvasBlob(canvas) {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

// the mask-editing fields of POST /segment and their inputs on the page
const EDIT_NUMBERS = [["grow", "grow"], ["feather", "feather"], ["smooth", "smooth"], ["min_area", "min-area"]];
const wantCutout = () => $("want-cutout").checked;
// refinement and cut-outs need the image's pixels; new tiles need crops: the feature cache keeps neither
const needsImage = () => wantCutout() || $("refine").checked || $("tiles").value !== "";

function lines(id) {
  return $(id).value.split("\n").map((s) => s.trim()).filter((s) => s.length > 0);
}

async function request(withImage, signal) {
  const fd = new FormData();
  // a cut-out needs the image's pixels, which the server's feature cache does not keep
  if (withImage || !state.sha || needsImage()) fd.append("image", state.file, state.name);
  else fd.append("image_sha256", state.sha);
  for (const p of prompts()) fd.append("prompt", p);
  if ($("use-visual").checked && state.drawn && state.supportBlob) {
    fd.append("support_image", state.supportBlob, "support.png");
    fd.append("support_mask", await canvasBlob(state.mask), "support_mask.png");
    if ($("text-weight").value !== "") fd.append("text_weight", $("text-weight").value);  // mixed prompts
  }
  fd.append("threshold", $("threshold").value);
  for (const n of lines("negative")) fd.append("negative", n);
  for (const [field, id] of EDIT_NUMBERS) if ($(id).value !== "" && +$(id).value !== 0) fd.append(field, $(id).value);
  if ($("invert").checked) fd.append("invert", "true");
  if ($("fill-holes").checked) fd.append("fill_holes", "true");
  if ($("refine").checked) fd.append("refine", "true");
  if ($("tiles").value !== "") fd.append("tiles", $("tiles").value);
  fd.append("outputs", "rle,mask_png,prob_png,regions" + (wantCutout() ? ",cutout_png" : ""));
  const r = await fetch("/segment", { method: "POST", body: fd, signal });
  let j = null;
  try { j = await r.json(); } catch (e) { /* not JSON */ }
  return [r, j];
}

function setBusy(busy) {
  $("busy").hidden = !busy;
  $("results-section").setAttribute("aria-busy", String(busy));
  $("cancel-btn").hidden = !busy;
  $("segment-btn").disabled = busy || !state.file || !hasPrompt();
}

async function segment() {
  showError("");
  if (!state.file) { showError("choose an image first"); return; }
  const useVisual = $("use-visual").checked && state.drawn;
  if (prompts().length === 0 && !useVisual) { showError("type at least one prompt, or paint a visual prompt"); return; }
  if (state.controller) state.controller.abort();  // a newer request replaces the one in flight
  const controller = new AbortController();
  state.controller = controller;
  const generation = ++state.generation;
  setBusy(true);
  setStatus("");
  const t0 = performance.now();
  try {
    let [r, j] = await request(false, controller.signal);
    if (r.status === 404 && j && j.error === "image_not_cached") [r, j] = await request(true, controller.signal);
    if (generation !== state.generation) return;
    if (!r.ok) {
      clearResults();
      showError(j ? `${j.error}: ${j.detail}` : `the server answered HTTP ${r.status}`);
      return;
    }
    state.sha = j.image.sha256;
    const maps = await decodeMaps(j);
    if (generation !== state.generation) return;  // a newer request or image arrived meanwhile
    const warn = $("warning");  // e.g. words the loaded model does not know
    warn.textContent = (j.warnings || []).join(" ");
    warn.hidden = !(j.warnings && j.warnings.length);
    state.view = { answer: j, maps, w: maps.w, h: maps.h, t: +j.threshold };
    renderResults();
    const ms = Math.round(performance.now() - t0);
    setStatus(`${j.results.length} prompt(s) in ${ms} ms · image features ${j.image.cached ? "from the cache" : "computed"}`);
  } catch (e) {
    if (e.name === "AbortError") {
      if (generation === state.generation) setStatus("cancelled");
      return;
    }
    if (generation !== state.generation) return;
    clearResults();
    showError(e instanceof TypeError ? "cannot reach the server (is `clipseg serve` still running?)" : `request failed: ${e}`);
  } finally {
    if (state.controller === controller) {
      state.controller = null;
      setBusy(false);
    }
  }
}

$("segment-btn").addEventListener("click", segment);
$("cancel-btn").addEventListener("click", () => { if (state.controller) state.controller.abort(); });
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); if (state.file) segment(); }
});
// the threshold re-thresholds the probabilities the page holds: no request. The files behind the download
// links are the server's at the answer's threshold; after a move, a download first fetches them at the new one.
$("threshold").addEventListener("input", () => {
  $("threshold-value").textContent = (+$("threshold").value).toFixed(2);
  if (state.view) { state.view.t = +$("threshold").value; paintAll(); updateStats(); }
});
$("prompts").addEventListener("input", updateSegmentButton);
$("use-visual").addEventListener("change", updateSegmentButton);
$("results").addEventListener("click", freshDownload);
$("opacity").addEventListener("input", () => { if (state.view) paintAll(); });    // synchronous: no races
for (const id of ["grow", "feather", "smooth", "min-area", "invert", "fill-holes", "want-cutout", "negative", "refine",
                  "tiles"]) {
  $(id).addEventListener("change", () => { if (state.view) segment(); });  // cached features: decoder only
}

// ------------------------------------------------------------------ results

function pngImage(b64) {
  const img = new Image();
  img.src = "data:image/png;base64," + b64;
  return img.decode().then(() => img);
}

async function decodeMaps(j) {
  // every map at the view size, decoded once; repainting (opacity) is then synchronous
  const [w, h] = fit(j.image.width, j.image.height, MAX_VIEW);
  const off = document.createElement("canvas");
  off.width = w; off.height = h;
  const g = off.getContext("2d", { willReadFrequently: true });
  const maps = [];
  for (const r of j.results) {
    const [p, m] = await Promise.all([pngImage(r.prob_png), pngImage(r.mask_png)]);
    g.clearRect(0, 0, w, h); g.drawImage(p, 0, 0, w, h);
    const prob = g.getImageData(0, 0, w, h).data.slice();
    g.clearRect(0, 0, w, h); g.drawImage(m, 0, 0, w, h);
    const mask = g.getImageData(0, 0, w, h).data.slice();
    maps.push({ prob, mask });
  }
  maps.w = w; maps.h = h;
  return maps;
}

function baseImage(w, h) {
  const c = document.createElement("canvas");
  c.width = w; c.height = h;
  const g = c.getContext("2d", { willReadFrequently: true });
  g.fillStyle = "#000"; g.fillRect(0, 0, w, h);
  if (state.bitmap) g.drawImage(state.bitmap, 0, 0, w, h);
  return g.getImageData(0, 0, w, h);
}

// the server's mask at the answer's threshold (grow, feather ... applied); at another threshold the
// page's own: probability at or above it (a preview: the editing options apply on the next Segment)
function rethresholded() { return state.view.t !== +state.view.answer.threshold; }
function maskOf(k) {
  const v = state.view;
  if (!rethresholded()) return v.maps[k].mask;
  if (!v.own || v.own.t !== v.t) v.own = { t: v.t, masks: [] };  // made once per threshold for cards, label map, stats
  if (!v.own.masks[k]) {
    const prob = v.maps[k].prob, t = v.t * 255, own = new Uint8ClampedArray(prob.length);
    for (let i = 0; i < prob.length; i += 4) own[i] = prob[i] >= t ? 255 : 0;
    v.own.masks[k] = own;
  }
  return v.own.masks[k];
}

function updateStats() {
  // area and presence at the page's threshold (the view's pixels; the server's figures return on Segment)
  const again = rethresholded();
  document.querySelectorAll("#results .result").forEach((card) => {
    const k = +card.dataset.index;
    const r = state.view.answer.results[k];
    const mask = maskOf(k);
    let n = 0;
    for (let i = 0; i < mask.length; i += 4) if (mask[i] > 127) n++;
    const fraction = again ? n / (mask.length / 4) : r.area_fraction;
    const present = again ? fraction >= state.presenceMin : r.present;
    card.querySelector(".stats").textContent = statsText(r, present, fraction, again);
  });
  $("rethreshold-note").hidden = !again;
  $("rethreshold-note").textContent = again ? `shown at threshold ${state.view.t.toFixed(2)} from the probabilities held ` +
    `here; downloads fetch the files at this threshold` : "";
}

function statsText(r, present, fraction, again) {
  const nRegions = r.regions && !again ? r.regions.count : null;
  return `${present ? "present" : "not present"} · mask ${again ? "≈" : ""}${(100 * fraction).toFixed(1)}% of the image`
    + (nRegions === null ? "" : ` · ${nRegions} region${nRegions === 1 ? "" : "s"}`)
    + ` · max p ${r.score.toFixed(2)} · mean p ${r.mean_probability.toFixed(2)}`;
}

async function freshDownload(ev) {
  const a = ev.target.closest("a[download]");
  if (!a || !state.view || !rethresholded()) return;  // the links hold this threshold's files
  ev.preventDefault();
  const card = a.closest(".result");
  const which = a.className || a.id;
  await segment();  // at the slider's threshold: cached features, only the decoder and the maps run
  const again = card ? document.querySelector(`.result[data-index="${card.dataset.index}"] a.${which}`) : $(which);
  if (again && !rethresholded()) again.click();
}

function paintOne(canvas, k) {
  const { maps, w, h } = state.view;
  const prob = maps[k].prob, mask = maskOf(k);
  const img = baseImage(w, h);
  const px = img.data;
  const rgb = colour(k);
  const opacity = +$("opacity").value;
  for (let i = 0; i < px.length; i += 4) {
    const a = opacity * (0.15 + 0.85 * prob[i] / 255);
    const dim = mask[i] > 127 ? 1 : 0.7;
    px[i] = (px[i] * (1 - a) + rgb[0] * a) * dim;
    px[i + 1] = (px[i + 1] * (1 - a) + rgb[1] * a) * dim;
    px[i + 2] = (px[i + 2] * (1 - a) + rgb[2] * a) * dim;
  }
  outline(px, w, h, (i) => mask[i] > 127, () => [255, 255, 255]);
  canvas.width = w; canvas.height = h;
  canvas.classList.toggle("small", Math.max(w, h) < 320);  // a small image is shown enlarged, pixels sharp
  canvas.getContext("2d").putImageData(img, 0, 0);
}

function outline(px, w, h, inside, rgbAt) {
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const i = (y * w + x) * 4;
      if (inside(i) && (!inside(i - 4) || !inside(i + 4) || !inside(i - 4 * w) || !inside(i + 4 * w))) {
        const c = rgbAt(i);
        px[i] = c[0]; px[i + 1] = c[1]; px[i + 2] = c[2];
      }
    }
  }
}

function paintLabelMap(canvas) {
  // each pixel: the prompt of highest probability, where that probability is at or above the threshold
  const { maps, w, h } = state.view;
  const img = baseImage(w, h);
  const px = img.data;
  const t = state.view.t * 255;
  const opacity = +$("opacity").value;
  const label = new Int16Array(w * h).fill(-1);
  const masks = maps.map((_, k) => maskOf(k));
  for (let i = 0, p = 0; i < px.length; i += 4, p++) {
    let best = -1, bestP = -1;
    for (let k = 0; k < maps.length; k++) if (maps[k].prob[i] > bestP) { bestP = maps[k].prob[i]; best = k; }
    if (best >= 0 && bestP >= t && masks[best][i] > 127) {
      label[p] = best;
      const rgb = colour(best);
      px[i] = px[i] * (1 - opacity) + rgb[0] * opacity;
      px[i + 1] = px[i + 1] * (1 - opacity) + rgb[1] * opacity;
      px[i + 2] = px[i + 2] * (1 - opacity) + rgb[2] * opacity;
    } else {
      px[i] *= 0.55; px[i + 1] *= 0.55; px[i + 2] *= 0.55;
    }
  }
  outline(px, w, h, (i) => label[i / 4] >= 0, (i) => colour(label[i / 4]).map((c) => c * 0.6));
  canvas.width = w; canvas.height = h;
  canvas.classList.toggle("small", Math.max(w, h) < 320);
  canvas.getContext("2d").putImageData(img, 0, 0);
}

function paintAll() {
  document.querySelectorAll("#results .result canvas").forEach((c) => paintOne(c, +c.dataset.index));
  paintLabelMap($("label-map"));
}

function clearResults() {
  state.view = null;
  $("results").replaceChildren();
  $("legend").replaceChildren();
  $("combined").hidden = true;
  $("results-empty").hidden = false;
  $("warning").hidden = true;
}

function swatch(k) {
  const sw = document.createElement("span");
  sw.className = "swatch";
  sw.style.background = css(colour(k));
  return sw;
}

function renderResults() {
  // builds the cards of one answer at once (no awaits in here, so two answers never interleave)
  const j = state.view.answer;
  const cards = document.createDocumentFragment();
  const legend = document.createDocumentFragment();
  j.results.forEach((r, k) => {
    const present = r.present;  // the service's answer (clipseg.inference.masks.PRESENCE_MIN_FRACTION)
    const card = document.createElement("div");
    card.className = "result";
    card.dataset.index = r.index;
    const title = document.createElement("h3");
    const label = document.createElement("span");
    label.className = "prompt";
    label.textContent = r.prompt;
    title.append(swatch(k), label);
    const canvas = document.createElement("canvas");
    canvas.dataset.index = k;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `map of "${r.prompt}": ${present ? `${(100 * r.area_fraction).toFixed(1)}% of the image` : "not present"}`);
    const stats = document.createElement("div");
    stats.className = "stats";
    stats.textContent = statsText(r, present, r.area_fraction, false);
    const links = document.createElement("div");
    const file = `${state.name}.${r.key}`;  // the CLI's output names: FILE.KEY.kind.ext
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
    if (r.regions) {
      const dr = document.createElement("a");
      dr.className = "download-regions";
      dr.href = URL.createObjectURL(new Blob([JSON.stringify({ image: state.name, prompt: r.prompt, key: r.key,
        ...r.regions }, null, 1)], { type: "application/json" }));
      dr.download = `${file}.regions.json`;
      dr.textContent = "regions (JSON)";
      links.append(dr);
    }
    card.append(title, canvas, stats, links);
    if (r.cutout_png) {  // the cut-out over a checkerboard, as editors show transparency
      const cut = document.createElement("img");
      cut.className = "cutout";
      cut.alt = `cut-out of "${r.prompt}"`;
      cut.src = "data:image/png;base64," + r.cutout_png;
      const dc = document.createElement("a");
      dc.className = "download-cutout";
      dc.href = cut.src;
      dc.download = `${file}.cutout.png`;
      dc.textContent = "download cut-out (RGBA PNG)";
      card.append(cut, dc);
    }
    cards.append(card);
    const li = document.createElement("li");
    const text = document.createElement("span");
    text.textContent = `${r.prompt}${present ? "" : " (not present)"}`;
    if (!present) text.className = "absent";
    li.append(swatch(k), text);
    legend.append(li);
  });
  const rle = document.createElement("a");
  rle.id = "download-rle";
  rle.textContent = "all masks as COCO RLE JSON";
  rle.download = `${state.name}.rle.json`;
  rle.href = URL.createObjectURL(new Blob([JSON.stringify({
    image: state.name, height: j.image.height, width: j.image.width, threshold: j.threshold,
    annotations: j.results.map((r) => ({ index: r.index, prompt: r.prompt, key: r.key, segmentation: r.segmentation,
                                          area: r.area, bbox: r.bbox, score: r.score })),
  }, null, 1)], { type: "application/json" }));
  const holder = document.createElement("div");
  holder.className = "result-extra";
  holder.append(rle);
  cards.append(holder);
  $("results").replaceChildren(cards);
  $("legend").replaceChildren(legend);
  $("combined").hidden = false;
  $("results-empty").hidden = true;
  paintAll();
  updateStats();
  $("results").dataset.done = String(Date.now());
}

loadInfo();
loadExamples();
