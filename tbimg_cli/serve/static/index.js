// The tbimg tab: every step of every image series, runs side by side on one step slider, swipe, blink and
// difference between two runs, zoom and pan shared by every pane, the pixel under the cursor.
// Plain ES module, no build step: TensorBoard's plugin page loads scripts from its own origin only.
// Its routes (series, steps, image) are relative: the page's <base> is /data/plugin/tbimg/.

const PANE = 400; // a pane's width in CSS pixels at "fit"
const state = { tag: null, runs: [], step: null, mode: "side", zoom: null, panX: 0, panY: 0, swipe: 0.5, blink: 0 };
let series = []; // from the `series` route
let stepsOf = {}; // run -> sorted steps of the current tag
let bitmaps = {}; // "run|step|sample" -> ImageBitmap, the few on screen
let root;

export async function render() {
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "style.css";
  document.head.appendChild(link);
  root = document.createElement("div");
  root.className = "tbimg";
  document.body.appendChild(root);
  readHash();
  series = await getJson("series");
  if (!series.length) {
    root.innerHTML = '<div class="empty">No image summaries in this logdir yet.</div>';
    return;
  }
  if (!state.tag || !series.some((s) => s.tag === state.tag)) state.tag = series[0].tag;
  document.addEventListener("keydown", onKey);
  await chooseTag(state.tag, state.runs);
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

// The step a run shows for the chosen one: that step, or its nearest earlier one (marked), or none.
function stepFor(run) {
  let found = null;
  for (const step of stepsOf[run] || []) if (step <= state.step) found = step;
  return found;
}

function layout() {
  const tags = [...new Set(series.map((s) => s.tag))].sort();
  root.innerHTML = `
    <aside>
      <h3>Tags</h3>${tags.map((t) => `<div class="tag${t === state.tag ? " selected" : ""}" data-tag="${escape(t)}">${escape(t)}</div>`).join("")}
      <h3>Runs</h3>${runsOf(state.tag).map((r) => `<label><input type="checkbox" data-run="${escape(r)}"${state.runs.includes(r) ? " checked" : ""}> ${escape(r)}</label>`).join("")}
    </aside>
    <main>
      <div class="bar">
        <button data-go="first" title="first step (Home)">|&lt;</button>
        <button data-go="prev" title="previous step (←)">&lt;</button>
        <input type="range" class="slider" min="0" step="1">
        <button data-go="next" title="next step (→)">&gt;</button>
        <button data-go="last" title="last step (End)">&gt;|</button>
        <label>step <input type="number" class="exact" min="0"></label>
        <select class="mode" title="how two runs are compared">
          <option value="side">side by side</option><option value="swipe">swipe</option>
          <option value="blink">blink (B)</option><option value="diff">difference</option>
        </select>
        <button data-zoom="out" title="zoom out (-)">−</button><button data-zoom="in" title="zoom in (+)">+</button>
        <button data-zoom="fit" title="fit (F)">fit</button><button data-zoom="one" title="1:1 (1)">1:1</button>
        <a class="permalink" target="_blank" title="this view, to send to a colleague">link</a>
        <span class="readout"></span>
      </div>
      <div class="panes"></div>
    </main>`;
  root.querySelectorAll(".tag").forEach((el) => (el.onclick = () => chooseTag(el.dataset.tag, [])));
  root.querySelectorAll("[data-run]").forEach(
    (el) =>
      (el.onchange = () => {
        const checked = [...root.querySelectorAll("[data-run]:checked")].map((c) => c.dataset.run);
        state.runs = checked;
        show();
      }),
  );
  root.querySelectorAll("[data-go]").forEach((el) => (el.onclick = () => go(el.dataset.go)));
  root.querySelectorAll("[data-zoom]").forEach((el) => (el.onclick = () => zoom(el.dataset.zoom)));
  const slider = root.querySelector(".slider");
  slider.oninput = () => setStep(allSteps()[Number(slider.value)]);
  const exact = root.querySelector(".exact");
  exact.onchange = () => setStep(Number(exact.value), true);
  const mode = root.querySelector(".mode");
  mode.value = state.mode;
  mode.onchange = () => {
    state.mode = mode.value;
    show();
  };
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
  writeHash();
}

function fitZoom() {
  const first = series.find((s) => s.tag === state.tag);
  return first && first.width ? Math.min(PANE / first.width, 8) : 1;
}

function onKey(event) {
  if (event.target.tagName === "INPUT" && event.target.type === "number") return;
  const keys = { ArrowLeft: () => go("prev"), ArrowRight: () => go("next"), Home: () => go("first"), End: () => go("last"),
    "+": () => zoom("in"), "=": () => zoom("in"), "-": () => zoom("out"), f: () => zoom("fit"), 1: () => zoom("one"),
    b: () => { state.blink = 1 - state.blink; transform(); } };
  const action = keys[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
}

function syncBar() {
  const all = allSteps();
  const slider = root.querySelector(".slider");
  slider.max = String(Math.max(0, all.length - 1));
  slider.value = String(all.indexOf(state.step));
  root.querySelector(".exact").value = String(state.step);
  writeHash();
}

async function image(run, step, sample) {
  const key = `${run}|${step}|${sample}`;
  if (!bitmaps[key]) {
    const url = `image?run=${encodeURIComponent(run)}&tag=${encodeURIComponent(state.tag)}&step=${step}&sample=${sample}`;
    const response = await fetch(url);
    if (!response.ok) throw new Error(await response.text());
    bitmaps[key] = await createImageBitmap(await response.blob());
  }
  return bitmaps[key];
}

// Draw what the mode shows for the chosen step. Only these images are fetched: a series of 10,000 steps
// costs the images of one step per run.
async function show() {
  syncBar();
  const panes = root.querySelector(".panes");
  const shown = state.runs.map((run) => ({ run, step: stepFor(run) })).filter((r) => r.step !== null);
  const samples = Math.max(1, ...shown.map((r) => (series.find((s) => s.run === r.run && s.tag === state.tag) || {}).samples || 1));
  const wanted = new Set(shown.flatMap((r) => [...Array(samples).keys()].map((k) => `${r.run}|${r.step}|${k}`)));
  for (const key of Object.keys(bitmaps)) if (!wanted.has(key)) delete bitmaps[key]; // flat memory
  const html = [];
  if (state.mode === "side" || shown.length < 2) {
    for (const r of shown) {
      const marked = r.step !== state.step ? `<span class="nearest">step ${r.step} (nearest earlier)</span>` : "";
      html.push(`<div class="row"><div class="title">${escape(r.run)}${marked}</div><div class="samples">`);
      for (let k = 0; k < samples; k++) html.push(`<div class="pane" data-run="${escape(r.run)}" data-step="${r.step}" data-sample="${k}"></div>`);
      html.push("</div></div>");
    }
  } else {
    const [a, b] = shown;
    html.push(`<div class="row"><div class="title">${escape(a.run)} (step ${a.step}) · ${escape(b.run)} (step ${b.step})</div>`);
    html.push(`<div class="pane compare" data-a="${escape(a.run)}" data-b="${escape(b.run)}"></div></div>`);
  }
  panes.innerHTML = html.join("") || '<div class="empty">No run has this step or an earlier one.</div>';
  const jobs = [...panes.querySelectorAll(".pane")].map(async (pane) => {
    if (pane.classList.contains("compare")) return drawCompare(pane, shown[0], shown[1]);
    const bitmap = await image(pane.dataset.run, Number(pane.dataset.step), Number(pane.dataset.sample));
    pane.appendChild(canvasOf(bitmap));
  });
  await Promise.all(jobs);
  panes.querySelectorAll(".pane").forEach(interact);
  transform();
}

function canvasOf(bitmap) {
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  return canvas;
}

async function drawCompare(pane, a, b) {
  const [first, second] = await Promise.all([image(a.run, a.step, 0), image(b.run, b.step, 0)]);
  const one = canvasOf(first);
  const two = canvasOf(second);
  if (state.mode === "diff") {
    const w = Math.min(one.width, two.width);
    const h = Math.min(one.height, two.height);
    const pa = one.getContext("2d").getImageData(0, 0, w, h).data;
    const pb = two.getContext("2d").getImageData(0, 0, w, h).data;
    const out = new ImageData(w, h);
    let max = 0;
    for (let i = 0; i < pa.length; i += 4) for (let c = 0; c < 3; c++) max = Math.max(max, Math.abs(pa[i + c] - pb[i + c]));
    const gain = max ? 255 / max : 1;
    for (let i = 0; i < pa.length; i += 4) {
      for (let c = 0; c < 3; c++) out.data[i + c] = Math.abs(pa[i + c] - pb[i + c]) * gain;
      out.data[i + 3] = 255;
    }
    const diff = document.createElement("canvas");
    diff.width = w;
    diff.height = h;
    diff.getContext("2d").putImageData(out, 0, 0);
    diff.className = "difference";
    pane.dataset.max = String(max);
    pane.appendChild(diff);
    root.querySelector(".readout").textContent = `|a − b| max ${max} (×${gain.toFixed(1)})`;
    return;
  }
  one.className = "a";
  two.className = "b";
  pane.append(one, two);
  if (state.mode === "swipe") {
    const divider = document.createElement("div");
    divider.className = "divider";
    pane.appendChild(divider);
  }
}

// Zoom and pan, the same transform on every pane; pixels as sharp squares (image-rendering: pixelated).
function transform() {
  const z = state.zoom || fitZoom();
  root.querySelectorAll(".pane").forEach((pane) => {
    const canvas = pane.querySelector("canvas");
    if (!canvas) return;
    const fit = fitZoom();
    pane.style.width = `${Math.round(canvas.width * fit)}px`;
    pane.style.height = `${Math.round(canvas.height * fit)}px`;
    pane.querySelectorAll("canvas").forEach((c) => (c.style.transform = `translate(${state.panX}px, ${state.panY}px) scale(${z})`));
    const b = pane.querySelector("canvas.b");
    if (b && state.mode === "swipe") {
      const at = state.swipe * canvas.width * fit;
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

function readPixel(pane, px, py) {
  const z = state.zoom || fitZoom();
  const x = Math.floor((px - state.panX) / z);
  const y = Math.floor((py - state.panY) / z);
  const canvas = pane.querySelector("canvas");
  if (!canvas || x < 0 || y < 0 || x >= canvas.width || y >= canvas.height) return;
  const values = [...pane.querySelectorAll("canvas")].map((c) => [...c.getContext("2d").getImageData(x, y, 1, 1).data.slice(0, 3)].join(","));
  root.querySelector(".readout").textContent = `x ${x}, y ${y}: ${values.map((v) => `(${v})`).join(" ")}`;
}

// The view in the page's fragment: tag, runs, step, mode and zoom, so a copied URL opens as it was.
function writeHash() {
  const params = new URLSearchParams({ tag: state.tag || "", runs: state.runs.join("\n"), step: String(state.step), mode: state.mode });
  if (state.zoom) params.set("zoom", state.zoom.toFixed(3));
  const address = new URL(location.href); // absolute: the page's <base> would turn "#..." into another path
  address.hash = params.toString();
  history.replaceState(null, "", address.href);
  const link = root.querySelector(".permalink");
  if (link) link.href = address.href; // TensorBoard's own address does not carry it: this link does
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("tag")) state.tag = params.get("tag");
  if (params.get("runs")) state.runs = params.get("runs").split("\n");
  if (params.get("step") && !Number.isNaN(Number(params.get("step")))) state.step = Number(params.get("step"));
  if (params.get("mode")) state.mode = params.get("mode");
  if (params.get("zoom")) state.zoom = Number(params.get("zoom"));
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
