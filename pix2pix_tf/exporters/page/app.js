// The page of pix2pix_tf's `export --web`: runs model.onnx with onnxruntime-web (WebAssembly).
// It does what pix2pix_tf.translate does in Python: images in [-1, 1], reflect-padded at the
// bottom and right to the generator's size multiple, the output cropped back; editors add an
// instruction (tokenised as the model's WordVocabulary does) and a strength.

const $ = (id) => document.getElementById(id);
const MAX_FILE_BYTES = 64e6;   // larger files are refused before decoding
const MAX_PIXELS = 100e6;      // larger images are refused (decoding them would exhaust memory)
const UNDO_STEPS = 30;

let config = null;
let ort = null;
let session = null;
let busy = false;
const history = [];            // input canvas snapshots for Undo
let erasing = false;

function status(text, kind = "info") {
  $("status").textContent = text;
  $("status").dataset.kind = kind;
}

function fail(text) {
  status(`error: ${text}`, "error");
  $("run").disabled = session === null;
  return null;
}

function note(text) {
  $("note").textContent = text || "";
}

// ------------------------------------------------------------------------------ start-up
async function start() {
  if (location.protocol === "file:") return;  // index.html says why
  try {
    const response = await fetch("model.json", { cache: "no-cache" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    config = await response.json();
  } catch (error) {
    return fail(`cannot read model.json (${error.message}): this folder is not a complete page. `
                + "Export it again: python -m pix2pix_tf.export MODEL --web");
  }
  setUpPage();
  const base = new URL(config.runtime.url, location.href).href;
  try {
    ort = await import(base + "ort.wasm.min.mjs");
  } catch (error) {
    const remote = /^https?:/.test(config.runtime.url);
    return fail(`the onnxruntime-web runtime is missing or unreachable at ${base} `
                + `(${error.message}). ` + (remote
                  ? "This page loads it from the internet: connect, or export with "
                    + "--web-runtime download (or --web-runtime DIR) to keep it beside the page."
                  : "Export the page again with --web-runtime download or --web-runtime DIR."));
  }
  ort.env.wasm.wasmPaths = base;
  ort.env.wasm.numThreads = threads();
  let bytes;
  try {
    bytes = await download(config.model, config.model_bytes);
  } catch (error) {
    return fail(`the model ${config.model} is missing or unreadable (${error.message}). `
                + "Export the page again: python -m pix2pix_tf.export MODEL --web");
  }
  const started = performance.now();
  try {
    status("starting the model…");
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  } catch (error) {
    return fail(`the runtime could not start the model (${error.message || error}). `
                + "Is the runtime beside the page complete (ort/*.wasm)? Export the page again.");
  }
  try {  // one run at the drawing size, so the first real one does not pay for compilation
    status("warming up the model…");
    await session.run(feedsFor(new Float32Array(config.canvas_size[0] * config.canvas_size[1]
                                                * config.input_channels),
                               config.canvas_size[0], config.canvas_size[1],
                               config.instruction ? new Int32Array(config.instruction.sequence_length) : null));
  } catch (error) {
    return fail(`the model could not run (${error.message || error}).`);
  }
  const ms = Math.round(performance.now() - started);
  $("run").disabled = false;
  const isolation = crossOriginIsolated ? "" :
    " (this server does not send the cross-origin isolation headers: one thread)";
  status(`ready: model ${(bytes.byteLength / 1e6).toFixed(1)} MB started in ${ms} ms on `
         + `${ort.env.wasm.numThreads} thread(s)${isolation}. Draw, or open an image, then `
         + `${config.instruction ? "type an instruction and press Enter" : "press Translate"}.`);
}

function threads() {
  const asked = Number(new URLSearchParams(location.search).get("threads"));
  if (asked > 0) return crossOriginIsolated ? asked : 1;
  return crossOriginIsolated ? Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 4)) : 1;
}

async function download(url, expected) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const total = Number(response.headers.get("Content-Length")) || expected || 0;
  if (!response.body || !total) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks = [];
  let done = 0;
  for (;;) {
    const { done: finished, value } = await reader.read();
    if (finished) break;
    chunks.push(value);
    done += value.byteLength;
    status(`loading the model: ${(done / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`);
  }
  const bytes = new Uint8Array(done);
  let at = 0;
  for (const chunk of chunks) { bytes.set(chunk, at); at += chunk.byteLength; }
  return bytes;
}

// --------------------------------------------------------------------------- the page
function setUpPage() {
  const title = config.instruction ? "pix2pix_tf editor" : "pix2pix_tf translator";
  $("title").textContent = `${title}: ${config.title}`;
  document.title = `${config.title} (pix2pix_tf)`;
  const input = $("input");
  [input.width, input.height] = [config.canvas_size[1], config.canvas_size[0]];
  clearCanvas();
  if (config.instruction) {
    $("instruction-row").hidden = false;
    $("run").textContent = "Edit";
    const strength = $("strength");
    Object.assign(strength, { min: config.strength.min, max: config.strength.max,
                              step: config.strength.step, value: config.strength.default });
    const show = () => { $("strength-value").textContent = Number(strength.value).toFixed(2); };
    strength.addEventListener("input", show);
    show();
    $("instruction").addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); run(); }
    });
  }
  $("run").addEventListener("click", run);
  $("image-file").addEventListener("change", () => {
    const file = $("image-file").files[0];
    if (file) openImage(file);
  });
  const pane = $("input-pane");
  pane.addEventListener("dragover", (event) => { event.preventDefault(); pane.classList.add("drop"); });
  pane.addEventListener("dragleave", () => pane.classList.remove("drop"));
  pane.addEventListener("drop", (event) => {
    event.preventDefault();
    pane.classList.remove("drop");
    const file = event.dataTransfer.files[0];
    if (file) openImage(file);
  });
  setUpDrawing(input);
}

function clearCanvas() {
  const input = $("input");
  const context = input.getContext("2d");
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, input.width, input.height);
}

function remember() {
  const input = $("input");
  history.push({ width: input.width, height: input.height,
                 data: input.getContext("2d").getImageData(0, 0, input.width, input.height) });
  if (history.length > UNDO_STEPS) history.shift();
}

function setUpDrawing(canvas) {
  const context = canvas.getContext("2d");
  let last = null;
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width,
            (event.clientY - box.top) * canvas.height / box.height];
  };
  const stroke = (from, to) => {
    context.strokeStyle = erasing ? "#ffffff" : $("brush-color").value;
    context.lineWidth = Number($("brush-size").value) * (erasing ? 3 : 1);
    context.lineCap = context.lineJoin = "round";
    context.beginPath();
    context.moveTo(...from);
    context.lineTo(...to);
    context.stroke();
  };
  canvas.addEventListener("pointerdown", (event) => {
    remember();
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    stroke(last, last);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = point(event);
    stroke(last, next);
    last = next;
  });
  const end = () => { last = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  $("eraser").addEventListener("click", () => {
    erasing = !erasing;
    $("eraser").setAttribute("aria-pressed", String(erasing));
  });
  $("clear").addEventListener("click", () => {
    remember();
    [canvas.width, canvas.height] = [config.canvas_size[1], config.canvas_size[0]];
    clearCanvas();
    note("");
  });
  $("undo").addEventListener("click", () => {
    const previous = history.pop();
    if (!previous) return;
    [canvas.width, canvas.height] = [previous.width, previous.height];
    context.putImageData(previous.data, 0, 0);
  });
}

// An image's size from its header (PNG, JPEG, GIF, BMP, WebP), before decoding it; null when
// the header is not one of these (the browser's decoder then decides).
function headerSize(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ascii = (at, n) => String.fromCharCode(...bytes.subarray(at, at + n));
  if (bytes.length >= 24 && ascii(1, 3) === "PNG") return [view.getUint32(16), view.getUint32(20)];
  if (bytes.length >= 10 && ascii(0, 3) === "GIF") return [view.getUint16(6, true), view.getUint16(8, true)];
  if (bytes.length >= 26 && ascii(0, 2) === "BM") return [view.getInt32(18, true), Math.abs(view.getInt32(22, true))];
  if (bytes.length >= 30 && ascii(0, 4) === "RIFF" && ascii(8, 4) === "WEBP") {
    const kind = ascii(12, 4);
    if (kind === "VP8X") return [1 + (view.getUint32(24, true) & 0xffffff), 1 + (view.getUint32(27, true) & 0xffffff)];
    if (kind === "VP8L") { const b = view.getUint32(21, true); return [1 + (b & 0x3fff), 1 + ((b >> 14) & 0x3fff)]; }
    if (kind === "VP8 ") return [view.getUint16(26, true) & 0x3fff, view.getUint16(28, true) & 0x3fff];
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    let at = 2;
    while (at + 9 < bytes.length) {
      if (bytes[at] !== 0xff) return null;
      const marker = bytes[at + 1];
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return [view.getUint16(at + 7), view.getUint16(at + 5)];
      }
      at += 2 + view.getUint16(at + 2);
    }
  }
  return null;
}

async function openImage(file) {
  if (file.size > MAX_FILE_BYTES) {
    return fail(`${file.name} is too large (${(file.size / 1e6).toFixed(0)} MB; the page opens `
                + `files up to ${MAX_FILE_BYTES / 1e6} MB). Shrink it first.`);
  }
  const declared = headerSize(new Uint8Array(await file.slice(0, 65536).arrayBuffer()));
  if (declared && declared[0] * declared[1] > MAX_PIXELS) {
    return fail(`${file.name} is too large (${declared[0]}×${declared[1]} pixels; the page `
                + `opens images up to ${MAX_PIXELS / 1e6} megapixels). Shrink it first.`);
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { colorSpaceConversion: "none",
                                             premultiplyAlpha: "none" });
  } catch (error) {
    return fail(`${file.name} is not an image this browser can read (PNG, JPEG, WebP, GIF or `
                + "BMP).");
  }
  const { width, height } = bitmap;
  if (width * height > MAX_PIXELS) {
    bitmap.close();
    return fail(`${file.name} is too large (${width}×${height} pixels; the page opens images `
                + `up to ${MAX_PIXELS / 1e6} megapixels). Shrink it first.`);
  }
  const scale = Math.min(1, config.max_side / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  remember();
  const input = $("input");
  [input.width, input.height] = [w, h];
  const context = input.getContext("2d");
  context.imageSmoothingQuality = "high";
  context.drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  note(scale < 1 ? `${file.name} was downscaled from ${width}×${height} to ${w}×${h}: the page `
                   + `translates at most ${config.max_side} pixels a side.`
                 : `${file.name}: ${width}×${height}`);
  status(`opened ${file.name}. ${session ? "Ready." : ""}`);
  if (session && !config.instruction) run();
}

// -------------------------------------------------------------------------- tokenising
// Python's WordVocabulary: TextVectorization's 'lower_and_strip_punctuation', then splitting
// on ASCII whitespace (as tf.strings.split does); unknown words -> `unknown`, then padding.
function words(text) {
  const punctuation = new Set(config.instruction.punctuation);
  const stripped = Array.from(text.toLowerCase()).filter((c) => !punctuation.has(c)).join("");
  return stripped.split(/[ \t\n\r\v\f]+/).filter((w) => w.length > 0);
}

function pythonRepr(text) {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const c of text) {
    const code = c.codePointAt(0);
    if (c === "\\" || c === quote) out += "\\" + c;
    else if (c === "\n") out += "\\n";
    else if (c === "\r") out += "\\r";
    else if (c === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += "\\x" + code.toString(16).padStart(2, "0");
    else out += c;
  }
  return out + quote;
}

// Token ids for one instruction, or throws Error with Python's message.
function tokenize(text) {
  const spec = config.instruction;
  const found = words(text);
  if (found.length === 0) {
    throw new Error(`instruction 0 is empty (${pythonRepr(text)}): say what to do, e.g. `
                    + '"make it black and white".');
  }
  if (found.length > spec.sequence_length) {
    throw new Error(`instruction 0 has ${found.length} words, more than this model's sequence `
                    + `length of ${spec.sequence_length}: ${pythonRepr(Array.from(text).slice(0, 80).join(""))}. `
                    + "Shorten it, or train a model with a longer --sequence-length.");
  }
  const index = tokenize.index || (tokenize.index = new Map(spec.words.map((w, i) => [w, i + 2])));
  const ids = new Int32Array(spec.sequence_length).fill(spec.pad);
  found.forEach((w, i) => { ids[i] = index.has(w) ? index.get(w) : spec.unknown; });
  if (!spec.uses_text) ids.fill(0);  // the no-text baseline never reads them
  return ids;
}
window.pix2pixTokenize = (text) => {  // for tests: Python's ids, or Python's message
  try { return Array.from(tokenize(text)); } catch (error) { return error.message; }
};

// ------------------------------------------------------------------------------ running
function reflect(i, n) {  // numpy's 'reflect' padding (edge when n == 1)
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = i % period;
  return m < n ? m : period - m;
}

function feedsFor(x, H, W, tokens) {
  const feeds = { [config.input]: new ort.Tensor("float32", x, [1, H, W, config.input_channels]) };
  if (tokens) {
    feeds[config.instruction.input] = new ort.Tensor("int32", tokens, [1, tokens.length]);
  }
  return feeds;
}

async function run() {
  if (busy) return;
  if (!session) return fail("the model is not loaded yet.");
  let tokens = null;
  if (config.instruction) {
    try {
      tokens = tokenize($("instruction").value);
    } catch (error) {
      return fail(error.message);
    }
  }
  busy = true;
  $("run").disabled = true;
  try {
    status("running…");
    await new Promise((resolve) => setTimeout(resolve, 0));  // let the status paint
    const started = performance.now();
    const input = $("input");
    const [w, h] = [input.width, input.height];
    const rgba = input.getContext("2d").getImageData(0, 0, w, h).data;
    const multiple = config.size_multiple;
    const [H, W] = [Math.ceil(h / multiple) * multiple, Math.ceil(w / multiple) * multiple];
    const C = config.input_channels;
    const x = new Float32Array(H * W * C);
    for (let y = 0; y < H; y++) {
      const row = reflect(y, h) * w;
      for (let col = 0; col < W; col++) {
        const from = (row + reflect(col, w)) * 4;
        const to = (y * W + col) * C;
        for (let c = 0; c < C; c++) x[to + c] = rgba[from + c] / 255 * 2 - 1;
      }
    }
    const results = await session.run(feedsFor(x, H, W, tokens));
    const y = results[session.outputNames[0]].data;
    const O = config.output_channels;
    const strength = config.instruction ? Number($("strength").value) : 1;
    const output = $("output");
    [output.width, output.height] = [w, h];
    const image = output.getContext("2d").createImageData(w, h);
    const px = image.data;
    for (let row = 0; row < h; row++) {
      for (let col = 0; col < w; col++) {
        const from = (row * W + col) * O;
        const to = (row * w + col) * 4;
        for (let c = 0; c < 4; c++) {
          let v;
          if (c === 3) v = O === 4 ? y[from + 3] : 1;
          else v = y[from + (O === 1 ? 0 : c)];
          if (strength !== 1 && c < 3) {
            const source = rgba[to + c] / 255 * 2 - 1;
            v = Math.min(1, Math.max(-1, source + strength * (v - source)));
          }
          px[to + c] = Math.round(Math.min(1, Math.max(0, (v + 1) / 2)) * 255);
        }
      }
    }
    output.getContext("2d").putImageData(image, 0, 0);
    const ms = Math.round(performance.now() - started);
    const blob = await new Promise((resolve) => output.toBlob(resolve, "image/png"));
    const link = $("download");
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    link.hidden = false;
    const padded = H !== h || W !== w ? ` (padded to ${W}×${H})` : "";
    status(`${w}×${h}${padded} ${config.instruction ? "edited" : "translated"}: done in ${ms} ms`,
           "done");
  } catch (error) {
    fail(`the model could not run on this image (${error.message || error}).`);
  } finally {
    busy = false;
    $("run").disabled = false;
  }
}

start();
