// fetalhead page: plain JavaScript, no build step, no request outside this server.
// Untrusted text (file names, messages) is only ever written with textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  lang: localStorage.getItem("fetalhead-lang") || "en",
  t: {},
  file: null,
  result: null,     // the last /api/v1/measure answer
  figures: null,    // the figures shown (measure or biometry answer)
  ellipse: null,    // current ellipse (image pixels)
  original: null,   // ellipse as measured
  image: null,
  drag: null,
  curves: null,
  limits: null,     // /api/v1/limits: form limits and chart axes, decided by the server
  seq: 0,           // every request carries a number; an answer for an older one is dropped
};

// ---------- translations ----------
async function loadLanguage(lang) {
  const r = await fetch(`/api/v1/i18n/${encodeURIComponent(lang)}`);
  if (!r.ok) return;
  state.t = await r.json();
  state.lang = lang;
  localStorage.setItem("fetalhead-lang", lang);
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => {
    const key = el.getAttribute("data-i18n");
    if (state.t[key] !== undefined) el.textContent = state.t[key];
  });
  $("lang").value = lang;
  if (state.figures) showFigures(state.figures);
  drawChart();
}
const tr = (key) => (state.t[key] !== undefined ? state.t[key] : key);

// ---------- geometry (same conventions as fetalhead.geometry) ----------
function landmarks(e) {
  const t = (e.angle_deg * Math.PI) / 180, ux = Math.cos(t), uy = Math.sin(t), px = -uy, py = ux;
  return {
    ofd_1: [e.center_x - e.semi_major * ux, e.center_y - e.semi_major * uy],
    ofd_2: [e.center_x + e.semi_major * ux, e.center_y + e.semi_major * uy],
    bpd_1: [e.center_x - e.semi_minor * px, e.center_y - e.semi_minor * py],
    bpd_2: [e.center_x + e.semi_minor * px, e.center_y + e.semi_minor * py],
  };
}
function insideEllipse(e, x, y) {
  const t = (e.angle_deg * Math.PI) / 180, dx = x - e.center_x, dy = y - e.center_y;
  const u = dx * Math.cos(t) + dy * Math.sin(t), v = -dx * Math.sin(t) + dy * Math.cos(t);
  return (u / e.semi_major) ** 2 + (v / e.semi_minor) ** 2 <= 1;
}

// ---------- drawing ----------
function draw() {
  const c = $("view"), img = state.image;
  if (!img) return;
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  const e = state.ellipse;
  if (!e) return;
  const lw = Math.max(1.5, c.width / 500);
  g.lineWidth = lw;
  g.strokeStyle = state.figures && state.figures.status === "ok" ? "#00dc00" : "#ff3030";
  g.beginPath();
  g.ellipse(e.center_x, e.center_y, e.semi_major, e.semi_minor, (e.angle_deg * Math.PI) / 180, 0, 2 * Math.PI);
  g.stroke();
  const lm = landmarks(e);
  g.strokeStyle = "#ffd700";
  for (const [a, b] of [["ofd_1", "ofd_2"], ["bpd_1", "bpd_2"]]) {
    g.beginPath(); g.moveTo(...lm[a]); g.lineTo(...lm[b]); g.stroke();
  }
  g.fillStyle = "#00ffff";
  for (const p of Object.values(lm)) {
    g.beginPath(); g.arc(p[0], p[1], 2.5 * lw + 2, 0, 2 * Math.PI); g.fill();
  }
}

const missing = (v) => v === null || v === undefined;
function fmt(v, nd, unit) {
  return missing(v) ? tr("not_available") : `${Number(v).toFixed(nd)}${unit ? " " + unit : ""}`;
}

function showFigures(f) {
  const mm = f.unit === "mm";
  $("val-hc").textContent = mm ? fmt(f.hc_mm, 1, "mm") : `${fmt(f.hc_px, 1, "px")} — ${tr("flag_no_pixel_spacing")}`;
  $("val-bpd").textContent = mm ? fmt(f.bpd_mm, 1, "mm") : tr("not_available");
  $("val-ofd").textContent = mm ? fmt(f.ofd_mm, 1, "mm") : tr("not_available");
  for (const k of ["hc", "bpd", "ofd"]) {  // the calibrated 90 % interval, when the server gives one
    const lo = f[`${k}_mm_low`], hi = f[`${k}_mm_high`];
    $(`range-${k}`).textContent = mm && !missing(lo) && !missing(hi)
      ? `(${tr("range_90")} ${Number(lo).toFixed(1)}–${Number(hi).toFixed(1)} mm)` : "";
  }
  $("val-ci").textContent = fmt(f.cephalic_index, 1, "%");
  const ga = (v) => (mm ? (missing(v) ? tr("outside_range") : fmt(v, 1, tr("weeks"))) : tr("not_available"));
  $("val-ga-hadlock").textContent = ga(f.ga_hc_hadlock_weeks);
  $("val-ga-intergrowth").textContent = ga(f.ga_hc_intergrowth_weeks);
  $("val-ga-bpd").textContent = ga(f.ga_bpd_hadlock_weeks);
  $("val-centile").textContent = missing(f.hc_centile) ? tr("not_available") : fmt(f.hc_centile, 0, "");
  $("val-quality").textContent = fmt(f.quality, 2, "");
  $("val-spacing").textContent = f.spacing_source || "";
  $("val-model").textContent = f.model_version || "";
  const st = $("status");
  st.className = `status ${f.status}`;
  st.textContent = tr(`status_${f.status}`);
  const flags = $("flags");
  flags.replaceChildren();
  for (const flag of f.flags || []) {
    const li = document.createElement("li");
    li.textContent = flag === "adjusted_by_hand" ? tr("adjusted") : tr(`flag_${flag}`);
    flags.appendChild(li);
  }
  if (f.status === "failed") {
    const li = document.createElement("li");
    li.textContent = (f.messages || []).join("; ");
    flags.appendChild(li);
  }
}

// ---------- growth chart ----------
async function drawChart() {
  if (!state.curves) {
    const r = await fetch("/api/v1/growth-chart?measure=hc");
    if (!r.ok) return;
    state.curves = await r.json();
  }
  const svg = $("chart"), NS = "http://www.w3.org/2000/svg", W = 420, H = 300;
  if (!state.limits) return;
  const x0 = 48, y0 = 12, x1 = W - 12, y1 = H - 36;
  const [wmin, wmax] = state.limits.chart_ga_weeks, [hmin, hmax] = state.limits.chart_hc_mm;
  const px = (w, h) => [x0 + ((w - wmin) / (wmax - wmin)) * (x1 - x0), y1 - ((h - hmin) / (hmax - hmin)) * (y1 - y0)];
  const el = (name, attrs, text) => {
    const n = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    svg.appendChild(n);
    return n;
  };
  svg.replaceChildren();
  el("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, fill: "none", stroke: "#888" });
  for (let w = wmin; w <= wmax; w += 2) {
    const [x] = px(w, hmin);
    el("text", { x, y: y1 + 14, "text-anchor": "middle" }, String(w));
  }
  for (let h = hmin; h <= hmax; h += 50) {
    const [, y] = px(wmin, h);
    el("text", { x: x0 - 6, y: y + 3, "text-anchor": "end" }, String(h));
  }
  el("text", { x: (x0 + x1) / 2, y: H - 4, "text-anchor": "middle" }, `GA (${tr("weeks")})`);
  el("text", { x: 12, y: (y0 + y1) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(y0 + y1) / 2})` }, "HC (mm)");
  for (const c of ["3", "10", "50", "90", "97"]) {
    const pts = state.curves.weeks.map((w, i) => px(w, state.curves[c][i]).map((v) => v.toFixed(1)).join(",")).join(" ");
    el("polyline", { points: pts, fill: "none", stroke: c === "50" ? "#1f6f43" : "#5b8f74",
      "stroke-width": c === "50" ? 2 : 1, "stroke-dasharray": c === "50" ? "" : "4 3", "data-centile": c });
    const last = px(wmax, state.curves[c][state.curves[c].length - 1]);
    el("text", { x: last[0] - 2, y: last[1] - 3, "text-anchor": "end" }, tr(`centile_${c}`));
  }
  const f = state.figures, ga = f ? f.ga_by_dates_weeks : null;
  const ok = f && f.unit === "mm" && !missing(f.hc_mm) && !missing(ga) && ga >= wmin && ga <= wmax;
  $("chart-note").hidden = ok;
  if (ok) {
    const [x, y] = px(ga, Math.min(Math.max(Number(f.hc_mm), hmin), hmax));
    el("circle", { cx: x, cy: y, r: 5, fill: "#d62728", id: "fetus-point" });
    el("text", { x: x + 8, y: y - 6, fill: "#d62728" }, tr("this_fetus"));
  }
}

// ---------- requests ----------
function showError(msg) {
  const box = $("error");
  box.hidden = !msg;
  box.textContent = msg ? `${tr("error")}: ${msg}` : "";
}

function formData() {
  const fd = new FormData();
  fd.append("file", state.file);
  const ps = $("pixel-size").value.trim(), ga = $("ga-weeks").value.trim();
  if (ps) fd.append("pixel_size_mm", ps);
  if (ga) fd.append("ga_weeks", ga);
  return fd;
}

async function errorText(r) {
  try {
    const j = await r.json();
    return (j.error && j.error.message) || tr("error_generic");
  } catch (_) {
    return tr("error_generic");
  }
}

async function measure() {
  if (!state.file) return;
  showError("");
  const btn = $("measure");
  btn.disabled = true;
  btn.textContent = tr("measuring");
  try {
    const seq = ++state.seq;
    const r = await fetch("/api/v1/measure", { method: "POST", body: formData() });
    if (seq !== state.seq) return;  // a newer request was made meanwhile
    if (!r.ok) { showError(await errorText(r)); return; }
    const res = await r.json();
    if (seq !== state.seq) return;
    state.image_png_base64 = res.image_png_base64;
    delete res.image_png_base64;
    state.result = res;
    state.figures = res;
    state.ellipse = res.ellipse ? { ...res.ellipse } : null;
    state.original = state.ellipse && { ...state.ellipse };
    $("reset").disabled = true;
    const img = new Image();
    img.onload = () => { state.image = img; draw(); };
    img.src = `data:image/png;base64,${state.image_png_base64}`;
    $("result").hidden = false;
    showFigures(res);
    drawChart();
  } catch (err) {
    showError(tr("error_generic"));
  } finally {
    btn.disabled = false;
    btn.textContent = tr("measure");
  }
}

let pending = null;
// The server recomputes figures, flags and status from the measurement and the moved ellipse
// (no network run); the page shows what it answers and decides nothing itself.
async function recompute() {
  if (!state.ellipse || !state.result) return;
  const gaText = $("ga-weeks").value.trim(), ga = parseFloat(gaText);
  const body = { ellipse: state.ellipse, measurement: state.result, ga_weeks: Number.isNaN(ga) ? null : ga };
  const seq = ++state.seq;
  const r = await fetch("/api/v1/biometry", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body) });
  if (seq !== state.seq) return;  // an answer for an older state of the page: dropped
  if (!r.ok) { showError(await errorText(r)); return; }
  const f = await r.json();
  if (seq !== state.seq) return;
  showError("");
  state.figures = f;
  showFigures(state.figures);
  drawChart();
  draw();
}
function scheduleRecompute() {
  clearTimeout(pending);
  pending = setTimeout(recompute, 120);
}

// The report is of exactly the measurement on screen: it is sent, with the scan for the picture.
async function downloadReport(format) {
  if (!state.file || !state.figures) return;
  const fd = new FormData();
  fd.append("file", state.file);
  fd.append("measurement", JSON.stringify(state.figures));
  fd.append("lang", state.lang);
  fd.append("format", format);
  const r = await fetch("/api/v1/report", { method: "POST", body: fd });
  if (!r.ok) { showError(await errorText(r)); return; }
  const blob = await r.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  const stem = (state.file.name || "scan").replace(/\.[^.]*$/, "") || "scan";
  a.download = `${stem}_report.${format}`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 5000);
}

async function loadLimits() {
  const r = await fetch("/api/v1/limits");
  if (!r.ok) return;
  state.limits = await r.json();
  const ps = $("pixel-size"), ga = $("ga-weeks");
  [ps.min, ps.max] = state.limits.pixel_size_mm.map(String);
  [ga.min, ga.max] = state.limits.ga_weeks.map(String);
  drawChart();
}

// ---------- dragging the calipers ----------
function toImage(ev) {
  const c = $("view"), rect = c.getBoundingClientRect();
  return [((ev.clientX - rect.left) * c.width) / rect.width, ((ev.clientY - rect.top) * c.height) / rect.height];
}
function onDown(ev) {
  if (!state.ellipse) return;
  const [x, y] = toImage(ev), lm = landmarks(state.ellipse);
  const c = $("view"), tol = (12 * c.width) / c.getBoundingClientRect().width;
  let best = null, bestD = tol;
  for (const [k, p] of Object.entries(lm)) {
    const d = Math.hypot(p[0] - x, p[1] - y);
    if (d < bestD) { best = k; bestD = d; }
  }
  if (best) state.drag = { kind: best };
  else if (insideEllipse(state.ellipse, x, y)) state.drag = { kind: "move", x, y };
  if (state.drag) { c.setPointerCapture(ev.pointerId); ev.preventDefault(); }
}
function onMove(ev) {
  if (!state.drag) return;
  const [x, y] = toImage(ev), e = state.ellipse, d = state.drag;
  if (d.kind === "move") {
    e.center_x += x - d.x; e.center_y += y - d.y; d.x = x; d.y = y;
  } else if (d.kind.startsWith("ofd")) {
    const other = landmarks(e)[d.kind === "ofd_1" ? "ofd_2" : "ofd_1"];
    e.center_x = (x + other[0]) / 2; e.center_y = (y + other[1]) / 2;
    e.semi_major = Math.max(2, Math.hypot(x - other[0], y - other[1]) / 2);
    e.angle_deg = (Math.atan2(y - other[1], x - other[0]) * 180) / Math.PI;
  } else {
    const t = (e.angle_deg * Math.PI) / 180, px = -Math.sin(t), py = Math.cos(t);
    e.semi_minor = Math.max(2, Math.abs((x - e.center_x) * px + (y - e.center_y) * py));
  }
  $("reset").disabled = false;
  draw();
  scheduleRecompute();
}
function onUp() { state.drag = null; }

// ---------- wiring ----------
function setFile(f) {
  state.file = f || null;
  // a new file: the old result is of another scan and goes
  state.seq++;
  state.result = state.figures = state.ellipse = state.original = state.image = null;
  $("result").hidden = true;
  $("file-name").textContent = f ? f.name : "";
  $("measure").disabled = !f;
}
window.addEventListener("DOMContentLoaded", () => {
  $("lang").addEventListener("change", (ev) => loadLanguage(ev.target.value));
  $("file").addEventListener("change", (ev) => setFile(ev.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault(); drop.classList.remove("over");
    if (ev.dataTransfer.files.length) setFile(ev.dataTransfer.files[0]);
  });
  $("measure").addEventListener("click", measure);
  $("reset").addEventListener("click", () => {
    state.ellipse = state.original && { ...state.original };
    $("reset").disabled = true;
    recompute();
  });
  $("ga-weeks").addEventListener("change", () => { if (state.result) recompute(); });
  $("pdf").addEventListener("click", () => downloadReport("pdf"));
  $("html").addEventListener("click", () => downloadReport("html"));
  $("print").addEventListener("click", () => window.print());
  const c = $("view");
  c.addEventListener("pointerdown", onDown);
  c.addEventListener("pointermove", onMove);
  c.addEventListener("pointerup", onUp);
  c.addEventListener("pointercancel", onUp);
  loadLanguage(state.lang);
  loadLimits();
});
