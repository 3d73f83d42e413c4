// homl-edge web page: loads the exported Layers model with TensorFlow.js and predicts in the browser.
// The test suite drives `window.homl` (ready, predict, backend); people draw on the pad or click a sample.
/* global tf */
import { medianMs, setupPad } from './pad.js';

(function () {
  'use strict';
  const config = CONFIG_PLACEHOLDER;
  const [H, W, C] = config.inputShape;
  const $ = (id) => document.getElementById(id);
  let model = null;

  function setStatus(text) { $('status').textContent = text; }

  const STORE = `indexeddb://homl-edge-${config.modelKey}`;
  let source = 'server';

  async function loadModel() {
    model = null;
    if (config.trainable) {
      try {  // a model fine-tuned in this browser earlier wins over the exported one
        model = await tf.loadLayersModel(STORE);
        source = 'indexeddb';
      } catch (e) { model = null; }
    }
    // './model.json', not 'model.json': TF.js takes the weights' URL prefix from it ('/' for a bare name)
    // a SavedModel exports as a graph model (inference only); a Keras model as a layers model
    const load = config.format === 'graph' ? tf.loadGraphModel : tf.loadLayersModel;
    if (!model) { model = await load('./model.json'); source = 'server'; }
    const x = tf.zeros([1, H, W, C]);
    model.predict(x).dispose();  // warm up
    x.dispose();
    setStatus(`model ready (backend: ${tf.getBackend()}, ${navigator.onLine ? 'online' : 'offline'}` +
      `${source === 'indexeddb' ? ', fine-tuned in this browser' : ''})`);
    return model;
  }

  // samples: array of flat arrays of H*W*C floats in [0, 1]; returns the probability rows
  async function predict(samples) {
    await ready;
    const n = samples.length;
    const x = tf.tensor(samples.flat(), [n, H, W, C], 'float32');
    const y = model.predict(x);
    const out = await y.array();
    x.dispose(); y.dispose();
    return out;
  }

  // the drawing pad, the sample buttons and the result bars: pad.js, shared with the LiteRT.js page
  const { clearPad, padToInput } = setupPad(config, predict);

  $('footer').textContent = `homl-edge export · weights: ${config.quantize || 'float32'} · TF.js ${tf.version.tfjs}`;

  // -- fine-tuning in the browser: only the last layer trains by default, re-initialised first
  const examples = { xs: [], ys: [] };
  const DEFAULTS = { epochs: 20, batchSize: 16, learningRate: 0.01, trainOnlyLast: true, reinitLast: true };

  function drawLoss(history) {
    const cv = $('loss'), g = cv.getContext('2d');
    g.clearRect(0, 0, cv.width, cv.height);
    if (!history.length) return;
    const max = Math.max(...history), pad = 14;
    g.strokeStyle = '#1f6feb'; g.lineWidth = 2; g.beginPath();
    history.forEach((v, i) => {
      const x = pad + (i / Math.max(1, history.length - 1)) * (cv.width - 2 * pad);
      const y = cv.height - pad - (v / max) * (cv.height - 2 * pad);
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
    g.fillStyle = '#57606a'; g.font = '11px sans-serif';
    g.fillText(`loss ${history[history.length - 1].toFixed(3)} after ${history.length} epochs`, pad, 12);
  }

  async function fineTune(samples, labels, options) {
    await ready;
    const o = Object.assign({}, DEFAULTS, options || {});
    const n = samples.length, classes = config.labels.length;
    const t0 = performance.now();
    const x = tf.tensor(samples.flat(), [n, H, W, C], 'float32');
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), classes).toFloat();
    const history = [];
    const callbacks = { onEpochEnd: async (epoch, logs) => {
      history.push(logs.loss); drawLoss(history);
      $('progress').value = (epoch + 1) / o.epochs;
      await tf.nextFrame();
    } };
    const fitOptions = { epochs: o.epochs, batchSize: o.batchSize, shuffle: true, callbacks };
    const last = model.layers[model.layers.length - 1];
    if (o.trainOnlyLast) {
      // The frozen layers run in inference mode (batch norm with its moving statistics): compute their features
      // once, train a copy of the last layer on them, and write its weights back.
      const base = tf.model({ inputs: model.inputs, outputs: model.layers[model.layers.length - 2].output });
      const features = base.predict(x);
      const flat = features.reshape([n, -1]);
      const head = tf.sequential({ layers: [tf.layers.dense({
        units: classes, activation: last.getConfig().activation, inputShape: [flat.shape[1]],
        kernelInitializer: tf.initializers.glorotUniform({ seed: 0 }),
        weights: o.reinitLast ? undefined : last.getWeights() })] });
      head.compile({ optimizer: tf.train.adam(o.learningRate), loss: 'categoricalCrossentropy' });
      await head.fit(flat, y, fitOptions);
      last.setWeights(head.getWeights());
      features.dispose(); flat.dispose(); head.dispose();
    } else {
      model.compile({ optimizer: tf.train.adam(o.learningRate), loss: 'categoricalCrossentropy' });
      await model.fit(x, y, fitOptions);
    }
    x.dispose(); y.dispose();
    let kept = 'saved in this browser';
    try {
      await model.save(STORE);
      source = 'indexeddb';
    } catch (e) {  // a sandboxed page (inside Jupyter) has no storage of its own: the model stays in memory
      kept = 'kept in memory only (no storage in this sandboxed page)';
    }
    setStatus(`fine-tuned on ${n} examples in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${kept}`);
    return { loss: history, seconds: (performance.now() - t0) / 1000 };
  }

  async function accuracy(samples, labels) {
    const probs = await predict(samples);
    let ok = 0;
    probs.forEach((p, i) => { if (p.indexOf(Math.max(...p)) === labels[i]) ok++; });
    return ok / labels.length;
  }

  function showCounts() {
    const c = new Array(config.labels.length).fill(0);
    examples.ys.forEach((y) => { c[y]++; });
    $('counts').textContent = examples.ys.length ?
      c.map((v, i) => `${config.labels[i]}:${v}`).join(' ') : 'no examples yet';
  }

  if (config.trainable) {
    $('train').hidden = false;
    config.labels.forEach((label, i) => {
      const b = document.createElement('button');
      b.type = 'button'; b.textContent = label;
      b.addEventListener('click', () => { examples.xs.push(padToInput()); examples.ys.push(i); showCounts(); clearPad(); });
      $('labels').appendChild(b);
    });
    $('finetune').addEventListener('click', async () => {
      if (!examples.ys.length) { setStatus('add a few labelled drawings first'); return; }
      await fineTune(examples.xs, examples.ys);
    });
    $('download').addEventListener('click', () => model.save('downloads://homl-edge-finetuned'));
    $('reset').addEventListener('click', async () => {
      try { await tf.io.removeModel(STORE); } catch (e) { /* nothing stored */ }
      await loadModel();
    });
  }

  // median milliseconds of one prediction (pad.js)
  async function time(samples, runs = 200) {
    await ready;
    return medianMs((sample) => predict([sample]), samples, runs);
  }

  const ready = loadModel().catch((e) => { setStatus(`could not load the model: ${e.message}`); throw e; });
  window.homl = { ready, predict, time, config, backend: () => tf.getBackend(), fineTune, accuracy,
                  source: () => source, defaults: DEFAULTS, examples };

  window.homl.offlineReady = Promise.resolve(false);
  try {  // a sandboxed page (inside Jupyter: an opaque origin) may not even read navigator.serviceWorker
    if ('serviceWorker' in navigator) {
      window.homl.offlineReady = navigator.serviceWorker.register('sw.js')
        .then(() => navigator.serviceWorker.ready)
        .then(() => true)
        .catch((e) => { console.warn('no offline support:', e); return false; });
    }
  } catch (e) { console.warn('no offline support in a sandboxed page:', e.message); }
})();
