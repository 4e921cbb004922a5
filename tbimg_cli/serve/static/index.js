// The tbimg tab: every step of every image series; runs side by side on one step slider, or one run at two
// steps; swipe, blink and difference; zoom and pan shared by every pane; the pixel under the cursor in the
// image's own values (16-bit ones too); window, gamma, contrast, brightness and colour maps.
// Plain ES modules, no build step: TensorBoard's plugin page loads scripts from its own origin only.
// Its routes (series, steps, image) are relative: the page's <base> is /data/plugin/tbimg/.

import { autoWindow, COLOUR_MAPS, decode, difference, maxValue, NEUTRAL, render as draw, unchanged, valuesAt } from "./display.js";
import { Strip } from "./strip.js";
import { closeConfusion, openConfusion, params as confusionParams } from "./confusion.js";

const PANE = 400; // a pane's width in CSS pixels at "fit"
const state = { tag: null, runs: [], step: null, stepB: null, mode: "side", zoom: null, panX: 0, panY: 0, swipe: 0.5, blink: 0, display: { ...NEUTRAL } };
let series = []; // from the `series` route
let stepsOf = {}; // run -> sorted steps of the current tag
let sources = new Map(); // "tag|run|step|sample" -> Promise of a decoded source: the few on screen
let drawing = 0; // which show() is current: an older one that finishes late draws nothing
let autoOfTag = null; // { tag, low, high }: the window of a tag's 16-bit images, from the first one shown
let strip = null;
let root;
let confusions = { matrices: [], pictures_only: [] }; // from the `confusions` route
let view = "images"; // or "confusion": the explorer, in a root of its own
let cmRoot = null;
const paneSources = new WeakMap(); // pane -> its sources, for the readout and redrawing
window.tbimgTimings = []; // milliseconds from a step asked for to every visible pane drawn (bench/)

export async function render() {
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "style.css";
  document.head.appendChild(link);
  root = document.createElement("div");
  root.className = "tbimg";
  document.body.appendChild(root);
  readHash();
  const none = { matrices: [], pictures_only: [] };
  [series, confusions] = await Promise.all([getJson("series"), getJson("confusions").catch(() => none)]);
  const anyMatrix = confusions.matrices.length + confusions.pictures_only.length > 0;
  document.addEventListener("keydown", onKey);
  if (anyMatrix && (view === "confusion" || !series.some((s) => !s.tag.endsWith("Confusion Matrix")))) return showConfusion();
  if (!series.length) {
    root.innerHTML = '<div class="empty">No image summaries in this logdir yet.</div>';
    return;
  }
  await showImages();
}

async function showImages() {
  view = "images";
  if (!state.tag || !series.some((s) => s.tag === state.tag)) state.tag = series[0].tag;
  await chooseTag(state.tag, state.runs);
}

// The confusion explorer, in place of the image view; its state goes into the URL as the image view's does.
async function showConfusion() {
  view = "confusion";
  root.style.display = "none";
  cmRoot = document.createElement("div");
  cmRoot.className = "tbimg cm";
  document.body.appendChild(cmRoot);
  const back = () => {
    closeConfusion();
    cmRoot.remove();
    root.style.display = "";
    view = "images";
    if (!series.length) root.innerHTML = '<div class="empty">No image summaries in this logdir yet.</div>';
    else if (!root.querySelector(".panes")) showImages();
    else writeHashNow();
  };
  const write = () => {
    const address = new URL(location.href);
    address.hash = new URLSearchParams(confusionParams()).toString();
    if (address.href !== location.href) history.replaceState(null, "", address.href);
  };
  await openConfusion(cmRoot, confusions, new URLSearchParams(location.hash.slice(1)), write, back);
}

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function runsOf(tag) {
  return series.filter((s) => s.tag === tag).map((s) => s.run);
}

async function chooseTag(tag, runs) {
  drawing++; // what the last tag still has in flight draws nothing now
  state.tag = tag;
  const available = runsOf(tag);
  state.runs = (runs && runs.length ? runs : available).filter((run) => available.includes(run));
  if (!state.runs.length) state.runs = available;
  stepsOf = {};
  await Promise.all(
    available.map(async (run) => {
      const steps = await getJson(`steps?run=${encodeURIComponent(run)}&tag=${encodeURIComponent(tag)}`);
      stepsOf[run] = steps.map((s) => s.step);
    }),
  );
  const all = allSteps();
  if (state.step === null || !all.includes(state.step)) state.step = all[all.length - 1];
  layout();
  await show();
}

function allSteps() {
  const steps = new Set();
  for (const run of state.runs) for (const step of stepsOf[run] || []) steps.add(step);
  return [...steps].sort((a, b) => a - b);
}

// The step a run shows for the one asked for: that step, or its nearest earlier one (marked), or none.
function nearest(run, wanted) {
  let found = null;
  for (const step of stepsOf[run] || []) if (step <= wanted) found = step;
  return found;
}

function samplesOf(run) {
  return (series.find((s) => s.run === run && s.tag === state.tag) || {}).samples || 1;
}

function imageUrl(run, step, sample) {
  return `image?run=${encodeURIComponent(run)}&tag=${encodeURIComponent(state.tag)}&step=${step}&sample=${sample}`;
}

function layout() {
  const tags = [...new Set(series.map((s) => s.tag))].sort();
  const slider = (name, label, min, max, step) =>
    `<label title="${label}">${label} <input type="range" class="${name}" min="${min}" max="${max}" step="${step}"></label>`;
  root.innerHTML = `
    <aside>
      <h3>Tags</h3>${tags.map((t) => `<div class="tag${t === state.tag ? " selected" : ""}" data-tag="${escape(t)}">${escape(t)}</div>`).join("")}
      <h3>Runs</h3>${runsOf(state.tag).map((r) => `<label><input type="checkbox" data-run="${escape(r)}"${state.runs.includes(r) ? " checked" : ""}> ${escape(r)}</label>`).join("")}
      ${confusions.matrices.length + confusions.pictures_only.length ? `<h3>Confusion matrices</h3><div class="tag cm-open" title="every cell's examples, every step, two steps or runs compared">explore ${confusions.matrices.length + confusions.pictures_only.length} →</div>` : ""}
    </aside>
    <main>
      <div class="bar">
        <button data-go="first" title="first step (Home)">|&lt;</button>
        <button data-go="prev" title="previous step (←)">&lt;</button>
        <input type="range" class="slider" min="0" step="1">
        <button data-go="next" title="next step (→)">&gt;</button>
        <button data-go="last" title="last step (End)">&gt;|</button>
        <label>step <input type="number" class="exact" min="0"></label>
        <label title="compare the first run at this step with the chosen one; empty compares runs">vs step <input type="number" class="stepb" min="0" placeholder="runs"></label>
        <select class="mode" title="how two images are compared">
          <option value="side">side by side</option><option value="swipe">swipe</option>
          <option value="blink">blink (B)</option><option value="diff">difference</option>
        </select>
        <button data-zoom="out" title="zoom out (-)">−</button><button data-zoom="in" title="zoom in (+)">+</button>
        <button data-zoom="fit" title="fit (F)">fit</button><button data-zoom="one" title="1:1 (1)">1:1</button>
        <a class="permalink" target="_blank" title="this view, to send to a colleague">link</a>
      </div>
      <div class="bar display">
        ${slider("brightness", "brightness", -1, 1, 0.05)}${slider("contrast", "contrast", 0, 4, 0.05)}${slider("gamma", "gamma", 0.2, 5, 0.05)}
        <label title="values at or below low are black, at or above high white">window <input type="number" class="low"> – <input type="number" class="high"></label>
        <button data-window="auto" title="1st to 99th percentile of the first image">auto</button><button data-window="full" title="the whole range">full</button>
        <select class="cmap" title="colour map for single-channel images">${COLOUR_MAPS.map((m) => `<option>${m}</option>`).join("")}</select>
        <button data-window="reset" title="brightness, contrast, gamma, window and colour map as stored">reset</button>
        <span class="readout"></span>
      </div>
      <div class="strip" title="every step of the first run; only those in view are loaded"></div>
      <div class="panes"></div>
    </main>`;
  root.querySelectorAll(".tag[data-tag]").forEach((el) => (el.onclick = () => chooseTag(el.dataset.tag, [])));
  const explore = root.querySelector(".cm-open");
  if (explore) explore.onclick = () => showConfusion();
  root.querySelectorAll("input[data-run]").forEach(
    (el) =>
      (el.onchange = () => {
        state.runs = [...root.querySelectorAll("input[data-run]:checked")].map((c) => c.dataset.run);
        show();
      }),
  );
  root.querySelectorAll("[data-go]").forEach((el) => (el.onclick = () => go(el.dataset.go)));
  root.querySelectorAll("[data-zoom]").forEach((el) => (el.onclick = () => zoom(el.dataset.zoom)));
  root.querySelectorAll("[data-window]").forEach((el) => (el.onclick = () => setWindow(el.dataset.window)));
  const bar = root.querySelector(".slider");
  bar.oninput = () => setStep(allSteps()[Number(bar.value)]);
  root.querySelector(".exact").onchange = (event) => setStep(Number(event.target.value), true);
  root.querySelector(".stepb").onchange = (event) => {
    state.stepB = event.target.value === "" ? null : Number(event.target.value);
    show();
  };
  const mode = root.querySelector(".mode");
  mode.value = state.mode;
  mode.onchange = () => {
    state.mode = mode.value;
    show();
  };
  for (const name of ["brightness", "contrast", "gamma"]) {
    root.querySelector(`.${name}`).oninput = (event) => setDisplay({ [name]: Number(event.target.value) });
  }
  for (const name of ["low", "high"]) {
    root.querySelector(`.${name}`).onchange = (event) => setDisplay({ [name]: event.target.value === "" ? null : Number(event.target.value) });
  }
  root.querySelector(".cmap").onchange = (event) => setDisplay({ cmap: event.target.value });
  strip = new Strip(root.querySelector(".strip"), (step) => setStep(step));
}

function go(where) {
  const all = allSteps();
  const at = all.indexOf(state.step);
  const index = { first: 0, last: all.length - 1, prev: Math.max(0, at - 1), next: Math.min(all.length - 1, at + 1) }[where];
  setStep(all[index]);
}

function setStep(step, typed = false) {
  const all = allSteps();
  if (typed && !all.includes(step)) {
    const earlier = all.filter((s) => s <= step);
    step = earlier.length ? earlier[earlier.length - 1] : all[0];
  }
  if (step === undefined || step === state.step) return syncBar();
  state.step = step;
  show();
}

function zoom(how) {
  const current = state.zoom || fitZoom();
  state.zoom = { in: current * 1.25, out: current / 1.25, fit: null, one: 1 }[how];
  if (how === "fit") state.panX = state.panY = 0;
  transform();
}

function fitZoom() {
  const first = series.find((s) => s.tag === state.tag);
  return first && first.width ? Math.min(PANE / first.width, 8) : 1;
}

function setDisplay(change) {
  Object.assign(state.display, change);
  redraw();
}

function setWindow(how) {
  if (how === "reset") state.display = { ...NEUTRAL };
  if (how === "full") Object.assign(state.display, { low: null, high: null });
  if (how === "auto") {
    const first = firstSource();
    if (first) Object.assign(state.display, autoWindow(first));
  }
  redraw();
}

function onKey(event) {
  if (view !== "images" || (event.target.tagName === "INPUT" && event.target.type === "number")) return;
  const keys = { ArrowLeft: () => go("prev"), ArrowRight: () => go("next"), Home: () => go("first"), End: () => go("last"),
    "+": () => zoom("in"), "=": () => zoom("in"), "-": () => zoom("out"), f: () => zoom("fit"), 1: () => zoom("one"),
    b: () => { state.blink = 1 - state.blink; transform(); } };
  const action = keys[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
}

// The slider, inputs and URL for the chosen step; the strip of thumbnails too once `withStrip` (after the
// panes are drawn: its few dozen images would otherwise take the browser's connections ahead of the panes').
function syncBar(withStrip = false) {
  const all = allSteps();
  const bar = root.querySelector(".slider");
  bar.max = String(Math.max(0, all.length - 1));
  bar.value = String(all.indexOf(state.step));
  root.querySelector(".exact").value = String(state.step);
  root.querySelector(".stepb").value = state.stepB === null ? "" : String(state.stepB);
  for (const name of ["brightness", "contrast", "gamma"]) root.querySelector(`.${name}`).value = String(state.display[name]);
  const range = effectiveWindow();
  root.querySelector(".low").value = range ? String(range.low) : "";
  root.querySelector(".high").value = range ? String(range.high) : "";
  root.querySelector(".cmap").value = state.display.cmap;
  const first = state.runs.find((run) => nearest(run, state.step) !== null);
  if (first && withStrip) strip.show(stepsOf[first], (step) => imageUrl(first, step, 0), nearest(first, state.step));
  writeHash();
}

function source(run, step, sample) {
  const key = `${state.tag}|${run}|${step}|${sample}`;
  if (!sources.has(key)) {
    const controller = new AbortController();
    const loading = fetch(imageUrl(run, step, sample), { signal: controller.signal }).then(async (response) => {
      if (!response.ok) throw new Error(await response.text());
      return decode(await response.blob());
    });
    loading.catch(() => sources.get(key) === loading && sources.delete(key)); // asked again next time
    loading.abort = () => controller.abort();
    sources.set(key, loading);
  }
  return sources.get(key);
}

// The images shown: rows of (run, step) in side-by-side mode, one pair per sample in the others.
function views() {
  const rows = state.runs.map((run) => ({ run, step: nearest(run, state.step) })).filter((r) => r.step !== null);
  if (state.stepB !== null && rows.length) {
    const step = nearest(rows[0].run, state.stepB);
    rows.splice(1, 0, { run: rows[0].run, step: step === null ? rows[0].step : step, second: true });
  }
  return rows;
}

// Draw what the mode shows for the chosen step. Only these images are fetched (a pane scrolled out of view
// is fetched when it comes into view): a series of 10,000 steps costs the images of one step per run.
async function show() {
  const started = performance.now();
  const id = ++drawing;
  syncBar();
  const panes = root.querySelector(".panes");
  const rows = views();
  const samples = Math.max(1, ...rows.map((r) => samplesOf(r.run)));
  const wanted = new Set(rows.flatMap((r) => [...Array(samples).keys()].map((k) => `${state.tag}|${r.run}|${r.step}|${k}`)));
  for (const [key, loading] of [...sources]) {
    if (wanted.has(key)) continue;
    sources.delete(key); // flat memory: the bitmaps of steps no longer shown are let go at once
    loading.abort(); // and a step dragged past is not fetched to the end, ahead of the one asked for now
    loading.then((s) => s.bitmap && s.bitmap.close(), () => {});
  }
  const html = [];
  const layout = JSON.stringify([state.tag, state.mode, rows.map((r) => [r.run, !!r.second, samplesOf(r.run)])]);
  const title = (r) => {
    const mark = r.second ? " (vs step)" : r.step !== state.step ? " (nearest earlier)" : "";
    return `${escape(r.run)} <span class="${mark ? "nearest" : "at"}">step ${r.step}${mark}</span>`;
  };
  if (state.mode === "side" || rows.length < 2) {
    for (const r of rows) {
      html.push(`<div class="row"><div class="title">${title(r)}</div><div class="samples">`);
      for (let k = 0; k < samplesOf(r.run); k++) html.push(`<div class="pane" data-run="${escape(r.run)}" data-step="${r.step}" data-sample="${k}"></div>`);
      html.push("</div></div>");
    }
  } else {
    const [a, b] = rows;
    html.push(`<div class="row"><div class="title">${title(a)} · ${title(b)}</div><div class="samples">`);
    for (let k = 0; k < Math.min(samplesOf(a.run), samplesOf(b.run)); k++) {
      html.push(`<div class="pane compare" data-run="${escape(a.run)}" data-step="${a.step}" data-run-b="${escape(b.run)}" data-step-b="${b.step}" data-sample="${k}"></div>`);
    }
    html.push("</div></div>");
  }
  if (layout === panes.dataset.layout && rows.length) {
    // The same rows and samples at another step: the panes stay (no new layout, no blank frame) and their
    // canvases are replaced as the new step's images arrive.
    const fresh = document.createElement("div");
    fresh.innerHTML = html.join("");
    const titles = fresh.querySelectorAll(".title");
    panes.querySelectorAll(".title").forEach((t, i) => (t.innerHTML = titles[i].innerHTML));
    const next = fresh.querySelectorAll(".pane");
    panes.querySelectorAll(".pane").forEach((pane, i) => Object.assign(pane.dataset, next[i].dataset));
  } else {
    panes.innerHTML = html.join("") || '<div class="empty">No run has this step or an earlier one.</div>';
    panes.dataset.layout = layout;
    panes.querySelectorAll(".pane").forEach(interact);
  }
  const all = [...panes.querySelectorAll(".pane")];
  const box = panes.getBoundingClientRect();
  const visible = all.filter((pane) => pane.getBoundingClientRect().top < box.bottom + 200);
  const later = all.filter((pane) => !visible.includes(pane));
  const results = await Promise.allSettled(visible.map((pane) => fill(pane, id)));
  if (id !== drawing) return;
  if (later.length) {
    const observer = new IntersectionObserver((entries) => {
      for (const entry of entries) if (entry.isIntersecting) observer.unobserve(entry.target), fill(entry.target, id);
    }, { root: panes, rootMargin: "200px" });
    later.forEach((pane) => observer.observe(pane));
  }
  const failed = results.find((r) => r.status === "rejected");
  if (failed) root.querySelector(".readout").textContent = String(failed.reason.message || failed.reason);
  transform();
  syncBar(true);
  writeHashNow(); // the URL is right the moment the step is shown (a copied link opens this very view)
  window.tbimgTimings.push(performance.now() - started);
  root.dataset.shown = `${state.step}`;
}

function firstSource() {
  for (const pane of root.querySelectorAll(".pane")) if (paneSources.has(pane)) return paneSources.get(pane)[0];
  return null;
}

// A 16-bit image has no useful default window at 0..65535: until one is chosen, the tag's first image's
// 1st to 99th percentile, the same for every pane so that they compare.
function effectiveWindow() {
  const d = state.display;
  if (d.low !== null || d.high !== null) {
    const first = firstSource();
    return { low: d.low ?? 0, high: d.high ?? (first ? maxValue(first) : 255) };
  }
  return autoOfTag && autoOfTag.tag === state.tag ? autoOfTag : null;
}

async function fill(pane, id) {
  const run = pane.dataset.run;
  const step = Number(pane.dataset.step);
  const sample = Number(pane.dataset.sample);
  const compare = pane.classList.contains("compare");
  const pair = [source(run, step, sample)];
  if (compare) pair.push(source(pane.dataset.runB, Number(pane.dataset.stepB), sample));
  const loaded = await Promise.all(pair);
  if (id !== drawing) return;
  if (loaded[0].bits === 16 && !(autoOfTag && autoOfTag.tag === state.tag)) autoOfTag = { tag: state.tag, ...autoWindow(loaded[0]) };
  paneSources.set(pane, loaded);
  paint(pane);
  transform();
}

function displayFor() {
  const range = effectiveWindow();
  return { ...state.display, low: range ? range.low : null, high: range ? range.high : null };
}

function paint(pane) {
  const loaded = paneSources.get(pane);
  if (!loaded) return;
  const display = displayFor();
  const canvases = [];
  if (pane.classList.contains("compare") && state.mode === "diff") {
    const { image, max, gain } = difference(loaded[0], loaded[1]);
    canvases.push(canvasOf(image, "difference"));
    pane.dataset.max = String(max);
    root.querySelector(".readout").textContent = `|a − b| max ${max} (×${gain.toFixed(1)})`;
  } else {
    loaded.forEach((s, i) => canvases.push(canvasOf(unchanged(s, display) ? s.bitmap : draw(s, display), i ? "b" : "a")));
  }
  pane.replaceChildren(...canvases);
  if (pane.classList.contains("compare") && state.mode === "swipe") {
    const divider = document.createElement("div");
    divider.className = "divider";
    pane.appendChild(divider);
  }
  pane.dataset.bits = String(loaded[0].bits);
}

function redraw() {
  root.querySelectorAll(".pane").forEach(paint);
  transform();
  syncBar(true);
}

// A pane's canvas at the image's own size: drawn from a bitmap as it is, or from mapped pixels.
function canvasOf(picture, name) {
  const canvas = document.createElement("canvas");
  canvas.width = picture.width;
  canvas.height = picture.height;
  canvas.className = name;
  const context = canvas.getContext("2d");
  if (picture instanceof ImageData) context.putImageData(picture, 0, 0);
  else context.drawImage(picture, 0, 0);
  return canvas;
}

// Zoom and pan, the same transform on every pane; pixels as sharp squares (image-rendering: pixelated).
function transform() {
  const z = state.zoom || fitZoom();
  const fit = fitZoom();
  root.querySelectorAll(".pane").forEach((pane) => {
    const canvas = pane.querySelector("canvas");
    const first = series.find((s) => s.tag === state.tag) || { width: 1, height: 1 };
    const width = canvas ? canvas.width : first.width;
    const height = canvas ? canvas.height : first.height;
    pane.style.width = `${Math.round(width * fit)}px`;
    pane.style.height = `${Math.round(height * fit)}px`;
    if (!canvas) return;
    pane.querySelectorAll("canvas").forEach((c) => (c.style.transform = `translate(${state.panX}px, ${state.panY}px) scale(${z})`));
    const b = pane.querySelector("canvas.b");
    if (b && state.mode === "swipe") {
      const at = state.swipe * width * fit;
      b.style.clipPath = `inset(0 0 0 ${Math.max(0, (at - state.panX) / z)}px)`;
      pane.querySelector(".divider").style.left = `${at}px`;
    }
    if (b && state.mode === "blink") b.style.visibility = state.blink ? "hidden" : "visible";
  });
  writeHash();
}

function interact(pane) {
  pane.onwheel = (event) => {
    event.preventDefault();
    zoom(event.deltaY < 0 ? "in" : "out");
  };
  let dragging = null;
  pane.onmousedown = (event) => (dragging = { x: event.clientX, y: event.clientY, panX: state.panX, panY: state.panY, swipe: event.target.classList.contains("divider") });
  window.onmouseup = () => (dragging = null);
  pane.onmousemove = (event) => {
    const box = pane.getBoundingClientRect();
    if (dragging && dragging.swipe) {
      state.swipe = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
      transform();
      return;
    }
    if (dragging) {
      state.panX = dragging.panX + event.clientX - dragging.x;
      state.panY = dragging.panY + event.clientY - dragging.y;
      transform();
      return;
    }
    readPixel(pane, event.clientX - box.left, event.clientY - box.top);
  };
}

// The pixel under the cursor, in the image's own values (a 16-bit image's, not the 8 bits drawn).
function readPixel(pane, px, py) {
  const loaded = paneSources.get(pane);
  if (!loaded) return;
  const z = state.zoom || fitZoom();
  const x = Math.floor((px - state.panX) / z);
  const y = Math.floor((py - state.panY) / z);
  const values = loaded.map((s) => valuesAt(s, x, y));
  if (values[0] === null) return;
  let text = `x ${x}, y ${y}: ${values.map((v) => `(${v})`).join(" ")}`;
  if (loaded.length === 2 && values[1] !== null) {
    const a = values[0].split(",").map(Number);
    const b = values[1].split(",").map(Number);
    text += ` |a − b| (${a.map((v, i) => Math.abs(v - (b[i] ?? b[0]))).join(",")})`;
  }
  if (loaded[0].bits === 16) text += " 16-bit";
  root.querySelector(".readout").textContent = text;
}

// The view in the page's fragment, so a copied URL opens as it was.
// The URL follows the state, written at most once a frame: `history.replaceState` costs about a millisecond,
// and a step change used to call it once per pane.
let hashPending = false;
function writeHash() {
  if (hashPending) return;
  hashPending = true;
  requestAnimationFrame(() => {
    hashPending = false;
    writeHashNow();
  });
}

function writeHashNow() {
  if (view !== "images") return;
  const d = state.display;
  const params = new URLSearchParams({ tag: state.tag || "", runs: state.runs.join("\n"), step: String(state.step), mode: state.mode });
  if (state.stepB !== null) params.set("vs", String(state.stepB));
  if (state.zoom) params.set("zoom", state.zoom.toFixed(3));
  if (state.panX || state.panY) params.set("pan", `${Math.round(state.panX)},${Math.round(state.panY)}`);
  if (state.swipe !== 0.5) params.set("swipe", state.swipe.toFixed(3));
  for (const name of ["brightness", "contrast", "gamma"]) if (d[name] !== NEUTRAL[name]) params.set(name, String(d[name]));
  if (d.low !== null || d.high !== null) params.set("window", `${d.low ?? ""},${d.high ?? ""}`);
  if (d.cmap !== "grey") params.set("cmap", d.cmap);
  const address = new URL(location.href); // absolute: the page's <base> would turn "#..." into another path
  address.hash = params.toString();
  if (address.href === location.href) return;
  history.replaceState(null, "", address.href);
  const link = root.querySelector(".permalink");
  if (link) link.href = address.href; // TensorBoard's own address does not carry it: this link does
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("view") === "confusion") view = "confusion";
  const number = (name) => (params.get(name) !== null && params.get(name) !== "" && !Number.isNaN(Number(params.get(name))) ? Number(params.get(name)) : null);
  if (params.get("tag")) state.tag = params.get("tag");
  if (params.get("runs")) state.runs = params.get("runs").split("\n");
  if (number("step") !== null) state.step = number("step");
  if (number("vs") !== null) state.stepB = number("vs");
  if (["side", "swipe", "blink", "diff"].includes(params.get("mode"))) state.mode = params.get("mode");
  if (number("zoom")) state.zoom = number("zoom");
  if (params.get("pan")) [state.panX, state.panY] = params.get("pan").split(",").map((v) => Number(v) || 0);
  if (number("swipe") !== null) state.swipe = Math.min(1, Math.max(0, number("swipe")));
  for (const name of ["brightness", "contrast", "gamma"]) if (number(name) !== null) state.display[name] = number(name);
  if (params.get("window")) {
    const [low, high] = params.get("window").split(",");
    state.display.low = low === "" || Number.isNaN(Number(low)) ? null : Number(low);
    state.display.high = high === "" || Number.isNaN(Number(high)) ? null : Number(high);
  }
  if (COLOUR_MAPS.includes(params.get("cmap"))) state.display.cmap = params.get("cmap");
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
