// brushwork studio page: uploads, a form built from the server's field list,
// a live view of one job (Server-Sent Events), the queue and the gallery.
"use strict";

const $ = (id) => document.getElementById(id);
const HEADERS = { "X-Brushwork": "1" }; // the server refuses state changes without it

const state = {
  options: null,      // /api/options
  content: null,      // upload metadata
  styles: [],         // upload metadata per style slot (null = empty)
  jobId: null,        // the job shown in the run panel
  events: null,       // its EventSource
  previewVersion: 0,
  imageToken: 0,      // newest image asked for; older loads are ignored
  chart: null,
};

// ---------------------------------------------------------------- helpers

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

function show(node, text, kind) {
  node.hidden = !text;
  node.textContent = text || "";
  node.classList.toggle("error", kind === "error");
}

async function api(path, init = {}) {
  const res = await fetch(path, init);
  let body = null;
  try { body = await res.json(); } catch { /* not JSON: keep null */ }
  if (!res.ok) {
    const msg = (body && body.error) || `${res.status} ${res.statusText}`;
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  return body;
}

function fmtSeconds(s) {
  if (s === null || s === undefined || !isFinite(s)) return "–";
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function fmtBytes(n) {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} kB`;
}

function ordinal(n) {
  const s = ["th", "st", "nd", "rd"], v = n % 100;
  return n + (s[(v - 20) % 10] || s[v] || s[0]);
}

// ---------------------------------------------------------------- image slots

function renderSlot(node, role, index) {
  const meta = role === "content" ? state.content : state.styles[index];
  const title = role === "content" ? "Content photo" :
    (state.styles.length > 1 ? `Style ${index + 1}` : "Style painting");
  const input = el("input", { type: "file", accept: "image/*", class: "file",
    id: role === "content" ? "content-input" : `style-input-${index}`,
    "aria-label": title });
  const err = el("p", { class: "msg error slot-error", hidden: true });
  const body = meta
    ? el("div", { class: "slot-body filled" },
        el("img", { src: `/api/uploads/${meta.id}/thumb`, alt: meta.name }),
        el("div", { class: "slot-caption" },
          el("strong", { text: meta.name }),
          el("span", { class: "muted", text: `${meta.width}×${meta.height} · ${fmtBytes(meta.bytes)}` })))
    : el("div", { class: "slot-body" },
        el("span", { class: "slot-icon", text: role === "content" ? "▣" : "✎" }),
        el("span", { text: "Drop an image here or click to choose" }));
  const label = el("label", { class: "drop", for: input.id },
    el("span", { class: "slot-title", text: title }), body, input);
  node.replaceChildren(label, err);

  input.addEventListener("change", () => input.files[0] && upload(input.files[0], role, index, node));
  label.addEventListener("dragover", (e) => { e.preventDefault(); label.classList.add("over"); });
  label.addEventListener("dragleave", () => label.classList.remove("over"));
  label.addEventListener("drop", (e) => {
    e.preventDefault();
    label.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) upload(file, role, index, node);
  });
}

function renderSlots() {
  renderSlot($("content-slot"), "content", 0);
  const box = $("style-slots");
  box.replaceChildren();
  state.styles.forEach((_, i) => {
    const node = el("div", { class: "slot", "data-role": "style" });
    box.append(node);
    renderSlot(node, "style", i);
    if (i > 0) {
      node.append(el("button", { type: "button", class: "small remove", text: "Remove",
        onclick: () => { state.styles.splice(i, 1); renderSlots(); } }));
    }
  });
  // Several styles are blended; offer another slot once every slot is filled.
  const max = state.options.limits.max_styles;
  if (state.styles.length < max && state.styles.every(Boolean)) {
    box.append(el("button", { type: "button", class: "small add-style", id: "add-style",
      text: "+ Blend another style",
      onclick: () => { state.styles.push(null); renderSlots(); } }));
  }
  if (state.styles.length > 1) {
    box.append(el("small", { class: "help", text: "Blend weights: More settings → Style blend (default: equal)." }));
  }
}

async function upload(file, role, index, node) {
  const err = node.querySelector(".slot-error");
  const limit = state.options.limits.max_upload_bytes;
  if (file.size > limit) {
    show(err, `'${file.name}' is ${fmtBytes(file.size)}, over the upload limit of ${fmtBytes(limit)}.`, "error");
    return;
  }
  node.classList.add("busy");
  show(err, "");
  try {
    const meta = await api(`/api/uploads?name=${encodeURIComponent(file.name)}`, {
      method: "POST", headers: { ...HEADERS, "Content-Type": "application/octet-stream" }, body: file,
    });
    if (role === "content") state.content = meta; else state.styles[index] = meta;
    if (role === "content") renderSlot(node, role, index); else renderSlots();
  } catch (e) {
    renderSlot(node, role, index);
    show(node.querySelector(".slot-error"), e.message, "error");
  } finally {
    node.classList.remove("busy");
  }
}

// ---------------------------------------------------------------- settings form

// Slider position (0..steps) <-> value, for a field's slider description.
function sliderScale(f) {
  const s = f.slider;
  const log = s.scale === "log";
  const to = log ? Math.log : (x) => x;
  const lo = to(s.min), hi = to(s.max);
  return {
    // Values outside the slider's range (the number box takes them) pin it to an end.
    pos: (v) => Math.round(((to(Math.min(s.max, Math.max(s.min, v))) - lo) / (hi - lo)) * s.steps),
    value: (pos) => {
      const x = lo + (pos / s.steps) * (hi - lo);
      const v = log ? Math.exp(x) : x;
      return s.whole ? Math.round(v) : Number(v.toPrecision(3));
    },
    // Tick marks: the powers of ten in range on a log scale, else both ends.
    ticks: () => {
      if (!log) return [s.min, s.max];
      const out = [];
      for (let k = Math.ceil(Math.log10(s.min) - 1e-9); 10 ** k <= s.max * (1 + 1e-9); k++) {
        out.push(Number((10 ** k).toPrecision(3)));
      }
      return out;
    },
  };
}

// A number option drawn as a slider with a linked number box. The box (id opt-NAME)
// holds the value that is sent and takes any value the option allows; the slider
// spans the narrower range the server describes and follows the box.
function sliderField(f) {
  const id = `opt-${f.name}`;
  const scale = sliderScale(f);
  const s = f.slider;
  const box = el("input", { id, name: f.name, type: "number", class: "slider-value",
    step: s.whole ? "1" : "any", inputmode: s.whole ? "numeric" : "decimal", min: f.min, max: f.max });
  const range = el("input", { id: `${id}-slider`, type: "range", min: 0, max: s.steps, step: 1,
    list: `${id}-ticks`, "aria-label": f.label });
  const ticks = scale.ticks();
  const marks = el("datalist", { id: `${id}-ticks` },
    ...ticks.map((t) => el("option", { value: scale.pos(t) })));
  const labels = el("div", { class: "slider-ticks", "aria-hidden": "true" });
  for (const t of ticks) {
    const tick = el("span", { text: String(t) });
    tick.style.setProperty("--at", String(scale.pos(t) / s.steps)); // CSSOM: the CSP allows it
    labels.append(tick);
  }
  range.addEventListener("input", () => {
    box.value = String(scale.value(Number(range.value)));
    range.setAttribute("aria-valuetext", box.value);
  });
  box.addEventListener("input", () => syncSlider(f));
  const [lowEnd, highEnd] = s.ends || [null, null];
  return el("div", { class: "field slider-field", title: f.help },
    el("div", { class: "slider-head" }, el("label", { class: "name", for: id, text: f.label }), box),
    el("div", { class: "slider-row" },
      lowEnd && el("span", { class: "slider-end", text: lowEnd }),
      el("div", { class: "slider-track" }, range, marks, labels),
      highEnd && el("span", { class: "slider-end", text: highEnd })),
    el("small", { class: "help", text: f.help }));
}

// Move a slider to its number box's value (left alone while the box holds no number).
function syncSlider(f) {
  const box = $(`opt-${f.name}`), range = $(`opt-${f.name}-slider`);
  const v = Number(box.value);
  range.disabled = box.disabled;
  if (box.value.trim() === "" || !isFinite(v)) return;
  range.value = String(sliderScale(f).pos(v));
  range.setAttribute("aria-valuetext", box.value);
}

function fieldInput(f) {
  if (f.kind === "slider") return sliderField(f);
  const id = `opt-${f.name}`;
  let input;
  if (f.kind === "select") {
    input = el("select", { id, name: f.name }, ...f.choices.map((c) => el("option", { value: c, text: c })));
  } else if (f.kind === "bool") {
    input = el("input", { id, name: f.name, type: "checkbox" });
  } else if (f.kind === "int" || f.kind === "float") {
    input = el("input", { id, name: f.name, type: "number", step: f.kind === "int" ? "1" : "any",
      inputmode: f.kind === "int" ? "numeric" : "decimal", placeholder: f.nullable ? "auto" : null,
      min: f.min, max: f.max });
  } else {
    input = el("input", { id, name: f.name, type: "text", placeholder: f.nullable ? "auto" : null,
      spellcheck: "false" });
  }
  const cls = f.kind === "bool" ? "field check" : "field";
  return el("label", { class: cls, for: id, title: f.help },
    el("span", { class: "name", text: f.label }), input, el("small", { class: "help", text: f.help }));
}

function setField(f, value) {
  const input = $(`opt-${f.name}`);
  if (f.kind === "bool") input.checked = !!value;
  else if (value === null || value === undefined) input.value = "";
  else if (f.kind === "list" || f.kind === "floats") input.value = value.join(",");
  else input.value = String(value);
  if (f.kind === "slider") syncSlider(f);
}

function readField(f) {
  const input = $(`opt-${f.name}`);
  if (f.kind === "bool") return input.checked;
  const raw = input.value.trim();
  if (raw === "") return f.nullable ? null : undefined;
  if (f.kind === "int" || f.kind === "float" || f.kind === "slider") return Number(raw);
  if (f.kind === "list") return raw.split(",").map((s) => s.trim()).filter(Boolean);
  if (f.kind === "floats") return raw.split(",").filter((s) => s.trim()).map(Number);
  return raw;
}

// What each field shows before the user touches it: the default, or the preset's value.
function baseline(preset) {
  const values = {};
  for (const f of state.options.fields) values[f.name] = f.default;
  const p = preset ? state.options.presets[preset] : null;
  if (p) for (const [k, v] of Object.entries(p)) if (k in values) values[k] = v;
  return values;
}

function applyPreset(preset, overrides = {}) {
  $("preset").value = preset || "";
  const base = baseline(preset);
  for (const f of state.options.fields) setField(f, f.name in overrides ? overrides[f.name] : base[f.name]);
  const p = preset ? state.options.presets[preset] : null;
  const staged = p && Array.isArray(p.stages) && p.stages.length > 0;
  // An explicit stage list replaces size, iterations and the pyramid, so those inputs would mislead.
  for (const name of ["size", "iterations", "lr_decay_every", "scales", "min_size"]) {
    const input = $(`opt-${name}`);
    if (input) input.disabled = !!staged;
  }
  let note = "No preset: every value below is used as shown.";
  if (p) {
    const parts = [];
    for (const [k, v] of Object.entries(p)) {
      if (k === "stages") parts.push("stages " + v.map((s) => `${s.size}px × ${s.iterations} it`).join(" → "));
      else parts.push(`${k.replace(/_/g, " ")} = ${v}`);
    }
    note = `${preset}: ${parts.join("; ")}. Values you change below win.`;
  }
  $("preset-note").textContent = note;
}

// Only values that differ from what the preset/default would give: re-runs stay readable.
function collectOptions() {
  const base = baseline($("preset").value);
  const out = {};
  for (const f of state.options.fields) {
    const input = $(`opt-${f.name}`);
    if (input.disabled) continue;
    const v = readField(f);
    if (v === undefined) continue;
    if (JSON.stringify(v) !== JSON.stringify(base[f.name])) out[f.name] = v;
  }
  return out;
}

function buildForm() {
  const o = state.options;
  const preset = $("preset");
  preset.replaceChildren(el("option", { value: "", text: "none" }),
    ...Object.keys(o.presets).map((p) => el("option", { value: p, text: p })));
  preset.addEventListener("change", () => applyPreset(preset.value));
  for (const f of o.fields) (f.primary ? $("primary-fields") : $("more-fields")).append(fieldInput(f));
  applyPreset("");
  $("reset").addEventListener("click", () => applyPreset(""));
  $("settings").addEventListener("submit", (e) => { e.preventDefault(); start(); });
}

async function start() {
  const msg = $("submit-msg");
  if (!state.content) return show(msg, "Choose a content image first.", "error");
  if (!state.styles.some(Boolean)) return show(msg, "Choose a style image first.", "error");
  const body = {
    content: state.content.id,
    styles: state.styles.filter(Boolean).map((s) => s.id),
    preset: $("preset").value || null,
    options: collectOptions(),
  };
  $("start").disabled = true;
  try {
    const job = await api("/api/jobs", {
      method: "POST", headers: { ...HEADERS, "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    show(msg, `Submitted job ${job.id.slice(0, 8)}; follow it under Run.`);
    watch(job.id);
    refreshQueue();
  } catch (e) {
    show(msg, e.message, "error");
  } finally {
    $("start").disabled = false;
  }
}

// ---------------------------------------------------------------- the run panel

function watch(jobId) {
  if (state.events) state.events.close();
  state.jobId = jobId;
  state.previewVersion = 0;
  state.imageToken++;
  state.chart.reset(0);
  $("preview").hidden = true;
  $("preview").removeAttribute("src");
  $("preview-empty").hidden = false;
  $("preview-empty").textContent = "Waiting for the first frame…";
  $("download").hidden = true;
  show($("job-error"), "");
  show($("job-note"), "");
  const es = new EventSource(`/api/jobs/${jobId}/events`);
  state.events = es;
  es.addEventListener("state", (e) => {
    if (state.jobId !== jobId) return;
    const snap = JSON.parse(e.data);
    render(snap);
    if (["done", "cancelled", "failed"].includes(snap.status)) {
      es.close(); // otherwise EventSource reconnects forever
      refreshQueue();
      if (snap.status === "done") refreshGallery();
    }
  });
  es.onerror = async () => {
    // Reconnects are automatic; give up only if the server no longer knows the job.
    try { await api(`/api/jobs/${jobId}`); } catch (err) {
      if (err.status === 404 && state.jobId === jobId) {
        es.close();
        setStatus("gone", "gone");
        show($("job-error"), "The server no longer knows this job (was it restarted?).", "error");
      }
    }
  };
  refreshQueue();
}

function setStatus(status, text) {
  const b = $("status");
  b.dataset.status = status;
  b.textContent = text;
}

function render(snap) {
  const p = snap.progress;
  let text = snap.status;
  if (snap.status === "queued") {
    const ahead = snap.position - 1;
    text = `waiting · ${ordinal(snap.position)} in line`;
    $("preview-empty").textContent = ahead > 0
      ? `Waiting: ${ahead} job${ahead > 1 ? "s" : ""} ahead of this one${snap.running_ahead ? ", plus the one running" : ""}.`
      : (snap.running_ahead ? "Next in line: starts when the running job ends." : "Starting…");
  } else if (snap.status === "running") {
    text = "running";
    if (!p) $("preview-empty").textContent = "Loading the network…";
  }
  setStatus(snap.status, text);
  $("cancel").disabled = !(snap.status === "queued" || snap.status === "running");

  if (p) {
    $("stat-iteration").textContent = `${p.iteration} / ${p.total_iterations}`;
    $("stat-stage").textContent = `${p.stage + 1} / ${p.stages}`;
    $("stat-size").textContent = `${p.width}×${p.height}` + (p.tiles > 1 ? ` · ${p.tiles} tiles` : "");
    $("stat-elapsed").textContent = fmtSeconds(p.elapsed);
    $("stat-eta").textContent = snap.status === "running" ? fmtSeconds(p.eta) : "–";
    $("bar-fill").style.width = `${(100 * p.iteration) / Math.max(1, p.total_iterations)}%`;
  } else {
    for (const k of ["iteration", "stage", "size", "elapsed", "eta"]) $(`stat-${k}`).textContent = "–";
    $("bar-fill").style.width = "0%";
  }
  if (snap.points_from === 0) state.chart.reset(p ? p.total_iterations : 0);
  state.chart.add(snap.points, p ? p.total_iterations : 0);

  if (snap.status === "done") {
    setImage(`/api/results/${snap.id}/image`);
    const a = $("download");
    a.href = `/api/results/${snap.id}/image?download=1`;
    a.setAttribute("download", `brushwork-${snap.id.slice(0, 8)}.png`);
    a.hidden = false;
  } else if (snap.preview_version > state.previewVersion) {
    state.previewVersion = snap.preview_version;
    setImage(`/api/jobs/${snap.id}/preview?v=${snap.preview_version}`);
  }
  show($("job-note"), snap.status === "done" ? snap.note : "");
  if (snap.status === "failed") show($("job-error"), snap.error || "The job failed.", "error");
  else if (snap.status === "cancelled") show($("job-error"), snap.error ? `Cancelled: ${snap.error}.` : "Cancelled.");
}

function setImage(src) {
  // Swap only once the frame has loaded, so the picture never blinks empty; a
  // frame that loads after a newer one was asked for (say, after the result) is dropped.
  const token = ++state.imageToken;
  const img = new Image();
  img.onload = () => {
    if (token !== state.imageToken) return;
    const view = $("preview");
    view.src = src;
    view.hidden = false;
    $("preview-empty").hidden = true;
  };
  img.src = src;
}

async function cancelJob(jobId) {
  try {
    await api(`/api/jobs/${jobId}/cancel`, { method: "POST", headers: HEADERS });
  } catch (e) {
    show($("job-error"), e.message, "error");
  }
  refreshQueue();
}

// ---------------------------------------------------------------- queue and gallery

async function refreshQueue() {
  let jobs = [];
  try { jobs = (await api("/api/jobs")).jobs; } catch { return; }
  const list = $("queue");
  if (!jobs.length) {
    list.replaceChildren(el("li", { class: "muted", text: "No jobs waiting." }));
    return;
  }
  list.replaceChildren(...jobs.map((j) => {
    const p = j.progress;
    const what = j.status === "running"
      ? `running${p ? ` · ${p.iteration}/${p.total_iterations}` : ""}`
      : `waiting · ${ordinal(j.position)} in line`;
    return el("li", { class: j.id === state.jobId ? "current" : "" },
      el("button", { type: "button", class: "link", text: `job ${j.id.slice(0, 8)}`, onclick: () => watch(j.id) }),
      el("span", { class: "muted", text: `${what} · ${j.device}` }),
      el("button", { type: "button", class: "small", text: "Cancel", onclick: () => cancelJob(j.id) }));
  }));
}

function summary(entry) {
  const parts = [];
  if (entry.preset) parts.push(`preset ${entry.preset}`);
  for (const [k, v] of Object.entries(entry.options || {})) {
    parts.push(`${k.replace(/_/g, " ")} ${Array.isArray(v) ? v.join(",") : v}`);
  }
  return parts.length ? parts.join(" · ") : "default settings";
}

async function refreshGallery() {
  let results = [];
  try { results = (await api("/api/results")).results; } catch { return; }
  $("gallery-count").textContent = results.length ? `${results.length} saved` : "";
  const box = $("gallery");
  if (!results.length) {
    box.replaceChildren(el("p", { class: "muted", text: "Finished paintings appear here." }));
    return;
  }
  box.replaceChildren(...results.map((r) => {
    const when = new Date(r.finished * 1000).toLocaleString();
    const rec = r.record || {};
    const details = el("details", {},
      el("summary", { text: "All parameters" }),
      el("pre", { text: JSON.stringify({ preset: r.preset, options: r.options, config: rec.config,
        resolved: rec.resolved, inputs: rec.inputs }, null, 2) }));
    return el("article", { class: "card", "data-id": r.id },
      el("a", { href: `/api/results/${r.id}/image`, target: "_blank", rel: "noopener", class: "thumb" },
        el("img", { src: `/api/results/${r.id}/thumb`, alt: `result ${r.id.slice(0, 8)}`, loading: "lazy" })),
      el("div", { class: "card-body" },
        el("div", { class: "card-title" },
          el("strong", { text: `${r.width}×${r.height}` }),
          el("span", { class: "muted", text: `${r.iterations_run} it · ${fmtSeconds(r.seconds)}` })),
        el("div", { class: "muted small-text", text: when }),
        el("div", { class: "small-text", text: summary(r) }),
        details,
        el("div", { class: "actions" },
          el("a", { class: "button small", href: `/api/results/${r.id}/image?download=1`,
            download: `brushwork-${r.id.slice(0, 8)}.png`, text: "Download" }),
          el("button", { type: "button", class: "small", text: "Re-run", onclick: () => rerun(r) }))));
  }));
}

async function rerun(entry) {
  applyPreset(entry.preset, entry.options || {});
  const msg = $("submit-msg");
  try {
    state.content = await api(`/api/uploads/${entry.content}`);
    const metas = await Promise.all(entry.styles.map((id) => api(`/api/uploads/${id}`)));
    state.styles = metas.slice(0, state.options.limits.max_styles);
    show(msg, `Loaded the settings and images of result ${entry.id.slice(0, 8)}. Press Start to run it again.`);
  } catch {
    show(msg, "Loaded the settings; an original image is no longer on the server, choose it again.", "error");
  }
  renderSlots();
  window.scrollTo({ top: 0, behavior: "smooth" });
}

// ---------------------------------------------------------------- start-up

async function main() {
  state.chart = new LossChart($("chart"));
  try {
    state.options = await api("/api/options");
  } catch (e) {
    show($("submit-msg"), `Cannot reach the studio server: ${e.message}`, "error");
    return;
  }
  $("version").textContent = `v${state.options.version}`;
  state.styles = [null];
  renderSlots();
  buildForm();
  $("cancel").addEventListener("click", () => state.jobId && cancelJob(state.jobId));
  refreshGallery();
  await refreshQueue();
  // Pick up a job that is already running, e.g. after reloading the page.
  const active = (await api("/api/jobs").catch(() => ({ jobs: [] }))).jobs;
  if (active.length) watch(active[0].id);
  setInterval(refreshQueue, 2000);
}

document.addEventListener("DOMContentLoaded", main);
