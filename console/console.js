// videogen console: one page, no build step, no dependencies. It talks to the REST API with the
// caller's x-api-key: GET /models, POST /generations, GET /generations[/{id}], DELETE /generations/{id}.
"use strict";

const MAX_INLINE_IMAGE_BYTES = 256 * 1024; // the API's cap on a data-URL image (decoded bytes)
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];
const TERMINAL = new Set(["completed", "failed", "timed_out", "cancelled"]);
const POLL_FIRST_MS = 1000;
const POLL_MAX_MS = 10000;
const KEY_STORE = "videogen.apiKey"; // sessionStorage: this tab only
const URL_STORE = "videogen.apiUrl"; // localStorage: not a secret

const GALLERY_PAGE = 9;

const $ = (id) => document.getElementById(id);
const state = {
  models: [], current: null, pollTimer: null, tickTimer: null, images: {},
  gallery: { next: null, count: 0 },
};

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || [];
  }
}

function defaultApiUrl() {
  // Served by the local stack (http://127.0.0.1:3000/console/): the API is the same origin.
  return location.protocol.startsWith("http") ? `${location.origin}/v1` : "";
}

function settings() {
  return { url: $("api-url").value.trim().replace(/\/+$/, ""), key: $("api-key").value.trim() };
}

function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function api(method, path, body, headers = {}) {
  const { url, key } = settings();
  const init = { method, headers: { "x-api-key": key, ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url + path, init);
  } catch (err) {
    throw new ApiError(0, "unreachable",
      `cannot reach ${url} (${err.message}); is the URL right, and does the API allow this origin (CORS, AllowedOrigin)?`);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const error = (data && data.error) || {};
    const message = error.message || (data && data.message) || text || response.statusText;
    throw new ApiError(response.status, error.code || `http_${response.status}`, message, error.details);
  }
  return data;
}

// ---- errors ---------------------------------------------------------------------------------
function showError(err) {
  const box = $("error");
  if (!err) { box.hidden = true; box.textContent = ""; return; }
  let text = err instanceof ApiError ? `${err.code}: ${err.message}` : String(err.message || err);
  if (err instanceof ApiError && err.status) text = `HTTP ${err.status} · ${text}`;
  for (const d of (err.details || [])) {
    text += "\n  · " + (d.field ? `${d.field}: ${d.message}` : JSON.stringify(d));
  }
  box.textContent = text;
  box.hidden = false;
}

// ---- connecting and the model form ----------------------------------------------------------
async function connect(event) {
  if (event) event.preventDefault();
  showError(null);
  const { url, key } = settings();
  localStorage.setItem(URL_STORE, url);
  sessionStorage.setItem(KEY_STORE, key);
  $("connect").disabled = true;
  try {
    const data = await api("GET", "/models");
    state.models = data.models || [];
    const select = $("model");
    select.replaceChildren(...state.models.map((m) => new Option(`${m.id} (${m.mode})`, m.id)));
    const preferred = state.models.find((m) => m.id === localStorage.getItem("videogen.model"));
    if (preferred) select.value = preferred.id;
    renderFields();
    $("connection").textContent = `connected to ${url} · ${state.models.length} models`;
    $("create").hidden = false;
    $("recent").hidden = false;
    $("gallery").hidden = false;
    await Promise.all([refreshRecent(), loadGallery(true), refreshBatches()]);
  } catch (err) {
    $("connection").textContent = "not connected";
    showError(err);
  } finally {
    $("connect").disabled = false;
  }
}

function currentModel() {
  return state.models.find((m) => m.id === $("model").value);
}

function fieldInput(field) {
  const id = `field-${field.name}`;
  if (field.enum && field.enum.length) {
    const select = document.createElement("select");
    if (!field.required) select.add(new Option("(model default)", ""));
    for (const value of field.enum) select.add(new Option(String(value), JSON.stringify(value)));
    select.id = id;
    return select;
  }
  if (field.type === "boolean") {
    const select = document.createElement("select");
    select.id = id;
    select.add(new Option("(model default)", ""));
    select.add(new Option("yes", "true"));
    select.add(new Option("no", "false"));
    return select;
  }
  if (field.type === "integer" || field.type === "number") {
    const input = document.createElement("input");
    input.type = "number";
    input.id = id;
    input.step = field.type === "integer" ? "1" : "any";
    if (field.minimum !== null && field.minimum !== undefined) input.min = field.minimum;
    if (field.maximum !== null && field.maximum !== undefined) input.max = field.maximum;
    if (input.min !== "" || input.max !== "") input.placeholder = `${input.min || "…"} to ${input.max || "…"}`;
    return input;
  }
  if (field.name.endsWith("prompt")) {
    const area = document.createElement("textarea");
    area.id = id;
    if (field.max_length) area.maxLength = field.max_length;
    return area;
  }
  const input = document.createElement("input");
  input.id = id;
  input.type = "text";
  if (field.type === "url") input.placeholder = "https://… (or choose a file below)";
  if (field.type === "array") input.placeholder = '["https://…", …] (JSON)';
  if (field.type === "object" || field.type === "any") input.placeholder = "JSON";
  if (field.max_length) input.maxLength = field.max_length;
  return input;
}

function renderFields() {
  const model = currentModel();
  const box = $("fields");
  box.replaceChildren();
  state.images = {};
  if (!model) return;
  localStorage.setItem("videogen.model", model.id);
  $("model-info").textContent =
    `${model.description} Typically ~${formatDuration(model.typical_seconds)}.`;
  for (const field of model.fields) {
    const label = document.createElement("label");
    label.title = field.description || "";
    label.append(field.name + (field.required ? " *" : ""));
    const input = fieldInput(field);
    input.required = !!field.required && field.type !== "url";
    input.dataset.field = field.name;
    label.append(input);
    if (field.name.endsWith("prompt") || field.type === "url") label.classList.add("wide");
    if (field.type === "url" && /image|frame/.test(field.name)) {
      // a local image becomes a data URL; video and audio fields take https URLs only
      const file = document.createElement("input");
      file.type = "file";
      file.accept = IMAGE_TYPES.join(",");
      file.id = `file-${field.name}`;
      file.addEventListener("change", () => chooseImage(field.name, file, input));
      const hint = document.createElement("span");
      hint.className = "hint muted small";
      hint.id = `hint-${field.name}`;
      label.append(file, hint);
    }
    box.append(label);
  }
}

function readFieldValues(model) {
  const body = { model: model.id };
  for (const field of model.fields) {
    const input = $(`field-${field.name}`);
    if (field.type === "url") {
      const value = state.images[field.name] || input.value.trim();
      if (value) body[field.name] = value;
      else if (field.required) throw new Error(`${field.name} is required: give an https URL or choose a file`);
      continue;
    }
    const raw = input.value.trim();
    if (raw === "") continue;
    if (input.tagName === "SELECT") body[field.name] = JSON.parse(raw);
    else if (field.type === "integer") body[field.name] = parseInt(raw, 10);
    else if (field.type === "number") body[field.name] = parseFloat(raw);
    else if (["array", "object", "any"].includes(field.type)) {
      try {
        body[field.name] = JSON.parse(raw); // lists and objects are written as JSON
      } catch {
        throw new Error(`${field.name} must be JSON (a list like ["https://…"] or an object)`);
      }
    } else body[field.name] = raw;
  }
  return body;
}

// ---- images: a local file becomes a data URL of at most 256 KiB ------------------------------
function readAsDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

function canvasBlob(canvas, type, quality) {
  return new Promise((resolve) => canvas.toBlob(resolve, type, quality));
}

async function shrinkImage(file) {
  // Downscale on a canvas to JPEG until the file fits the API's inline cap.
  const bitmap = await createImageBitmap(file);
  let scale = Math.min(1, 1920 / Math.max(bitmap.width, bitmap.height));
  for (let attempt = 0; attempt < 8; attempt++) {
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    for (const quality of [0.9, 0.8, 0.7]) {
      const blob = await canvasBlob(canvas, "image/jpeg", quality);
      if (blob && blob.size <= MAX_INLINE_IMAGE_BYTES) {
        return { blob, width: canvas.width, height: canvas.height, original: [bitmap.width, bitmap.height] };
      }
    }
    scale *= 0.75;
  }
  return null;
}

async function chooseImage(name, fileInput, urlInput) {
  const hint = $(`hint-${name}`);
  const file = fileInput.files[0];
  delete state.images[name];
  hint.textContent = "";
  document.querySelectorAll(`img[data-preview="${name}"]`).forEach((img) => img.remove());
  if (!file) return;
  showError(null);
  try {
    if (!IMAGE_TYPES.includes(file.type)) {
      throw new Error(`${file.name}: only PNG, JPEG, WebP or GIF images can be sent (this is ${file.type || "unknown"})`);
    }
    let dataUrl;
    if (file.size <= MAX_INLINE_IMAGE_BYTES) {
      dataUrl = await readAsDataUrl(file);
      hint.textContent = `${file.name}, ${formatBytes(file.size)}, sent inline`;
    } else {
      const small = await shrinkImage(file).catch(() => null);
      if (!small) {
        throw new Error(`${file.name} is ${formatBytes(file.size)} and could not be made smaller than ` +
          `${formatBytes(MAX_INLINE_IMAGE_BYTES)}, the API's limit for an inline image; give an https URL instead`);
      }
      dataUrl = await readAsDataUrl(small.blob);
      hint.textContent = `${file.name}, ${formatBytes(file.size)} ${small.original.join("×")}: over the API's ` +
        `${formatBytes(MAX_INLINE_IMAGE_BYTES)} limit, downscaled to ${small.width}×${small.height} JPEG, ` +
        `${formatBytes(small.blob.size)}`;
    }
    state.images[name] = dataUrl;
    urlInput.value = "";
    urlInput.placeholder = `(the chosen file: ${file.name})`;
    const img = document.createElement("img");
    img.className = "preview";
    img.dataset.preview = name;
    img.src = dataUrl;
    img.alt = file.name;
    hint.after(img);
  } catch (err) {
    fileInput.value = "";
    showError(err);
  }
}

// ---- submitting and watching ----------------------------------------------------------------
async function submit(event) {
  event.preventDefault();
  showError(null);
  const model = currentModel();
  if (!model) return;
  let body;
  try {
    body = readFieldValues(model);
  } catch (err) {
    showError(err);
    return;
  }
  $("submit").disabled = true;
  try {
    const generation = await api("POST", "/generations", body, { "Idempotency-Key": newIdempotencyKey() });
    watch(generation);
    refreshRecent().catch(() => {});
  } catch (err) {
    showError(err);
  } finally {
    $("submit").disabled = false;
  }
}

function watch(generation) {
  clearTimeout(state.pollTimer);
  clearInterval(state.tickTimer);
  state.current = generation;
  state.pollDelay = POLL_FIRST_MS;
  $("current").hidden = false;
  $("current-video").replaceChildren();
  renderCurrent();
  state.tickTimer = setInterval(renderElapsed, 1000);
  schedulePoll();
}

function schedulePoll() {
  if (!state.current || TERMINAL.has(state.current.status)) return;
  state.pollTimer = setTimeout(poll, state.pollDelay);
}

async function poll() {
  const id = state.current.id;
  try {
    const generation = await api("GET", `/generations/${encodeURIComponent(id)}`);
    if (!state.current || state.current.id !== id) return; // another one is being watched
    const changed = generation.status !== state.current.status;
    state.current = generation;
    // back off while nothing changes, look again soon after a change
    state.pollDelay = changed ? POLL_FIRST_MS : Math.min(POLL_MAX_MS, Math.round(state.pollDelay * 1.5));
    renderCurrent();
    if (TERMINAL.has(generation.status)) refreshRecent().catch(() => {});
    if (changed && generation.status === "completed") loadGallery(true).catch(() => {});
  } catch (err) {
    showError(err);
    state.pollDelay = Math.min(POLL_MAX_MS, state.pollDelay * 2);
  }
  schedulePoll();
}

function renderCurrent() {
  const g = state.current;
  $("current-id").textContent = g.id;
  const badge = $("current-status");
  badge.textContent = g.status;
  badge.className = `status ${g.status}`;
  badge.dataset.status = g.status;
  $("cancel").hidden = TERMINAL.has(g.status);
  $("current-message").textContent = g.error ? `${g.error.code}: ${g.error.message}` : `${g.model} · ${promptOf(g)}`;
  $("current-queue").textContent = queueText(g);
  renderElapsed();
  if (TERMINAL.has(g.status)) clearInterval(state.tickTimer);
  if (g.status === "completed" && g.video && g.video.url && !$("current-video").querySelector("video")) {
    $("current-video").append(player(g, true));
  }
}

// While pending in the submit queue: the place and the estimated start (docs/api.md).
function queueText(g) {
  if (g.status !== "pending" || g.queue_position === null || g.queue_position === undefined) return "";
  const place = g.queue_position === 0 ? "next in the queue" : `${g.queue_position} ahead in the queue`;
  const start = g.estimated_start ? Date.parse(g.estimated_start) : NaN;
  if (Number.isNaN(start)) return place;
  const wait = Math.max(0, Math.round((start - Date.now()) / 1000));
  return `${place} · starts in ~${formatDuration(wait)}`;
}

function renderElapsed() {
  const g = state.current;
  if (!g) return;
  const start = Date.parse(g.created_at);
  const end = TERMINAL.has(g.status) ? Date.parse(g.completed_at || g.updated_at) : Date.now();
  const seconds = Math.max(0, Math.round((end - start) / 1000));
  const model = state.models.find((m) => m.id === g.model);
  const typical = model && !TERMINAL.has(g.status) ? ` (typically ~${formatDuration(model.typical_seconds)})` : "";
  $("current-elapsed").textContent = `${TERMINAL.has(g.status) ? "took" : "elapsed"} ${formatDuration(seconds)}${typical}`;
}

async function cancelCurrent() {
  if (!state.current) return;
  try {
    state.current = await api("DELETE", `/generations/${encodeURIComponent(state.current.id)}`);
    renderCurrent();
    refreshRecent().catch(() => {});
  } catch (err) {
    showError(err);
  }
}

// ---- the gallery: the key's finished videos, a page at a time --------------------------------
async function loadGallery(reset) {
  const g = state.gallery;
  if (reset) { g.next = null; g.count = 0; }
  let path = `/generations?status=completed&limit=${GALLERY_PAGE}`;
  if (!reset && g.next) path += `&next_token=${encodeURIComponent(g.next)}`;
  const page = await api("GET", path);
  const items = (page.items || []).filter((item) => item.video && item.video.url);
  const cards = items.map((item) => {
    const figure = document.createElement("figure");
    figure.dataset.id = item.id;
    const caption = document.createElement("figcaption");
    const link = document.createElement("a");
    link.href = item.video.url; // presigned: opens or saves the MP4 itself
    link.textContent = "download";
    link.rel = "noopener noreferrer";
    link.target = "_blank";
    caption.append(`${promptOf(item)} · ${item.model} · ${new Date(item.created_at).toLocaleString()} · `, link);
    figure.append(player(item, false), caption);
    return figure;
  });
  const grid = $("gallery-grid");
  if (reset) grid.replaceChildren(...cards); else grid.append(...cards);
  g.count += cards.length;
  g.next = page.next_token || null;
  $("gallery-more").hidden = !g.next;
  $("gallery-count").textContent = g.count ? `${g.count} shown` : "no finished videos yet";
}

// ---- the list -------------------------------------------------------------------------------
async function refreshRecent() {
  const page = await api("GET", "/generations?limit=12");
  const items = page.items || [];
  const list = $("recent-list");
  list.replaceChildren(...items.map((g) => {
    const li = document.createElement("li");
    li.dataset.id = g.id;
    const head = document.createElement("div");
    const badge = document.createElement("span");
    badge.className = `status ${g.status}`;
    badge.textContent = g.status;
    const when = new Date(g.created_at).toLocaleString();
    head.append(badge, ` ${g.model} · ${when}`);
    const text = document.createElement("div");
    text.className = "muted";
    text.textContent = g.error ? `${g.error.code}: ${g.error.message}` : promptOf(g);
    li.append(head, text);
    if (g.status === "completed" && g.video && g.video.url) li.append(player(g, false));
    else if (!TERMINAL.has(g.status)) {
      const follow = document.createElement("button");
      follow.type = "button";
      follow.className = "secondary";
      follow.textContent = "Watch";
      follow.addEventListener("click", () => watch(g));
      li.append(follow);
    }
    return li;
  }));
  if (!items.length) list.replaceChildren(Object.assign(document.createElement("li"), { textContent: "none yet" }));
}

// ---- batches -------------------------------------------------------------------------------
const BATCH_ENDED = new Set(["completed", "failed", "cancelled"]);
let batchTimer = null;

async function refreshBatches() {
  clearTimeout(batchTimer);
  let page;
  try {
    page = await api("GET", "/batches?limit=10");
  } catch (err) {
    if (err.status === 501) { $("batches").hidden = true; return; } // a stack without batches
    throw err;
  }
  $("batches").hidden = false;
  const items = page.items || [];
  const list = $("batch-list");
  list.replaceChildren(...items.map((b) => {
    const li = document.createElement("li");
    li.dataset.id = b.id;
    const head = document.createElement("div");
    const badge = document.createElement("span");
    badge.className = `status ${b.status}`;
    badge.textContent = b.status;
    const when = new Date(b.created_at).toLocaleString();
    head.append(badge, ` ${b.id} · ${b.valid} lines`, b.invalid ? ` (+${b.invalid} invalid)` : "", ` · ${when}`);
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = b.progress || 0;
    const counts = document.createElement("div");
    counts.className = "muted counts";
    const shown = Object.entries(b.counts || {}).map(([k, n]) => `${k} ${n}`).join(" · ");
    counts.textContent = `${Math.round((b.progress || 0) * 1000) / 10}% · ${shown || "counting"} · ${b.credits_used} credits`;
    li.append(head, bar, counts);
    if (b.error) li.append(Object.assign(document.createElement("div"), { className: "muted", textContent: b.error }));
    if (!BATCH_ENDED.has(b.status) && b.status !== "cancelling") {
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.className = "secondary";
      cancel.textContent = "Cancel";
      cancel.addEventListener("click", () => api("DELETE", `/batches/${encodeURIComponent(b.id)}`)
        .then(refreshBatches).catch(showError));
      li.append(cancel);
    }
    return li;
  }));
  if (!items.length) list.replaceChildren(Object.assign(document.createElement("li"), { textContent: "none yet" }));
  if (items.some((b) => !BATCH_ENDED.has(b.status))) {
    batchTimer = setTimeout(() => refreshBatches().catch(showError), 3000);
  }
}

function player(generation, main) {
  const video = document.createElement("video");
  video.controls = true;
  video.preload = main ? "auto" : "metadata";
  video.playsInline = true;
  video.src = generation.video.url; // a short-lived presigned link to our own bucket
  video.dataset.id = generation.id;
  if (main) video.id = "current-player";
  return video;
}

// ---- formatting -----------------------------------------------------------------------------
function promptOf(g) {
  const prompt = (g.request && g.request.prompt) || "";
  return prompt.length > 140 ? prompt.slice(0, 139) + "…" : prompt || "(no prompt)";
}

function formatDuration(seconds) {
  seconds = Math.round(seconds || 0);
  const m = Math.floor(seconds / 60);
  return `${m}:${String(seconds % 60).padStart(2, "0")}`;
}

function formatBytes(n) {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`;
}

// ---- start ----------------------------------------------------------------------------------
async function deployedApiUrl() {
  // Deployed with the stack (S3 + CloudFront), `make deploy-console` writes config.json with the
  // stack's ApiUrl next to the page; elsewhere there is none and the user types the URL.
  if (!location.protocol.startsWith("http")) return "";
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    const config = response.ok ? await response.json() : {};
    return typeof config.apiUrl === "string" ? config.apiUrl : "";
  } catch {
    return "";
  }
}

function init() {
  const stored = localStorage.getItem(URL_STORE);
  $("api-url").value = stored || defaultApiUrl();
  if (!stored) {
    const fallback = $("api-url").value;
    deployedApiUrl().then((url) => {
      // unless the user has typed another URL meanwhile
      if (url && $("api-url").value === fallback) $("api-url").value = url;
    });
  }
  $("api-key").value = sessionStorage.getItem(KEY_STORE) || "";
  $("connect-form").addEventListener("submit", connect);
  $("model").addEventListener("change", renderFields);
  $("generate-form").addEventListener("submit", submit);
  $("cancel").addEventListener("click", cancelCurrent);
  $("refresh").addEventListener("click", () => refreshRecent().catch(showError));
  $("batches-refresh").addEventListener("click", () => refreshBatches().catch(showError));
  $("gallery-reload").addEventListener("click", () => loadGallery(true).catch(showError));
  $("gallery-more").addEventListener("click", () => loadGallery(false).catch(showError));
  if ($("api-url").value && $("api-key").value) connect();
}

init();
