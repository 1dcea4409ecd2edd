// fetalhead page: plain JavaScript, no build step, no request outside this server.
// Untrusted text (file names, messages) is only ever written with textContent.
// The server decides everything about a measurement (status, flags, figures written out in the
// chosen language in `display`, the chart); the page shows what it answers for the scan on screen.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  lang: localStorage.getItem("fetalhead-lang") || "en",
  t: {},
  file: null,
  result: null,     // the last /api/v1/measure answer (the measurement the page adjusts)
  figures: null,    // the answer shown (measure or biometry)
  ellipse: null,    // current ellipse (image pixels)
  original: null,   // ellipse as measured
  image: null,
  drag: null,
  limits: null,     // /api/v1/limits: form limits, chart axes and formulas, decided by the server
  seq: 0,           // every request about the scan carries a number; an answer for an older one is dropped
  trace: null,      // a cine loop: every frame's HC (from the first answer), and the frame the server chose
  bestFrame: null,
  chartSeq: 0,
  png: null,        // the picture of the measurement on screen (base64 PNG), kept with it when saved to a visit
  visit: null,      // the open visit, as /api/v1/visits/{id} answered it
  scale: null,      // a scale set by hand, sent with every measurement: {points: [[x, y], [x, y]], cm}
  picking: false,   // "Set the scale" is open: taps on the picture set its two points
  pickPoints: [],   // the points set so far (image pixels)
  pickDrag: null,   // the index of the point being moved
  pickOffset: [0, 0],  // the moved point's offset from the pointer (it does not jump under the finger)
  loupe: null,      // where the magnifier is drawn while a point is set or moved: {x, y, r} (image pixels)
};

const tr = (key) => (state.t[key] !== undefined ? state.t[key] : key);
// a translation with its {name} places filled (as fetalhead.outputs.report.fill does)
const fill = (text, values) => Object.entries(values).reduce((s, [k, v]) => s.split(`{${k}}`).join(String(v)), text);
const missing = (v) => v === null || v === undefined;

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
  $("view").setAttribute("aria-label", tr("canvas_label"));
  $("lang").value = lang;
  checkFields();
  updateScaleCount();
  if (state.visit) showVisit(state.visit);
  // the figures on screen are written out again by the server in this language (no network run)
  if (state.result && state.ellipse) recompute(state.figures.ga_by_dates_weeks);
  else drawChart(null);
}

// ---------- the form: weeks+days as clinicians write them (mirrors fetalhead.outputs.display) ----------
const WEEKS_DAYS = /^\s*(\d{1,2})\s*(?:(?:\+|w(?:eeks?)?\s*\+?)\s*(?:([0-6])\s*d?)?)?\s*$/i;

function parseGestationalAge(text) {
  const s = text.trim();
  if (!s) return { value: null };
  const m = WEEKS_DAYS.exec(s);
  if (!m) return { error: tr("ga_format_error") };
  const weeks = Number(m[1]) + (m[2] ? Number(m[2]) : 0) / 7;
  const [lo, hi] = state.limits ? state.limits.ga_weeks : [0, 99];
  if (weeks < lo || weeks > hi) return { error: fill(tr("ga_range_error"), { lo, hi }) };
  return { value: weeks };
}

function parsePixelSize(text) {
  const s = text.trim().replace(",", ".");
  if (!s) return { value: null };
  const v = Number(s);
  const [lo, hi] = state.limits ? state.limits.pixel_size_mm : [0, Infinity];
  if (!Number.isFinite(v) || v < lo || v > hi) return { error: fill(tr("pixel_size_range_error"), { lo, hi }) };
  return { value: v };
}

function fieldCheck(inputId, errorId, parsed) {
  const input = $(inputId), box = $(errorId);
  box.hidden = !parsed.error;
  box.textContent = parsed.error || "";
  if (parsed.error) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
  return parsed;
}

function checkFields() {
  const ps = fieldCheck("pixel-size", "pixel-size-error", parsePixelSize($("pixel-size").value));
  const ga = fieldCheck("ga-weeks", "ga-error", parseGestationalAge($("ga-weeks").value));
  return { ps, ga, ok: !ps.error && !ga.error };
}

// ---------- geometry (same conventions as fetalhead.clinical.geometry) ----------
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
// move one caliper end (or, for "move", the centre) to image point (x, y)
function applyHandle(kind, x, y) {
  const e = state.ellipse;
  if (kind === "move") {
    e.center_x = x; e.center_y = y;
  } else if (kind.startsWith("ofd")) {
    const other = landmarks(e)[kind === "ofd_1" ? "ofd_2" : "ofd_1"];
    const a = Math.max(2, Math.hypot(x - other[0], y - other[1]) / 2);
    e.center_x = (x + other[0]) / 2; e.center_y = (y + other[1]) / 2;
    e.semi_major = a;
    e.angle_deg = (Math.atan2(y - other[1], x - other[0]) * 180) / Math.PI + (kind === "ofd_1" ? 180 : 0);
  } else {  // a BPD end: as on a scanner, the opposite end stays where it is
    const t = (e.angle_deg * Math.PI) / 180, px = -Math.sin(t), py = Math.cos(t);
    const sign = kind === "bpd_2" ? 1 : -1, other = landmarks(e)[kind === "bpd_2" ? "bpd_1" : "bpd_2"];
    const b = Math.max(2, (((x - other[0]) * px + (y - other[1]) * py) * sign) / 2);
    e.center_x = other[0] + sign * b * px; e.center_y = other[1] + sign * b * py;
    e.semi_minor = b;
  }
  $("reset").disabled = false;
  draw();
  scheduleRecompute();
}

// ---------- drawing ----------
const coarsePointer = () => window.matchMedia && window.matchMedia("(pointer: coarse)").matches;
function handleRadius(c) {  // in image pixels: about 6 CSS pixels, 12 on a touch screen
  const cssPx = c.width / Math.max(1, c.getBoundingClientRect().width);
  return Math.max(3, (coarsePointer() ? 12 : 6) * cssPx);
}
function draw() {
  const c = $("view"), img = state.image;
  if (!img) return;
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  drawScale(g, c);
  const e = state.ellipse;
  if (!e) return;
  const lw = Math.max(1.5, c.width / 500);
  g.lineWidth = lw;
  // the outline's colour follows the status, as in the overlay: ok green, adjusted amber, else red
  const status = state.figures ? state.figures.status : "";
  g.strokeStyle = status === "ok" ? "#00dc00" : status === "adjusted" ? "#ffa000" : "#ff3030";
  g.beginPath();
  g.ellipse(e.center_x, e.center_y, e.semi_major, e.semi_minor, (e.angle_deg * Math.PI) / 180, 0, 2 * Math.PI);
  g.stroke();
  drawDoubt(g, e, lw);
  const lm = landmarks(e);
  g.strokeStyle = "#ffd700";
  for (const [a, b] of [["ofd_1", "ofd_2"], ["bpd_1", "bpd_2"]]) {
    g.beginPath(); g.moveTo(...lm[a]); g.lineTo(...lm[b]); g.stroke();
  }
  // the ends as thin crosshairs (a disc would hide the skull edge), each labelled with its diameter
  const r = handleRadius(c), chosen = $("handle").value;
  g.font = `${Math.round(r * 1.6)}px sans-serif`;
  g.textAlign = "center"; g.textBaseline = "middle";
  for (const [k, p] of Object.entries(lm)) {
    const colour = k === chosen && document.activeElement === c ? "#ff00ff" : "#00ffff";
    g.strokeStyle = colour; g.lineWidth = Math.max(1, lw * 0.75);
    g.beginPath(); g.moveTo(p[0] - r, p[1]); g.lineTo(p[0] + r, p[1]); g.moveTo(p[0], p[1] - r); g.lineTo(p[0], p[1] + r);
    g.stroke();
    const out = Math.hypot(p[0] - e.center_x, p[1] - e.center_y) || 1, k2 = (r * 2.6) / out;
    const tx = p[0] + (p[0] - e.center_x) * k2, ty = p[1] + (p[1] - e.center_y) * k2;
    g.lineWidth = Math.max(2, lw); g.strokeStyle = "rgba(0,0,0,0.7)"; g.fillStyle = colour;
    const label = k.startsWith("bpd") ? "BPD" : "OFD";
    g.strokeText(label, tx, ty); g.fillText(label, tx, ty);
  }
  g.lineWidth = lw;
}

// the screen's depth-scale marks the server found (circled, to check against the screen), and the two
// points of a scale set by hand (being set, or the one the measurement used), with the line between them
// the circles around the screen's marks: never so big that neighbours' circles touch (on a phone they made
// one chain that hid the marks to check), and never smaller than the mark itself
function markRadius(marks, c) {
  let gap = Infinity;
  marks.forEach(([x, y], i) => marks.forEach(([u, v], j) => { if (j > i) gap = Math.min(gap, Math.hypot(x - u, y - v)); }));
  return Math.max(3, Math.min(handleRadius(c) * 1.3, 0.4 * gap));
}
function drawScale(g, c) {
  const f = state.figures, r = handleRadius(c), lw = Math.max(1.5, c.width / 500);
  const marks = (f && f.screen_marks) || [], rm = markRadius(marks, c), mw = Math.min(lw, rm / 3);
  g.save();
  g.lineWidth = lw;
  for (const [x, y] of marks) {
    g.strokeStyle = "rgba(0,0,0,0.8)"; g.lineWidth = mw * 2.2;
    g.beginPath(); g.arc(x, y, rm, 0, 2 * Math.PI); g.stroke();
    g.strokeStyle = "#c39bff"; g.lineWidth = mw;  // violet: not the calipers' cyan nor the two points' orange
    g.beginPath(); g.arc(x, y, rm, 0, 2 * Math.PI); g.stroke();
  }
  g.lineWidth = lw;
  const pts = state.picking ? state.pickPoints : (f && f.scale_points) || [];
  g.strokeStyle = "#ff8c00"; g.fillStyle = "#ff8c00"; g.lineWidth = lw;
  if (pts.length === 2) { g.beginPath(); g.moveTo(...pts[0]); g.lineTo(...pts[1]); g.stroke(); }
  pts.forEach(([x, y], i) => {
    g.beginPath(); g.moveTo(x - r * 1.5, y); g.lineTo(x + r * 1.5, y); g.moveTo(x, y - r * 1.5); g.lineTo(x, y + r * 1.5);
    g.stroke();
    g.font = `${Math.round(r * 1.6)}px sans-serif`;
    g.fillText(String(i + 1), x + r * 1.2, y - r * 1.2);
  });
  state.loupe = state.picking && state.pickDrag !== null && pts[state.pickDrag] ? drawLoupe(g, c, pts[state.pickDrag]) : null;
  if (!state.picking && pts.length === 2 && f && !missing(f.scale_distance_cm)) {
    g.font = `${Math.round(r * 1.6)}px sans-serif`;
    g.fillText(`${distanceCmText(f.scale_distance_cm)} cm`, (pts[0][0] + pts[1][0]) / 2 + r, (pts[0][1] + pts[1][1]) / 2);
  }
  g.restore();
}

// A magnifier while a point of the scale is set or moved: the picture around the point, LOUPE_ZOOM times larger,
// in a circle away from the finger (above the point; near the top, beside it on the side with more room: a
// finger comes from below), with a crosshair on the point: a finger covers the mark it sets, and on a phone
// one screen pixel is two or three of the picture's. Its radius is at most a third of the picture's height.
const LOUPE_ZOOM = 3, LOUPE_RADIUS_CSS = 48;
function drawLoupe(g, c, [x, y]) {
  const rect = c.getBoundingClientRect(), k = c.width / rect.width;
  const r = Math.min(LOUPE_RADIUS_CSS, rect.height / 3) * k, src = r / LOUPE_ZOOM;
  let lx, ly;
  if (y - 3.2 * r >= 0) { lx = Math.min(Math.max(x, r), c.width - r); ly = y - 2.2 * r; }
  else {
    lx = x + (x < c.width / 2 ? 2.2 * r : -2.2 * r);
    lx = Math.min(Math.max(lx, r), c.width - r);
    ly = Math.min(Math.max(y, r), c.height - r);
  }
  g.save();
  g.beginPath(); g.arc(lx, ly, r, 0, 2 * Math.PI); g.clip();
  g.fillStyle = "#000"; g.fillRect(lx - r, ly - r, 2 * r, 2 * r);
  g.imageSmoothingEnabled = false;  // the picture's own pixels, to set a point on a mark's centre
  g.drawImage(state.image, x - src, y - src, 2 * src, 2 * src, lx - r, ly - r, 2 * r, 2 * r);
  g.strokeStyle = "#ff8c00"; g.lineWidth = Math.max(1, k);
  g.beginPath(); g.moveTo(lx - r, ly); g.lineTo(lx - 0.15 * r, ly); g.moveTo(lx + 0.15 * r, ly); g.lineTo(lx + r, ly);
  g.moveTo(lx, ly - r); g.lineTo(lx, ly - 0.15 * r); g.moveTo(lx, ly + 0.15 * r); g.lineTo(lx, ly + r); g.stroke();
  g.restore();
  g.save(); g.strokeStyle = "#ffffff"; g.lineWidth = 2 * Math.max(1, k);
  g.beginPath(); g.arc(lx, ly, r, 0, 2 * Math.PI); g.stroke(); g.restore();
  return { x: lx, y: ly, r };
}

// a distance typed in cm as it was typed, to 0.01 cm (fetalhead.outputs.display.distance_cm_text): 4.0, 2.5, 2.69
const distanceCmText = (cm) => { const v = Number(cm); return Math.abs(v * 10 - Math.round(v * 10)) < 1e-6 ? v.toFixed(1) : v.toFixed(2); };

// ---------- "Set the scale": two points on the picture and their distance (the server decides the scale) ----------
function parseScaleCm(text) {
  const s = text.trim().replace(",", ".");
  const [lo, hi] = state.limits ? state.limits.scale_distance_cm : [0, Infinity];
  const v = Number(s);
  if (!s || !Number.isFinite(v) || v < lo || v > hi) return { error: fill(tr("scale_distance_error"), { lo, hi }) };
  return { value: v };
}
function scaleError(msg) {
  $("scale-error").hidden = !msg;
  $("scale-error").textContent = msg || "";
  if (msg) $("scale-cm").setAttribute("aria-invalid", "true");
  else $("scale-cm").removeAttribute("aria-invalid");
}
function showScalePanel(open) {
  state.picking = open;
  state.pickDrag = null;
  if (open) state.pickPoints = state.figures && state.figures.scale_points ? state.figures.scale_points.map((p) => [...p]) : [];
  if (open && state.figures && !missing(state.figures.scale_distance_cm)) $("scale-cm").value = String(state.figures.scale_distance_cm);
  $("scale-panel").hidden = !open;
  $("set-scale").setAttribute("aria-expanded", String(open));
  $("view").classList.toggle("picking", open);
  scaleError("");
  updateScaleCount();
  draw();
}
function updateScaleCount() {
  $("scale-count").textContent = fill(tr("scale_points_set"), { n: state.pickPoints.length });
  $("scale-undo").disabled = $("scale-clear").disabled = !state.pickPoints.length;
}
function pickPoint(ev) {  // a tap or click sets a point; near a point already set, it moves that point
  const [x, y] = toImage(ev), c = $("view"), pts = state.pickPoints;
  const touch = ev.pointerType === "touch" || ev.pointerType === "pen";
  const tol = ((touch ? 28 : 12) * c.width) / c.getBoundingClientRect().width;
  const near = pts.findIndex((p) => Math.hypot(p[0] - x, p[1] - y) < tol);
  const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
  const p = [clamp(x, c.width), clamp(y, c.height)];
  state.pickOffset = [0, 0];
  if (near >= 0) { state.pickDrag = near; state.pickOffset = [pts[near][0] - x, pts[near][1] - y]; }
  else if (pts.length < 2) { pts.push(p); state.pickDrag = pts.length - 1; }
  else {  // a third tap: the nearer point moves there
    const k = Math.hypot(pts[0][0] - x, pts[0][1] - y) <= Math.hypot(pts[1][0] - x, pts[1][1] - y) ? 0 : 1;
    pts[k] = p; state.pickDrag = k;
  }
  c.setPointerCapture(ev.pointerId);
  ev.preventDefault();
  scaleError("");
  updateScaleCount();
  draw();
}
// by keyboard: Enter sets a point (the first at the centre, the second below the first), arrows move the last
function pickKey(ev) {
  const pts = state.pickPoints, c = $("view");
  if ((ev.key === "Enter" || ev.key === " ") && pts.length < 2) {
    ev.preventDefault();
    const last = pts[pts.length - 1];
    pts.push(last ? [last[0], Math.min(c.height, last[1] + 50)] : [c.width / 2, c.height / 2]);
  } else if (ARROWS[ev.key] && pts.length) {
    ev.preventDefault();
    const step = ev.shiftKey ? 10 : 1, p = pts[pts.length - 1];
    p[0] = Math.min(Math.max(p[0] + ARROWS[ev.key][0] * step, 0), c.width);
    p[1] = Math.min(Math.max(p[1] + ARROWS[ev.key][1] * step, 0), c.height);
  } else return;
  scaleError("");
  updateScaleCount();
  draw();
}
function applyScale() {
  const pts = state.pickPoints;
  if (pts.length < 2) { scaleError(tr("scale_need_points")); return; }
  const minPx = state.limits ? state.limits.scale_points_min_px : 0;
  if (Math.hypot(pts[1][0] - pts[0][0], pts[1][1] - pts[0][1]) < minPx) { scaleError(tr("error_scale_points_too_close")); return; }
  const cm = parseScaleCm($("scale-cm").value);
  if (cm.error) { scaleError(cm.error); $("scale-cm").focus(); return; }
  // the pixel size field and a scale set by hand are one or the other: the scale set now wins
  state.scale = { points: pts.map((p) => [...p]), cm: cm.value };
  $("pixel-size").value = "";
  checkFields();
  showScalePanel(false);
  clearResult();
  measure();
}

// the stretches of the outline to check (a flagged result's `uncertain_arcs`, decided by the server),
// thick in magenta over the outline, as in the overlay (fetalhead.outputs.overlay.arc_points)
function inArc(deg, a) {
  if (a.where === "all_round") return true;
  const span = (((a.to_deg - a.from_deg) % 360) + 360) % 360;
  return ((((deg - a.from_deg) % 360) + 360) % 360) <= span;
}
function drawDoubt(g, e, lw) {
  const arcs = state.figures && state.figures.status === "flagged" ? state.figures.uncertain_arcs || [] : [];
  if (!arcs.length) return;
  const t = (e.angle_deg * Math.PI) / 180, n = 720;
  g.save();
  g.strokeStyle = "#ff00ff"; g.lineWidth = lw * 3; g.lineCap = "round";
  for (const a of arcs) {
    g.beginPath();
    let drawing = false;
    for (let i = 0; i <= n; i++) {
      const s = (2 * Math.PI * i) / n, u = e.semi_major * Math.cos(s), v = e.semi_minor * Math.sin(s);
      const x = e.center_x + u * Math.cos(t) - v * Math.sin(t), y = e.center_y + u * Math.sin(t) + v * Math.cos(t);
      const deg = (((Math.atan2(y - e.center_y, x - e.center_x) * 180) / Math.PI) + 360) % 360;
      if (inArc(deg, a)) { if (drawing) g.lineTo(x, y); else { g.moveTo(x, y); drawing = true; } }
      else drawing = false;
    }
    g.stroke();
  }
  g.restore();
}

function showFigures(f) {
  const d = f.display || {};
  $("save-to-visit").disabled = isSaved(f);  // once saved, the same measurement is not saved again (one tap, one row)
  // a DICOM source: its SR and a FHIR Bundle can be downloaded (the hospital's systems take them)
  const dicom = !missing(f.sop_instance_uid) && !missing(f.hc_mm) && f.unit === "mm";
  $("sr").hidden = $("fhir").hidden = !dicom;
  const rows = { "val-hc": "hc_mm", "val-bpd": "bpd_mm", "val-ofd": "ofd_mm", "val-ci": "cephalic_index",
    "val-ga-hadlock": "ga_hc_hadlock_weeks", "val-ga-intergrowth": "ga_hc_intergrowth_weeks",
    "val-ga-bpd": "ga_bpd_hadlock_weeks", "val-centile": "hc_centile", "val-quality": "quality",
    "val-spacing": "spacing_source" };
  for (const [id, column] of Object.entries(rows)) $(id).textContent = missing(d[column]) ? tr("not_available") : d[column];
  $("val-model").textContent = [f.software, f.model_version].filter(Boolean).join(" · ");
  $("val-ga-bpd").classList.toggle("unreliable", (f.notes || []).includes("cephalic_index_out_of_range"));
  // the figures at a glance, right under the banner (on a phone the table is a screen further down)
  const first = (column) => (missing(d[column]) ? "" : String(d[column]).split(" (")[0]);
  const glance = [["HC", first("hc_mm")], ["BPD", first("bpd_mm")], ["GA", first("ga_hc_hadlock_weeks")],
    [tr("hc_centile"), first("hc_centile")]].filter(([, v]) => v);
  $("summary").textContent = f.status === "failed" ? "" : glance.map(([k, v]) => `${k} ${v}`).join(" · ");
  const st = $("status");
  st.className = `status ${f.status}`;
  st.textContent = d.status || "";  // the server's words (fetalhead.outputs.wording.status_text)
  // under the banner: what is wrong, where, what to do (the server's words); notes apart, never there
  const flags = $("flags");
  flags.replaceChildren();
  for (const line of f.status === "failed" ? [] : d.review || []) {
    const li = document.createElement("li");
    li.textContent = line;
    flags.appendChild(li);
  }
  $("doubt-key").hidden = !(f.status === "flagged" && (f.uncertain_arcs || []).length);
  const notes = f.status === "failed" ? [] : d.notes || [];
  $("notes-list").replaceChildren(...notes.map((line) => {
    const li = document.createElement("li");
    li.textContent = line;
    return li;
  }));
  $("notes").hidden = !notes.length;
  if (f.status === "failed") {  // why, as a code the page translates; the library's details in English only
    const li = document.createElement("li");
    const why = state.t[`failure_${f.failure}`];
    li.textContent = why || tr("status_failed");
    if (state.lang === "en" && (f.messages || []).length) li.textContent += ` (${f.messages.join("; ")})`;
    flags.appendChild(li);
  }
  // the picture's scale (read from the screen, set by two points, or none), in the server's words
  $("scale-line").textContent = d.scale || "";
  $("scale-box").hidden = !d.scale || f.status === "failed";
  $("scale-marks").hidden = !(f.screen_marks || []).length || $("scale-box").hidden;
  $("announce").textContent = `${d.status || ""} ${tr("hc")}: ${$("val-hc").textContent}`;
  drawChart(f);
}

// ---------- growth chart: drawn by the server, as in the report ----------
function showChartName(chart) {
  const name = state.limits ? state.limits.charts[chart] : chart;
  document.querySelectorAll(".chart-name").forEach((el) => { el.textContent = name; });
  const formula = $("formula-centile");
  formula.setAttribute("data-formula", chart === "who" ? "hc_centile_who" : "hc_centile");
  if (state.limits) formula.textContent = state.limits.formulas[formula.getAttribute("data-formula")] || "";
}

async function drawChart(f) {
  const seq = ++state.chartSeq;
  const chart = f && f.chart ? f.chart : $("chart-choice").value;
  showChartName(chart);
  const q = new URLSearchParams({ lang: state.lang, chart });
  if (f && f.unit === "mm" && !missing(f.hc_centile)) {
    q.set("hc_mm", f.hc_mm);
    q.set("ga_weeks", f.ga_by_dates_weeks);
  }
  const note = f && f.display ? f.display.chart_note : tr("chart_needs_ga");
  $("chart-note").textContent = note || "";
  $("chart-note").hidden = !note;
  const r = await fetch(`/api/v1/growth-chart.svg?${q}`);
  if (!r.ok || seq !== state.chartSeq) return;
  const svg = new DOMParser().parseFromString(await r.text(), "image/svg+xml").documentElement;
  if (seq === state.chartSeq && svg.nodeName === "svg") $("chart").replaceChildren(document.importNode(svg, true));
}

// ---------- requests ----------
function showError(msg) {
  const box = $("error");
  box.hidden = !msg;
  box.textContent = msg ? `${tr("error")}: ${msg}` : "";
}

// An error answer in the chosen language: its code is translated; the server's English words only in English.
async function errorText(r) {
  let j = null;
  try { j = await r.json(); } catch (_) { /* not JSON */ }
  const code = j && j.error ? j.error.code : "", key = `error_${code}`;
  if (state.t[key] !== undefined) {
    const range = code === "invalid_pixel_size_mm" ? state.limits.pixel_size_mm
      : code === "invalid_ga_weeks" ? state.limits.ga_weeks
      : code === "invalid_scale_distance_cm" ? state.limits.scale_distance_cm : [null, null];
    return fill(state.t[key], { lo: range[0], hi: range[1] });
  }
  if (state.lang === "en" && j && j.error && j.error.message) return j.error.message;
  return tr("error_generic");
}

function clearResult() {
  state.seq++;  // any answer still on its way is for what is cleared
  if (state.picking) showScalePanel(false);
  state.result = state.figures = state.ellipse = state.original = state.image = state.png = null;
  $("save-note").textContent = "";
  saveError("");
  $("save-anyway").hidden = $("save-replace").hidden = true;
  $("result").hidden = true;
  $("loop").hidden = true;
  $("announce").textContent = "";
}

// ---------- cine loops: a frame slider over the HC trace ----------
function showLoop(f) {
  const box = $("loop");
  box.hidden = !state.trace;
  if (!state.trace) return;
  const n = state.trace.length, slider = $("frame-slider");
  slider.max = String(n - 1);
  slider.value = String(f.frame);
  $("frame-label").textContent = fill(tr("loop_frame"), { n: f.frame + 1, total: n })
    + (f.frame === state.bestFrame ? ` (${tr("loop_best")})` : "");
  const svg = $("trace"), NS = "http://www.w3.org/2000/svg", W = 400, H = 80, L = 52;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("aria-label", tr("loop_trace"));
  const key = state.trace.some((p) => !missing(p.hc_mm)) ? "hc_mm" : "hc_px", unit = key === "hc_mm" ? "mm" : "px";
  const vals = state.trace.map((p) => p[key]).filter((v) => !missing(v)).sort((a, b) => a - b);
  // a fixed axis: the median HC +/- 3 % (one sonographer's own repeatability), so 0.3 % looks small
  const med = vals.length ? vals[Math.floor((vals.length - 1) / 2)] : 1, lo = med * 0.97, hi = med * 1.03;
  const x = (i) => L + (i * (W - L - 8)) / Math.max(n - 1, 1);
  const y = (v) => H - 10 - ((Math.min(Math.max(v, lo), hi) - lo) / (hi - lo)) * (H - 20);
  svg.replaceChildren();
  const el = (name, attrs, text) => {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.appendChild(node);
    return node;
  };
  for (const v of [lo, med, hi]) {  // ticks in mm (or px), the axis labelled with its unit
    el("line", { x1: L - 4, x2: W - 8, y1: y(v), y2: y(v), stroke: "#d6dcd9", "stroke-width": 1 });
    el("text", { x: L - 6, y: y(v) + 3, "text-anchor": "end", "font-size": 9, fill: "#4a5a52" }, `${v.toFixed(1)} ${unit}`);
  }
  const pts = state.trace.map((p, i) => (missing(p[key]) ? null : `${x(i).toFixed(1)},${y(p[key]).toFixed(1)}`))
    .filter(Boolean).join(" ");
  el("polyline", { points: pts, fill: "none", stroke: "#1f6f43", "stroke-width": 1.5 });
  if (state.bestFrame !== null && state.bestFrame !== undefined) {  // the software's choice stays marked
    el("line", { x1: x(state.bestFrame), x2: x(state.bestFrame), y1: 2, y2: H - 2, stroke: "#1f6f43",
      "stroke-width": 1.5, "stroke-dasharray": "3 2", id: "trace-best" });
  }
  el("line", { x1: x(f.frame), x2: x(f.frame), y1: 2, y2: H - 2, stroke: "#b35c00", "stroke-width": 2, id: "trace-marker" });
}

async function measure(frame = null) {
  if (!state.file) return;
  const form = checkFields();
  if (!form.ok) {
    (form.ps.error ? $("pixel-size") : $("ga-weeks")).focus();
    return;
  }
  showError("");
  const fd = new FormData();
  fd.append("file", state.file);
  if (!missing(form.ps.value)) fd.append("pixel_size_mm", String(form.ps.value));
  else if (state.scale) {  // a scale set by hand: its points (image pixels) and distance; the server decides
    fd.append("scale_points", state.scale.points.flat().map((v) => v.toFixed(2)).join(","));
    fd.append("scale_distance_cm", String(state.scale.cm));
  }
  if (!missing(form.ga.value)) fd.append("ga_weeks", String(form.ga.value));
  fd.append("lang", state.lang);
  fd.append("chart", $("chart-choice").value);
  if (frame !== null) fd.append("frame", String(frame));
  const btn = $("measure");
  btn.disabled = true;
  btn.textContent = tr("measuring");
  const seq = ++state.seq;
  try {
    const r = await fetch("/api/v1/measure", { method: "POST", body: fd });
    if (seq !== state.seq) return;  // a newer request was made meanwhile
    if (!r.ok) {
      const msg = await errorText(r);
      clearResult();
      showError(msg);
      if (r.status === 422) state.scale = null;  // a scale refused is not sent again: measure again, or set it again
      return;
    }
    const res = await r.json();
    if (seq !== state.seq) return;
    const png = res.image_png_base64;
    delete res.image_png_base64;
    state.png = png || null;
    state.result = res;
    state.figures = res;
    if (frame === null) {  // a new measurement of the file: a loop brings its trace and its chosen frame
      state.trace = res.n_frames > 1 && res.hc_trace ? res.hc_trace : null;
      state.bestFrame = state.trace ? res.frame : null;
    }
    state.ellipse = res.ellipse ? { ...res.ellipse } : null;
    state.original = state.ellipse && { ...state.ellipse };
    $("reset").disabled = true;
    const img = new Image();
    img.onload = () => { if (seq === state.seq || state.result === res) { state.image = img; draw(); } };
    img.src = `data:image/png;base64,${png}`;
    $("result").hidden = false;
    showFigures(res);
    showLoop(res);
    if (frame === null) $("status").focus();
  } catch (err) {
    if (seq === state.seq) { clearResult(); showError(tr("error_generic")); }
  } finally {
    btn.disabled = !state.file;
    btn.textContent = tr("measure");
  }
}

let pending = null;
// The server recomputes figures, flags and status from the measurement and the moved ellipse
// (no network run); the page shows what it answers and decides nothing itself.
async function recompute(gaWeeks) {
  if (!state.ellipse || !state.result) return;
  const body = { ellipse: state.ellipse, measurement: state.result, ga_weeks: missing(gaWeeks) ? null : gaWeeks,
    lang: state.lang, chart: $("chart-choice").value };
  const seq = ++state.seq;
  const r = await fetch("/api/v1/biometry", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body) });
  if (seq !== state.seq) return;  // an answer for an older state of the page: dropped
  if (!r.ok) { showError(await errorText(r)); return; }
  const f = await r.json();
  if (seq !== state.seq) return;
  showError("");
  state.figures = f;
  showFigures(f);
  draw();
}
const currentGa = () => (state.figures ? state.figures.ga_by_dates_weeks : null);
function scheduleRecompute() {
  clearTimeout(pending);
  pending = setTimeout(() => recompute(currentGa()), 120);
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
  if (!r.ok) { saveError(await errorText(r)); return; }  // under the buttons, where it was asked
  saveError("");
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

// ---------- the visit: patient, exam date, saved measurements, typed AC/FL, earlier visits ----------
const today = () => new Date(Date.now() - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 10);
const num = (v, nd = 1, unit = "") => (missing(v) ? "—" : `${Number(v).toFixed(nd)}${unit ? " " + unit : ""}`);
const weeksDays = (w) => (missing(w) ? "—" : `${Math.floor(w + 1e-9)}w ${Math.round((w - Math.floor(w + 1e-9)) * 7)}d`);
// as the reports write a centile (fetalhead.outputs.display.centile_band): never a bare 0 or 100
// and its ordinal as the language writes it (fetalhead.records.report.centile_text): 23rd, 23वाँ, 23వ
const englishSuffix = (n) => (n % 100 >= 11 && n % 100 <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" })[n % 10] || "th");
const nthCentile = (n) => fill(tr("centile_n_named"), { nth: fill(tr("centile_nth"), { n, en_suffix: englishSuffix(n) }) });
const centileText = (c) => (c < 0.5 ? tr("centile_below_named") : c >= 99.5 ? tr("centile_above_named")
  : nthCentile(Math.min(Math.max(Math.round(c), 1), 99)));
const withCentile = (text, c) => (missing(c) || text === "—" ? text : `${text} (${centileText(c)})`);

// an error shown where it was asked: the visit form, under the result's buttons (save, reports, SR, FHIR), or by AC/FL
function errorIn(id) {
  return (msg) => {
    const box = $(id);
    box.hidden = !msg;
    box.textContent = msg ? `${tr("error")}: ${msg}` : "";
  };
}
// a refusal the user can answer with a button beside it (save anyway, replace): said as it is, not as an "Error"
function choiceIn(id) {
  return (msg) => { const box = $(id); box.hidden = !msg; box.textContent = msg || ""; };
}
const visitError = errorIn("visit-error"), saveError = errorIn("save-error"), biometryError = errorIn("biometry-error");

async function visitFetch(url, options = {}, show = visitError) {
  const r = await fetch(url, options);
  if (!r.ok) { show(await errorText(r)); return null; }
  show("");
  return r.json();
}

async function openVisit() {
  const pid = $("patient-id").value.trim();
  if (!pid) { $("patient-id").focus(); visitError(tr("no_visit_open")); return; }
  const date = $("exam-date").value || today();
  // the patient's visit of this exam date when there is one, else a new visit
  const body = { date, reuse_same_date: true };
  if ($("lmp").value) body.lmp = $("lmp").value;
  const ga = parseGestationalAge($("ga-weeks").value);
  if (!body.lmp && !ga.error && !missing(ga.value)) body.ga_by_dates = ga.value;
  if ($("sonographer").value.trim()) body.sonographer = $("sonographer").value.trim();
  if ($("patient-name").value.trim()) body.name = $("patient-name").value.trim();
  const age = Number($("patient-age").value);
  if ($("patient-age").value.trim() && Number.isFinite(age)) body.age = age;
  const visit = await visitFetch(`/api/v1/patients/${encodeURIComponent(pid)}/visits`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!visit) return;
  state.visit = visit;
  if (!$("lmp").value && visit.lmp) $("lmp").value = visit.lmp;  // a visit reopened shows the LMP it holds
  if (state.figures) $("save-to-visit").disabled = isSaved(state.figures);  // another visit: the result can go there
  showVisit(visit);
  loadEarlier(pid, visit.id);
  // the visit's GA by dates (from the LMP) goes into the form, so that measurements get their centiles
  if (!$("ga-weeks").value.trim() && !missing(visit.ga_by_dates_weeks)) {
    const days = Math.round(visit.ga_by_dates_weeks * 7);
    $("ga-weeks").value = `${Math.floor(days / 7)}+${days % 7}`;
    const ga = fieldCheck("ga-weeks", "ga-error", parseGestationalAge($("ga-weeks").value));
    if (state.result && !ga.error) recompute(ga.value);
  }
}

function showVisit(v) {
  state.visit = v;
  $("visit-panel").hidden = false;
  $("visit-title").textContent = `${v.patient_id} · ${v.exam_date}`;
  $("visit-open-label").textContent = `: ${v.patient_id} · ${v.exam_date}`;
  const rows = v.measurements.map((m, i) => {
    const tr_ = document.createElement("tr");
    const word = tr(`status_word_${m.status}`) + (m.saved_with_other_patient_id ? `; ${tr("saved_other_patient_id")}` : "");
    [String(i + 1), num(m.hc_mm), num(m.bpd_mm), num(m.ofd_mm), word].forEach((text) => {
      const td = document.createElement("td");
      td.textContent = text;
      tr_.appendChild(td);
    });
    return tr_;
  });
  $("visit-measurements").replaceChildren(...rows);
  $("mean-hc").textContent = withCentile(num(v.mean_hc_mm), v.centiles.hc);
  $("mean-bpd").textContent = withCentile(num(v.mean_bpd_mm), v.centiles.bpd);
  $("mean-ofd").textContent = withCentile(num(v.mean_ofd_mm), v.centiles.ofd);
  const spread = (v.review_notes || []).find((n) => n.code === "hc_spread");
  const far = (v.review_notes || []).find((n) => n.code === "hc_far_from_ga");
  $("visit-spread").textContent = [spread ? fill(tr("hc_spread_note"), { spread: num(v.hc_spread_percent) }) : "",
    far && !missing(v.hc_zscore) ? fill(tr("visit_hc_far_from_ga"), { z: `${v.hc_zscore >= 0 ? "+" : ""}${Number(v.hc_zscore).toFixed(1)}`,
      ga: weeksDays(v.ga_by_dates_weeks) }) : ""].filter(Boolean).join(" ");
  $("visit-spread").hidden = !spread && !far;
  if (document.activeElement !== $("ac-mm")) $("ac-mm").value = missing(v.ac_mm) ? "" : String(v.ac_mm);
  if (document.activeElement !== $("fl-mm")) $("fl-mm").value = missing(v.fl_mm) ? "" : String(v.fl_mm);
  $("visit-ga-lmp").textContent = weeksDays(v.ga_by_lmp_weeks);
  $("visit-due").textContent = v.due_date || "—";
  $("visit-ga-hc").textContent = `${weeksDays(v.ga_by_hc_hadlock_weeks)} (Hadlock 1984)`;
  const efw = [["hadlock1985", "Hadlock 1985"], ["intergrowth2017", "INTERGROWTH-21st 2017"]]
    .sort((a, b) => (a[0] === v.efw_method ? -1 : b[0] === v.efw_method ? 1 : 0))
    .map(([k, name]) => `${num(v[`efw_${k}_g`], 0, "g")} (${name})`).join("; ");
  $("visit-efw").textContent = withCentile(efw, v.centiles.efw);
  const g = v.growth;
  $("visit-growth").textContent = !g ? "—" : [["hc_mm_per_week", "HC", "mm"], ["ac_mm_per_week", "AC", "mm"],
    ["fl_mm_per_week", "FL", "mm"], ["efw_g_per_week", "EFW", "g"]]
    .filter(([k]) => !missing(g[k])).map(([k, label, unit]) => `${label} ${g[k] > 0 ? "+" : ""}${num(g[k], 1, unit)} ${tr("per_week")}`)
    .join("; ") || "—";
  drawVisitChart(v);
}

async function drawVisitChart(v) {
  // the HC chart always; the EFW chart when this visit has a fetal weight
  const charts = [["hc", "visit-chart"]].concat(missing(v.efw_g) ? [] : [["efw", "visit-efw-chart"]]);
  $("visit-efw-title").hidden = $("visit-efw-chart").hidden = missing(v.efw_g);
  for (const [measure, id] of charts) {
    const q = new URLSearchParams({ lang: state.lang, measure, patient_id: v.patient_id });
    const r = await fetch(`/api/v1/visits/${v.id}/chart.svg?${q}`);
    if (!r.ok || !state.visit || state.visit.id !== v.id) return;
    const svg = new DOMParser().parseFromString(await r.text(), "image/svg+xml").documentElement;
    if (svg.nodeName === "svg") $(id).replaceChildren(document.importNode(svg, true));
  }
}

async function loadEarlier(pid, currentId) {
  const r = await fetch(`/api/v1/patients/${encodeURIComponent(pid)}/visits`);
  if (!r.ok) return;
  const items = (await r.json()).visits.filter((v) => v.id !== currentId).map((v) => {
    const li = document.createElement("li");
    li.textContent = `${v.exam_date}: HC ${num(v.mean_hc_mm, 1, "mm")}, AC ${num(v.ac_mm, 1, "mm")}, EFW ${num(v.efw_g, 0, "g")}`;
    return li;
  });
  $("earlier-visits").replaceChildren(...items);
}

// the measurement ``f`` is the one last saved to the open visit (the same signed figures)
function isSaved(f) {
  const s = state.saved;
  return Boolean(s && f && f.signature && state.visit && s.visitId === state.visit.id && s.figures.signature === f.signature);
}

// flags.other: the scan's DICOM names another patient than the visit's and the user has checked it (refused
// first with dicom_of_another_patient; saved anyway, the audit log says so); flags.replace: another outline of
// a scan saved already takes its place (refused first with scan_already_saved). Each refusal offers its button.
const SAVE_CHOICES = { dicom_of_another_patient: ["save-anyway", "other"], scan_already_saved: ["save-replace", "replace"] };
async function saveToVisit(flags = {}) {
  $("save-anyway").hidden = $("save-replace").hidden = true;
  if (!state.figures) return;
  if (!state.visit) {  // no visit open yet: the form to open one
    $("visit-form").open = true;
    visitError(tr("no_visit_open"));
    $("patient-id").focus();
    return;
  }
  const body = { ...state.figures };
  if (state.png) body.image_png_base64 = state.png;
  $("save-note").textContent = "";
  const r = await fetch(`/api/v1/visits/${state.visit.id}/measurements?patient_id=${encodeURIComponent(state.visit.patient_id)}`
    + (flags.other ? "&other_patient_id=true" : "") + (flags.replace ? "&replace=true" : ""),
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!r.ok) {
    const j = await r.clone().json().catch(() => null);
    const choice = j && j.error && SAVE_CHOICES[j.error.code];
    (choice ? choiceIn("save-error") : saveError)(await errorText(r));
    if (choice) { state.saveFlags = { ...flags, [choice[1]]: true }; $(choice[0]).hidden = false; }
    return;
  }
  saveError("");
  const v = await r.json();
  state.saved = { visitId: v.id, measurementId: v.saved_measurement_id, figures: state.figures };
  $("save-to-visit").disabled = true;  // saved: a second tap would only repeat the same row
  showVisit(v);
  $("save-note").textContent = tr("saved_to_visit");
}

async function saveBiometry() {
  if (!state.visit) return;
  // an empty field clears the value; anything else must be a number (never sent as null: that would clear it)
  const value = (id) => { const t = $(id).value.trim().replace(",", "."); return t ? Number(t) : null; };
  const ac = value("ac-mm"), fl = value("fl-mm");
  const bad = [["ac-mm", ac], ["fl-mm", fl]].filter(([, v]) => v !== null && !Number.isFinite(v)).map(([id]) => id);
  ["ac-mm", "fl-mm"].forEach((id) => (bad.includes(id) ? $(id).setAttribute("aria-invalid", "true")
    : $(id).removeAttribute("aria-invalid")));
  if (bad.length) { biometryError(tr("error_biometry_not_a_number")); $(bad[0]).focus(); return; }
  const v = await visitFetch(`/api/v1/visits/${state.visit.id}?patient_id=${encodeURIComponent(state.visit.patient_id)}`, {
    method: "PATCH", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ac_mm: ac, fl_mm: fl }) }, biometryError);
  if (v) showVisit(v);
}

async function downloadVisitReport() {
  if (!state.visit) return;
  const r = await fetch(`/api/v1/visits/${state.visit.id}/report?format=pdf&lang=${state.lang}` +
    `&patient_id=${encodeURIComponent(state.visit.patient_id)}`);
  if (!r.ok) { visitError(await errorText(r)); return; }
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await r.blob());
  a.download = `visit_${state.visit.id}_report.pdf`;  // never the patient's ID or name
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 5000);
}

// The DICOM SR (TID 5000) or the FHIR Bundle of exactly the measurement on screen, with its scan.
async function downloadHandoff(kind) {
  if (!state.file || !state.figures) return;
  const fd = new FormData();
  fd.append("file", state.file);
  fd.append("measurement", JSON.stringify(state.figures));
  if (!missing(state.figures.ga_by_dates_weeks)) fd.append("ga_weeks", String(state.figures.ga_by_dates_weeks));
  // the measurement on screen saved to the open visit: its SR and FHIR with the visit (dating, patient)
  const s = state.saved, v = state.visit;
  const url = s && v && s.figures === state.figures && s.visitId === v.id
    ? `/api/v1/visits/${v.id}/measurements/${s.measurementId}/${kind}?patient_id=${encodeURIComponent(v.patient_id)}`
    : `/api/v1/${kind}`;
  const r = await fetch(url, { method: "POST", body: fd });
  if (!r.ok) { saveError(await errorText(r)); return; }  // under the buttons, where it was asked
  saveError("");
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await r.blob());
  const stem = (state.file.name || "scan").replace(/\.[^.]*$/, "") || "scan";
  a.download = kind === "sr" ? `${stem}_sr.dcm` : `${stem}_fhir.json`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 5000);
}

async function loadLimits() {
  const r = await fetch("/api/v1/limits");
  if (!r.ok) return;
  state.limits = await r.json();
  const choice = $("chart-choice");
  choice.replaceChildren(...Object.entries(state.limits.charts).map(([value, name]) => new Option(name, value)));
  choice.value = localStorage.getItem("fetalhead-chart") || "intergrowth";
  document.querySelectorAll("[data-formula]").forEach((el) => {
    el.textContent = state.limits.formulas[el.getAttribute("data-formula")] || "";
  });
}

// the sonographer from the login when the server asks for one (fetalhead serve --password-file); editable
async function loadLogin() {
  const r = await fetch("/api/v1/me");
  if (!r.ok) return;
  const { user } = await r.json();
  if (user && !$("sonographer").value.trim()) $("sonographer").value = user;
}

// ---------- moving the calipers: pointer (mouse, finger) and keyboard ----------
function toImage(ev) {
  const c = $("view"), rect = c.getBoundingClientRect();
  return [((ev.clientX - rect.left) * c.width) / rect.width, ((ev.clientY - rect.top) * c.height) / rect.height];
}
function onDown(ev) {
  if (state.picking) { pickPoint(ev); return; }
  if (!state.ellipse) return;
  const [x, y] = toImage(ev), lm = landmarks(state.ellipse);
  const c = $("view"), touch = ev.pointerType === "touch" || ev.pointerType === "pen";
  const tol = ((touch ? 28 : 12) * c.width) / c.getBoundingClientRect().width;
  let best = null, bestD = tol;
  for (const [k, p] of Object.entries(lm)) {
    const d = Math.hypot(p[0] - x, p[1] - y);
    if (d < bestD) { best = k; bestD = d; }
  }
  // the end keeps its offset from the pointer (it does not jump under the finger)
  if (best) state.drag = { kind: best, dx: lm[best][0] - x, dy: lm[best][1] - y };
  else if (insideEllipse(state.ellipse, x, y)) state.drag = { kind: "move", dx: state.ellipse.center_x - x, dy: state.ellipse.center_y - y };
  if (state.drag) { c.setPointerCapture(ev.pointerId); ev.preventDefault(); }
}
function onMove(ev) {
  if (state.picking && state.pickDrag !== null) {
    const c = $("view"), [x, y] = toImage(ev), [dx, dy] = state.pickOffset;
    state.pickPoints[state.pickDrag] = [Math.min(Math.max(x + dx, 0), c.width), Math.min(Math.max(y + dy, 0), c.height)];
    draw();
    return;
  }
  if (!state.drag) return;
  const [x, y] = toImage(ev), d = state.drag;
  applyHandle(d.kind, x + d.dx, y + d.dy);
}
function onUp() {
  const wasPicking = state.pickDrag !== null;
  state.drag = null; state.pickDrag = null;
  if (wasPicking) draw();  // the magnifier goes with the finger
}
const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
function onKey(ev) {
  if (state.picking) { pickKey(ev); return; }
  if (!state.ellipse || !ARROWS[ev.key]) return;
  ev.preventDefault();
  const step = ev.shiftKey ? 10 : 1, [dx, dy] = ARROWS[ev.key].map((v) => v * step), kind = $("handle").value;
  const e = state.ellipse, p = kind === "move" ? [e.center_x, e.center_y] : landmarks(e)[kind];
  applyHandle(kind, p[0] + dx, p[1] + dy);
}

// ---------- wiring ----------
function setFile(f) {
  state.file = f || null;
  state.scale = null;  // a scale set by hand belongs to its picture
  if (state.picking) showScalePanel(false);
  state.trace = state.bestFrame = null;
  clearResult();  // a new file: the old result is of another scan and goes
  showError("");
  $("file-name").textContent = f ? f.name : "";
  $("measure").disabled = !f;
}
window.addEventListener("DOMContentLoaded", async () => {
  $("lang").addEventListener("change", (ev) => loadLanguage(ev.target.value));
  $("file").addEventListener("change", (ev) => setFile(ev.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault(); drop.classList.remove("over");
    if (ev.dataTransfer.files.length) setFile(ev.dataTransfer.files[0]);
  });
  drop.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); $("file").click(); }
  });
  drop.addEventListener("click", () => $("file").click());
  $("measure").addEventListener("click", () => measure());
  $("frame-slider").addEventListener("change", (ev) => measure(Number(ev.target.value)));
  $("reset").addEventListener("click", () => {
    state.ellipse = state.original && { ...state.original };
    $("reset").disabled = true;
    recompute(currentGa());
  });
  $("ga-weeks").addEventListener("change", () => {
    const ga = fieldCheck("ga-weeks", "ga-error", parseGestationalAge($("ga-weeks").value));
    // a GA that cannot be read gives no centile: never the centile of the GA typed before
    if (state.result) recompute(ga.error ? null : ga.value);
  });
  $("pixel-size").addEventListener("change", () => {
    const ps = fieldCheck("pixel-size", "pixel-size-error", parsePixelSize($("pixel-size").value));
    if (!missing(ps.value)) state.scale = null;  // a pixel size typed replaces a scale set by hand
    // the figures on screen were of the old pixel size: they go, and the scan is measured again
    if (state.result) { clearResult(); if (!ps.error) measure(); }
  });
  $("chart-choice").addEventListener("change", () => {
    localStorage.setItem("fetalhead-chart", $("chart-choice").value);
    // the same measurement, its centiles read on the other chart (no network run)
    if (state.result && state.ellipse) recompute(currentGa());
    else drawChart(null);
  });
  $("set-scale").addEventListener("click", () => showScalePanel(!state.picking));
  $("scale-cancel").addEventListener("click", () => showScalePanel(false));
  // Escape closes "Set the scale" from anywhere on the page (nothing applied), back to the button that opened it
  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape" || !state.picking) return;
    ev.preventDefault();
    showScalePanel(false);
    $("set-scale").focus();
  });
  $("scale-undo").addEventListener("click", () => { state.pickPoints.pop(); updateScaleCount(); draw(); });
  $("scale-clear").addEventListener("click", () => { state.pickPoints = []; updateScaleCount(); draw(); });
  $("scale-apply").addEventListener("click", applyScale);
  $("scale-cm").addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); applyScale(); } });
  $("pdf").addEventListener("click", () => downloadReport("pdf"));
  $("html").addEventListener("click", () => downloadReport("html"));
  $("print").addEventListener("click", () => window.print());
  $("sr").addEventListener("click", () => downloadHandoff("sr"));
  $("fhir").addEventListener("click", () => downloadHandoff("fhir"));
  $("exam-date").value = today();
  $("open-visit").addEventListener("click", openVisit);
  // Enter in a field does what its button does (a patient ID typed, then Enter; an AC typed, then Enter)
  const onEnter = (ids, action) => ids.forEach((id) => $(id).addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); action(); }
  }));
  onEnter(["patient-id", "patient-name", "patient-age", "sonographer"], openVisit);
  onEnter(["ac-mm", "fl-mm"], saveBiometry);
  $("save-to-visit").addEventListener("click", () => saveToVisit());
  $("save-anyway").addEventListener("click", () => saveToVisit(state.saveFlags));
  $("save-replace").addEventListener("click", () => saveToVisit(state.saveFlags));
  $("save-biometry").addEventListener("click", saveBiometry);
  $("visit-pdf").addEventListener("click", downloadVisitReport);
  const c = $("view");
  c.addEventListener("pointerdown", onDown);
  c.addEventListener("pointermove", onMove);
  c.addEventListener("pointerup", onUp);
  c.addEventListener("pointercancel", onUp);
  c.addEventListener("keydown", onKey);
  c.addEventListener("focus", draw);
  c.addEventListener("blur", draw);
  $("handle").addEventListener("change", draw);
  await loadLimits();
  await loadLanguage(state.lang);
  await loadLogin();
});
