// The confusion explorer: a matrix drawn from its logged counts (normalised by true class, by predicted
// class, or counts), per-class recall, precision and F1, the most confused pairs; a click on a cell shows its
// examples (a row or column label: a whole true or predicted class); two epochs or two runs compared as a
// difference matrix, and a cell's examples that moved in and out. 10 classes or 1,000 (one canvas pixel a
// cell, zoomable). Reads the routes `confusions`, `counts`, `confusion`, `cell` and `thumbnail`.

const SIDE = 560; // the matrix's drawn size in CSS pixels at zoom 1
const MARGIN = 96; // room for class names left of and above the matrix, when they fit
const KEPT_BYTES = 64 << 20; // counts kept in memory (every step of a 1,000-class matrix over 16 epochs)
const KEPT_LEAST = 4; // steps kept however large the matrix
const state = { run: null, tag: null, step: null, norm: "true", vsRun: null, vsStep: null, cell: null, zoom: 1, sort: "class" };
let matrices = [];
let picturesOnly = [];
let classesOf = {}; // "run|tag" -> class names
const counts = new Map(); // "run|tag|step" -> Promise of { step, classes, values: Int32Array }
let drawing = 0;
let host;
let onState = () => {};
window.tbimgCmTimings = []; // milliseconds from a step asked for to its matrix drawn (bench/)

export async function openConfusion(element, listed, params, changed, back) {
  host = element;
  matrices = listed.matrices;
  picturesOnly = listed.pictures_only;
  onState = changed;
  readParams(params);
  const known = matrices.find((m) => m.run === state.run && m.tag === state.tag) || matrices[0];
  host.innerHTML = `
    <aside>
      <button class="back" title="the image series">← images</button>
      <h3>Confusion matrices</h3>
      ${matrices.map((m) => `<div class="tag matrix" data-run="${escape(m.run)}" data-tag="${escape(m.tag)}">${escape(m.tag)} <span class="muted">${escape(m.run)}</span></div>`).join("")}
      ${picturesOnly.length ? `<h3>Pictures only</h3>${picturesOnly.map((p) => `<div class="tag picture" data-run="${escape(p.run)}" data-tag="${escape(p.tag)}">${escape(p.tag)} <span class="muted">${escape(p.run)}</span></div>`).join("")}` : ""}
    </aside>
    <main>
      <div class="bar">
        <button data-go="prev" title="previous step (←)">&lt;</button>
        <input type="range" class="cm-slider" min="0" step="1">
        <button data-go="next" title="next step (→)">&gt;</button>
        <label>step <input type="number" class="cm-step" min="0"></label>
        <select class="norm" title="what a cell's colour and number are">
          <option value="true">by true class (recall)</option><option value="pred">by predicted class (precision)</option><option value="counts">counts</option>
        </select>
        <label title="compare with another step of this run, or of another run">vs <select class="vs-run"><option value="">nothing</option></select>
          step <input type="number" class="vs-step" min="0" placeholder="step"></label>
        <button data-zoom="out" title="zoom out">−</button><button data-zoom="in" title="zoom in">+</button><button data-zoom="fit">fit</button>
        <span class="cm-readout readout"></span>
      </div>
      <div class="cm-body">
        <div class="cm-matrix"><canvas class="cm-canvas"></canvas></div>
        <div class="cm-side"><h3>Classes</h3><div class="cm-classes"></div><h3>Most confused pairs</h3><ol class="cm-pairs"></ol></div>
      </div>
      <div class="cm-cell"></div>
      <div class="cm-large" hidden><canvas></canvas><div class="cm-large-title"></div></div>
    </main>`;
  host.querySelector(".back").onclick = back;
  host.querySelectorAll(".matrix").forEach((el) => (el.onclick = () => choose(el.dataset.run, el.dataset.tag)));
  host.querySelectorAll(".picture").forEach((el) => (el.onclick = () => showPicture(el.dataset.run, el.dataset.tag)));
  const slider = host.querySelector(".cm-slider");
  slider.oninput = () => setStep(steps()[Number(slider.value)]);
  host.querySelector(".cm-step").onchange = (event) => setStep(Number(event.target.value), true);
  host.querySelectorAll("[data-go]").forEach((el) => (el.onclick = () => go(el.dataset.go === "next" ? 1 : -1)));
  host.querySelectorAll("[data-zoom]").forEach((el) => (el.onclick = () => zoom(el.dataset.zoom)));
  const norm = host.querySelector(".norm");
  norm.onchange = () => ((state.norm = norm.value), draw());
  host.querySelector(".vs-run").onchange = (event) => {
    state.vsRun = event.target.value || null;
    if (state.vsRun && state.vsStep === null) state.vsStep = state.step;
    draw();
  };
  host.querySelector(".vs-step").onchange = (event) => {
    state.vsStep = event.target.value === "" ? null : Number(event.target.value);
    if (state.vsStep !== null && !state.vsRun) state.vsRun = state.run;
    draw();
  };
  const canvas = host.querySelector(".cm-canvas");
  canvas.onmousemove = (event) => hover(event);
  canvas.onclick = (event) => pick(event);
  canvas.onwheel = (event) => (event.preventDefault(), zoom(event.deltaY < 0 ? "in" : "out"));
  document.addEventListener("keydown", onKey);
  if (!known) {
    if (picturesOnly.length) return showPicture(picturesOnly[0].run, picturesOnly[0].tag);
    host.querySelector(".cm-body").innerHTML = '<div class="empty">No confusion matrix in this logdir.</div>';
    return;
  }
  await choose(known.run, known.tag, true);
}

export function closeConfusion() {
  document.removeEventListener("keydown", onKey);
}

function onKey(event) {
  if (event.target.tagName === "INPUT" && event.target.type === "number") return;
  if (event.key === "ArrowLeft") go(-1);
  if (event.key === "ArrowRight") go(1);
  if (event.key === "Escape") host.querySelector(".cm-large").hidden = true;
}

function readParams(params) {
  const number = (name) => (params.get(name) !== null && params.get(name) !== "" && !Number.isNaN(Number(params.get(name))) ? Number(params.get(name)) : null);
  state.run = params.get("cm_run");
  state.tag = params.get("cm_tag");
  state.step = number("cm_step");
  if (["true", "pred", "counts"].includes(params.get("norm"))) state.norm = params.get("norm");
  state.vsRun = params.get("vs_run") || null;
  state.vsStep = number("vs_step");
  const cell = (params.get("cell") || "").split(",");
  if (cell.length === 2) state.cell = cell.map((v) => (v === "" ? null : Number(v)));
}

export function params() {
  const out = { view: "confusion", cm_run: state.run || "", cm_tag: state.tag || "", cm_step: String(state.step ?? ""), norm: state.norm };
  if (state.vsRun) Object.assign(out, { vs_run: state.vsRun, vs_step: String(state.vsStep ?? "") });
  if (state.cell) out.cell = state.cell.map((v) => (v === null ? "" : String(v))).join(",");
  return out;
}

function current() {
  return matrices.find((m) => m.run === state.run && m.tag === state.tag);
}

function steps(run = state.run) {
  const matrix = matrices.find((m) => m.run === run && m.tag === state.tag);
  return matrix ? matrix.steps : [];
}

// The step a run shows for the one asked for: that step or its nearest earlier one, as the image compare does.
function nearest(run, wanted) {
  let found = null;
  for (const step of steps(run)) if (step <= wanted) found = step;
  return found;
}

async function choose(run, tag, keep = false) {
  const changed = run !== state.run || tag !== state.tag;
  state.run = run;
  state.tag = tag;
  if (!keep || changed || state.step === null || !steps().includes(state.step)) {
    if (!keep || state.step === null || !steps().includes(state.step)) state.step = steps()[steps().length - 1];
  }
  if (!keep) Object.assign(state, { cell: null, vsRun: null, vsStep: null });
  host.querySelectorAll(".matrix").forEach((el) => el.classList.toggle("selected", el.dataset.run === run && el.dataset.tag === tag));
  const vsRun = host.querySelector(".vs-run");
  const runs = matrices.filter((m) => m.tag === tag).map((m) => m.run);
  vsRun.innerHTML = `<option value="">nothing</option>${runs.map((r) => `<option value="${escape(r)}">${escape(r)}</option>`).join("")}`;
  await draw();
}

function setStep(step, typed = false) {
  const all = steps();
  if (typed && !all.includes(step)) {
    const earlier = all.filter((s) => s <= step);
    step = earlier.length ? earlier[earlier.length - 1] : all[0];
  }
  if (step === undefined || step === state.step) return;
  state.step = step;
  draw();
}

function go(direction) {
  const all = steps();
  const at = all.indexOf(state.step);
  setStep(all[Math.max(0, Math.min(all.length - 1, at + direction))]);
}

function zoom(how) {
  state.zoom = how === "fit" ? 1 : Math.max(1, Math.min(64, state.zoom * (how === "in" ? 1.5 : 1 / 1.5)));
  draw();
}

function load(run, step) {
  const key = `${run}|${state.tag}|${step}`;
  if (!counts.has(key)) {
    const query = `run=${encodeURIComponent(run)}&tag=${encodeURIComponent(state.tag)}&step=${step}`;
    const loading = (async () => {
      const id = `${run}|${state.tag}`;
      if (!classesOf[id]) classesOf[id] = (await json(`confusion?${query}&classes_only=1`)).classes;
      const response = await fetch(`counts?${query}`);
      if (!response.ok) throw new Error(await response.text());
      return { step, classes: classesOf[id], values: new Int32Array(await response.arrayBuffer()) };
    })();
    loading.catch(() => counts.delete(key));
    counts.set(key, loading);
    while (counts.size > kept()) counts.delete(counts.keys().next().value);
  }
  return counts.get(key);
}

function kept() {
  const classes = (classesOf[`${state.run}|${state.tag}`] || []).length || 1;
  return Math.max(KEPT_LEAST, Math.floor(KEPT_BYTES / (classes * classes * 4)));
}

// After a step is drawn, the run's other steps are fetched one at a time while they fit in memory: a
// slider moved anywhere then draws without waiting for the network.
let prefetching = null;
async function prefetch() {
  const key = `${state.run}|${state.tag}`;
  if (prefetching === key) return;
  prefetching = key;
  const all = steps();
  if (all.length > kept()) return;
  for (const step of all) {
    if (prefetching !== key) return;
    try {
      await load(state.run, step);
    } catch {
      return;
    }
  }
}

async function json(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${url}: ${response.status}`);
  return body;
}

// Shares of a matrix's cells: by true class (rows sum to 1), by predicted class (columns), or counts.
function shares(values, n, norm) {
  const out = new Float32Array(n * n);
  if (norm === "counts") {
    for (let i = 0; i < n * n; i++) out[i] = values[i];
    return out;
  }
  const totals = new Float64Array(n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) totals[norm === "true" ? i : j] += values[i * n + j];
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    const total = totals[norm === "true" ? i : j];
    out[i * n + j] = total ? values[i * n + j] / total : 0;
  }
  return out;
}

function sync() {
  const all = steps();
  const slider = host.querySelector(".cm-slider");
  slider.max = String(Math.max(0, all.length - 1));
  slider.value = String(all.indexOf(state.step));
  host.querySelector(".cm-step").value = String(state.step);
  host.querySelector(".norm").value = state.norm;
  host.querySelector(".vs-run").value = state.vsRun || "";
  host.querySelector(".vs-step").value = state.vsStep === null ? "" : String(state.vsStep);
  onState();
}

async function draw() {
  const started = performance.now();
  const id = ++drawing;
  sync();
  const a = await load(state.run, state.step);
  const vsStep = state.vsRun ? nearest(state.vsRun, state.vsStep ?? state.step) : null;
  const b = state.vsRun && vsStep !== null ? await load(state.vsRun, vsStep) : null;
  if (id !== drawing) return;
  const n = a.classes.length;
  const shown = { a, b, n, vsStep, values: shares(a.values, n, state.norm) };
  if (b && b.classes.length === n) {
    const other = shares(b.values, n, state.norm);
    shown.diff = new Float32Array(n * n);
    for (let i = 0; i < n * n; i++) shown.diff[i] = shown.values[i] - other[i]; // this step minus the compared one
  }
  paintMatrix(shown);
  classTable(a.values, a.classes);
  pairs(a.values, a.classes);
  const readout = host.querySelector(".cm-readout");
  readout.textContent = shown.diff ? `difference: step ${state.step} − ${state.vsRun} step ${vsStep} (blue grew, red shrank)` : "";
  window.tbimgCmTimings.push(performance.now() - started);
  host.dataset.shown = `${state.step}`;
  prefetch();
  if (state.cell) showCell(...state.cell);
}

let last = null; // what is drawn, for hovering and clicking

function paintMatrix(shown) {
  const { n } = shown;
  const canvas = host.querySelector(".cm-canvas");
  const named = n <= 40;
  const margin = named ? MARGIN : 0;
  const cell = named ? Math.max(8, Math.floor(SIDE / n)) : 1;
  const side = n * cell;
  canvas.width = margin + side;
  canvas.height = margin + side;
  const scale = named ? 1 : (SIDE / side) * state.zoom;
  canvas.style.width = `${(margin + side) * (named ? state.zoom : scale)}px`;
  const context = canvas.getContext("2d");
  const image = context.createImageData(side, side);
  const pixels = new Uint32Array(image.data.buffer); // one write a pixel; colours from tables, not per cell
  const data = shown.diff || shown.values;
  let top = 0;
  for (let i = 0; i < n * n; i++) if (Math.abs(data[i]) > top) top = Math.abs(data[i]);
  const worst = worstCells(shown.values, n, 3);
  const [onDiagonal, offDiagonal, signed] = palettes();
  const levels = top ? 255 / top : 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const level = Math.round(data[i * n + j] * levels); // -255..255
      const colour = shown.diff ? signed[level + 255] : i === j ? onDiagonal[level] : offDiagonal[level];
      if (cell === 1) {
        pixels[i * side + j] = colour;
        continue;
      }
      for (let y = 0; y < cell; y++) pixels.fill(colour, (i * cell + y) * side + j * cell, (i * cell + y) * side + (j + 1) * cell);
    }
  }
  context.putImageData(image, margin, margin);
  if (named) {
    context.font = `${Math.min(12, cell - 2)}px sans-serif`;
    context.fillStyle = "#212121";
    context.textAlign = "right";
    context.textBaseline = "middle";
    shown.a.classes.forEach((name, i) => context.fillText(shortName(name), margin - 4, margin + i * cell + cell / 2));
    context.save();
    context.translate(margin, margin - 4);
    context.rotate(-Math.PI / 2);
    context.textAlign = "left";
    shown.a.classes.forEach((name, j) => context.fillText(shortName(name), 0, j * cell + cell / 2));
    context.restore();
    if (cell >= 28) {
      context.textAlign = "center";
      context.font = `${Math.min(11, cell / 3)}px sans-serif`;
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
        const v = data[i * n + j];
        const number = state.norm === "counts" ? v : Math.round(100 * v); // counts, or percent
        const text = shown.diff && number > 0 ? `+${number}` : String(number === 0 ? 0 : number); // never "-0"
        context.fillStyle = Math.abs(top ? v / top : 0) > 0.6 ? "#fff" : "#212121";
        context.fillText(text, margin + j * cell + cell / 2, margin + i * cell + cell / 2);
      }
    }
    context.strokeStyle = "#d32f2f";
    context.lineWidth = 2;
    for (const [i, j] of worst) context.strokeRect(margin + j * cell + 1, margin + i * cell + 1, cell - 2, cell - 2);
  }
  if (state.cell && state.cell[0] !== null && state.cell[1] !== null) {
    context.strokeStyle = "#f57c00";
    context.lineWidth = Math.max(2, cell / 8);
    context.strokeRect(margin + state.cell[1] * cell, margin + state.cell[0] * cell, cell, cell);
  }
  last = { ...shown, margin, cell, scale: canvas.clientWidth / canvas.width };
  Object.assign(canvas.dataset, { margin: String(margin), cell: String(cell), classes: String(n) }); // for tests
}

let palettesMade = null;
// Colour tables as little-endian RGBA words: the diagonal green, the rest orange, a difference blue/red.
function palettes() {
  if (palettesMade) return palettesMade;
  const word = ([r, g, b]) => ((255 << 24) | (Math.round(b) << 16) | (Math.round(g) << 8) | Math.round(r)) >>> 0;
  const table = (count, colour) => Uint32Array.from({ length: count }, (_, k) => word(colour(k)));
  palettesMade = [
    table(256, (k) => [255 - (200 * k) / 255, 255 - (80 * k) / 255, 255 - (200 * k) / 255]),
    table(256, (k) => [255 - (10 * k) / 255, 255 - (160 * k) / 255, 255 - (220 * k) / 255]),
    table(511, (k) => {
      const v = (k - 255) / 255;
      return v >= 0 ? [255 - 200 * v, 255 - 130 * v, 255] : [255, 255 + 170 * v, 255 + 200 * v];
    }),
  ];
  return palettesMade;
}

function shortName(name) {
  return name.length > 14 ? `${name.slice(0, 13)}…` : name;
}

// The `count` largest off-diagonal cells as [count, true, pred], largest first: one pass that keeps a short
// sorted list, not a sort of a million cells (a 1,000-class matrix).
function topCells(values, n, count) {
  const top = [];
  let floor = 0;
  for (let i = 0; i < n; i++) {
    const row = i * n;
    for (let j = 0; j < n; j++) {
      const v = values[row + j];
      if (i === j || v <= floor) continue;
      let at = top.length;
      while (at > 0 && top[at - 1][0] < v) at--;
      top.splice(at, 0, [v, i, j]);
      if (top.length > count) top.pop();
      if (top.length === count) floor = top[count - 1][0];
    }
  }
  return top;
}

function worstCells(values, n, count) {
  return topCells(values, n, count).map(([, i, j]) => [i, j]);
}

// Which cell (or row / column label) the mouse is over: [true, pred], with null for "every".
function at(event) {
  if (!last) return null;
  const box = event.target.getBoundingClientRect();
  const x = (event.clientX - box.left) / last.scale - last.margin;
  const y = (event.clientY - box.top) / last.scale - last.margin;
  const i = Math.floor(y / last.cell);
  const j = Math.floor(x / last.cell);
  if (x < 0 && i >= 0 && i < last.n) return [i, null];
  if (y < 0 && j >= 0 && j < last.n) return [null, j];
  if (i < 0 || j < 0 || i >= last.n || j >= last.n) return null;
  return [i, j];
}

function hover(event) {
  const place = at(event);
  const readout = host.querySelector(".cm-readout");
  if (!place || place.includes(null)) return;
  const [i, j] = place;
  const { values, classes } = last.a;
  const n = last.n;
  const count = values[i * n + j];
  let row = 0;
  let column = 0;
  for (let k = 0; k < n; k++) (row += values[i * n + k]), (column += values[k * n + j]);
  const pct = (part, whole) => (whole ? `${((100 * part) / whole).toFixed(1)}%` : "–");
  let text = `true ${classes[i]} → predicted ${classes[j]}: ${count} (${pct(count, row)} of true ${classes[i]}, ${pct(count, column)} of predicted ${classes[j]})`;
  if (last.diff && last.b) text += `; ${last.b.values[i * n + j]} at ${state.vsRun} step ${last.vsStep}`;
  readout.textContent = text;
}

function pick(event) {
  const place = at(event);
  if (!place) return;
  state.cell = place;
  paintMatrix(last);
  onState();
  showCell(...place);
}

function classTable(values, classes) {
  const n = classes.length;
  const rows = classes.map((name, k) => {
    let support = 0;
    let predicted = 0;
    for (let m = 0; m < n; m++) (support += values[k * n + m]), (predicted += values[m * n + k]);
    const hit = values[k * n + k];
    const recall = support ? hit / support : 0;
    const precision = predicted ? hit / predicted : 0;
    const f1 = recall + precision ? (2 * recall * precision) / (recall + precision) : 0;
    return { k, name, recall, precision, f1, support };
  });
  const key = state.sort;
  if (key !== "class") rows.sort((a, b) => a[key] - b[key]);
  const shown = rows.slice(0, 200);
  const head = ["class", "recall", "precision", "f1", "support"].map((h) => `<th data-sort="${h}"${h === key ? ' class="sorted"' : ""}>${h}</th>`).join("");
  const body = shown.map((r) => `<tr data-class="${r.k}"><td>${escape(r.name)}</td><td>${r.recall.toFixed(3)}</td><td>${r.precision.toFixed(3)}</td><td>${r.f1.toFixed(3)}</td><td>${r.support}</td></tr>`).join("");
  const table = host.querySelector(".cm-classes");
  table.innerHTML = `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>${rows.length > shown.length ? `<div class="muted">the ${shown.length} ${key === "class" ? "first" : "lowest"} of ${rows.length}</div>` : ""}`;
  table.querySelectorAll("th").forEach((th) => (th.onclick = () => ((state.sort = th.dataset.sort), classTable(values, classes))));
  table.querySelectorAll("tr[data-class]").forEach((tr) => (tr.onclick = () => ((state.cell = [Number(tr.dataset.class), null]), onState(), showCell(Number(tr.dataset.class), null))));
}

function pairs(values, classes) {
  const n = classes.length;
  const list = host.querySelector(".cm-pairs");
  const found = topCells(values, n, 20);
  list.innerHTML = found.map(([c, i, j]) => `<li data-cell="${i},${j}">${escape(classes[i])} → ${escape(classes[j])}: ${c}</li>`).join("");
  list.querySelectorAll("li").forEach((li) => (li.onclick = () => {
    state.cell = li.dataset.cell.split(",").map(Number);
    paintMatrix(last);
    onState();
    showCell(...state.cell);
  }));
}

function cellQuery(run, step, i, j) {
  return `cell?run=${encodeURIComponent(run)}&tag=${encodeURIComponent(state.tag)}&step=${step}&true=${i ?? ""}&pred=${j ?? ""}`;
}

// A cell's examples as thumbnails; compared, the examples that moved into it and out of it since the other.
async function showCell(i, j) {
  const box = host.querySelector(".cm-cell");
  const id = drawing;
  const matrix = current();
  if (!matrix || !matrix.examples) {
    box.innerHTML = '<div class="empty">This matrix was logged without its examples.</div>';
    return;
  }
  const classes = last ? last.a.classes : [];
  const here = await json(cellQuery(state.run, state.step, i, j));
  const vsStep = state.vsRun ? nearest(state.vsRun, state.vsStep ?? state.step) : null;
  const there = state.vsRun && vsStep !== null ? await json(cellQuery(state.vsRun, vsStep, i, j)) : null;
  if (id !== drawing) return;
  const what = i !== null && j !== null ? `true ${classes[i]} → predicted ${classes[j]}` : i !== null ? `every true ${classes[i]}` : `every predicted ${classes[j]}`;
  const groups = [];
  if (there && state.vsRun === state.run) {
    const before = new Set(there.indices);
    const now = new Set(here.indices);
    const into = here.indices.map((x, k) => [x, k]).filter(([x]) => !before.has(x));
    const outOf = there.indices.map((x, k) => [x, k]).filter(([x]) => !now.has(x));
    const diagonal = i !== null && i === j;
    groups.push([`moved in since step ${vsStep}${diagonal ? " (fixed)" : " (newly wrong here)"}`, here, into]);
    groups.push([`moved out since step ${vsStep}${diagonal ? " (newly wrong)" : " (fixed or moved elsewhere)"}`, there, outOf]);
  }
  groups.push([`${what}: ${here.count} at step ${here.step}${here.scores ? ", most confident first" : ""}`, here, here.indices.map((x, k) => [x, k])]);
  box.innerHTML = groups.map(([title, , items], g) => `<h4>${escape(title)} <span class="muted">${items.length}</span></h4><div class="cm-grid" data-group="${g}"></div>`).join("");
  groups.forEach(([, source, items], g) => fillGrid(box.querySelector(`[data-group="${g}"]`), source, items, classes));
  box.dataset.shown = `${i ?? ""},${j ?? ""}`;
}

function fillGrid(grid, source, items, classes) {
  const LIMIT = 300;
  const html = items.slice(0, LIMIT).map(([index, k]) => {
    const label = `${escape(classes[source.truth[k]] ?? source.truth[k])} → ${escape(classes[source.predicted[k]] ?? source.predicted[k])}`;
    const score = source.scores ? ` ${source.scores[k].toFixed(2)}` : "";
    const picture = source.thumbnail ? `<img loading="lazy" src="${source.thumbnail.replace("{index}", index)}" alt="example ${index}">` : "";
    return `<figure class="cm-example" data-index="${index}" data-k="${k}">${picture}<figcaption>#${index}${score}<br>${label}</figcaption></figure>`;
  });
  if (items.length > LIMIT) html.push(`<div class="muted">and ${items.length - LIMIT} more</div>`);
  grid.innerHTML = html.join("");
  grid.querySelectorAll("figure img").forEach((img) => (img.onclick = () => enlarge(img, img.parentElement.querySelector("figcaption").textContent)));
}

// A thumbnail shown large, pixels as sharp squares; the wheel zooms.
function enlarge(img, title) {
  const large = host.querySelector(".cm-large");
  const canvas = large.querySelector("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  canvas.getContext("2d").drawImage(img, 0, 0);
  let scale = Math.max(1, Math.floor(320 / Math.max(1, img.naturalWidth)));
  const apply = () => (canvas.style.width = `${img.naturalWidth * scale}px`);
  apply();
  canvas.onwheel = (event) => (event.preventDefault(), (scale = Math.max(1, Math.min(64, scale * (event.deltaY < 0 ? 1.25 : 0.8)))), apply());
  large.querySelector(".cm-large-title").textContent = `${title} (Esc or click to close)`;
  large.hidden = false;
  large.onclick = (event) => event.target !== canvas && (large.hidden = true);
}

async function showPicture(run, tag) {
  const steps = await json(`steps?run=${encodeURIComponent(run)}&tag=${encodeURIComponent(tag)}`);
  const step = steps.length ? steps[steps.length - 1].step : 0;
  host.querySelector(".cm-body").innerHTML = `<div class="empty">This matrix was logged by a tbimg older than the explorer: its
    picture is shown (step ${step}); log it again with a newer tbimg to explore its cells.</div>
    <img class="cm-picture" src="image?run=${encodeURIComponent(run)}&tag=${encodeURIComponent(tag)}&step=${step}&sample=0" alt="${escape(tag)}">`;
  host.dataset.shown = "picture";
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
