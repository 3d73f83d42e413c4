// homl-edge web page, LiteRT.js flavour: runs the very .tflite file a phone runs, in WebAssembly (XNNPACK).
// The test suite drives `window.homl` (ready, predict, time, backend); people draw on the pad or click a sample.
import { loadLiteRt, loadAndCompile, Tensor, supportsFeature } from './litert/litert.js';
import { medianMs, setupPad } from './pad.js';

const config = CONFIG_PLACEHOLDER;
const [H, W, C] = config.inputShape;
const $ = (id) => document.getElementById(id);
function setStatus(text) { $('status').textContent = text; }

let model = null;
let wasmFiles = [];
let build = '';

const ARRAYS = { float32: Float32Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array, int32: Int32Array };

async function load() {
  // the relaxed-SIMD build where the browser has it, the compat build elsewhere (the backend() string says which)
  const relaxed = await supportsFeature('relaxedSimd');
  const name = relaxed ? 'litert_wasm_internal' : 'litert_wasm_compat_internal';
  build = relaxed ? 'relaxed-simd' : 'compat';
  wasmFiles = [`./litert/${name}.js`, `./litert/${name}.wasm`];
  await loadLiteRt(`./litert/${name}.js`);
  model = await loadAndCompile('./model.tflite', { accelerator: 'wasm' });
  await runOne(new Array(H * W * C).fill(0));  // warm up
  setStatus(`model ready (LiteRT.js, ${relaxed ? 'relaxed SIMD' : 'compat'} Wasm, ` +
    `${navigator.onLine ? 'online' : 'offline'})`);
}

// one sample (a flat array of H*W*C floats) through the model; int8/uint8 input and output are (de)quantized with
// the file's own scale and zero point, as LiteRT's Python interpreter is driven on the desktop
async function runOne(flat) {
  const inp = config.input;
  const Typed = ARRAYS[inp.dtype];
  let data;
  if (inp.dtype === 'float32') {
    data = Float32Array.from(flat);
  } else {
    const [lo, hi] = inp.dtype === 'int8' ? [-128, 127] : inp.dtype === 'uint8' ? [0, 255] : [-32768, 32767];
    data = Typed.from(flat, (v) => Math.min(hi, Math.max(lo, Math.round(v / inp.scale + inp.zeroPoint))));
  }
  const tensor = new Tensor(data, [1, H, W, C]);
  let results;
  try {
    results = await model.run([tensor]);
  } finally {
    tensor.delete();
  }
  const out = results[0];
  const raw = Array.from(out.toTypedArray());
  results.forEach((t) => t.delete());
  const o = config.output;
  return o.dtype === 'float32' ? raw : raw.map((v) => (v - o.zeroPoint) * o.scale);
}

async function predict(samples) {
  await ready;
  const rows = [];
  for (const s of samples) rows.push(await runOne(s));
  return rows;
}

// median milliseconds of one prediction (pad.js)
async function time(samples, runs = 200) {
  await ready;
  return medianMs(runOne, samples, runs);
}

// the drawing pad, the sample buttons and the result bars: pad.js, shared with the TF.js page
setupPad(config, predict);

$('footer').textContent = `homl-edge export · ${config.file} (${config.bytes.toLocaleString()} bytes, ` +
  `${config.input.dtype} input) · LiteRT.js ${config.litertjs}`;

const ready = load().catch((e) => { setStatus(`could not load the model: ${e.message}`); throw e; });
window.homl = { ready, predict, time, config, backend: () => `litert-wasm-${build}`, source: () => 'server' };

// offline: the service worker caches the page and the model at install; the Wasm build this browser picked (one of
// two, 9 MB each) is cached once known, by a message to the worker
window.homl.offlineReady = Promise.resolve(false);
try {  // a sandboxed page (inside Jupyter: an opaque origin) may not even read navigator.serviceWorker
  if ('serviceWorker' in navigator) {
    window.homl.offlineReady = navigator.serviceWorker.register('sw.js')
      .then(() => navigator.serviceWorker.ready)
      .then(async (registration) => {
        await ready;
        await new Promise((resolve, reject) => {
          const channel = new MessageChannel();
          channel.port1.onmessage = (e) => (e.data === 'cached' ? resolve() : reject(new Error(e.data)));
          registration.active.postMessage({ cache: wasmFiles }, [channel.port2]);
        });
        return true;
      })
      .catch((e) => { console.warn('no offline support:', e); return false; });
  }
} catch (e) { console.warn('no offline support in a sandboxed page:', e.message); }
