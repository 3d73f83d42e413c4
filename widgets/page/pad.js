// homl-edge web page, the part both flavours share (app.js for TF.js, litert-app.js for LiteRT.js): the drawing
// pad, its block-averaged downsampling to the model's input, the sample buttons and the result bars.
// `predict(samples)` is the page's own: it takes flat arrays of H*W*C floats in [0, 1] and returns probability rows.
const $ = (id) => document.getElementById(id);

// median milliseconds of one prediction, over `runs` predictions cycling through `samples`, timed in chunks of
// 20 (browsers coarsen performance.now() to 0.1 ms without cross-origin isolation: one prediction is shorter)
// `one(sample)` runs one prediction; both pages time theirs with this
export async function medianMs(one, samples, runs = 200) {
  const t = [];
  for (let i = 0; i < runs;) {
    const t0 = performance.now();
    for (let k = 0; k < 20; k++, i++) {
      await one(samples[i % samples.length]);
    }
    t.push((performance.now() - t0) / 20);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

export function setupPad(config, predict) {
  const [H, W, C] = config.inputShape;

  function show(probs) {
    let best = 0;
    probs.forEach((p, i) => { if (p > probs[best]) best = i; });
    $('answer').textContent = `${config.labels[best]}  (${(100 * probs[best]).toFixed(1)}%)`;
    $('bars').innerHTML = probs.map((p, i) =>
      `<li><span>${config.labels[i]}</span><span class="bar" style="width:${(p * 14).toFixed(2)}rem"></span>` +
      `<span>${(100 * p).toFixed(1)}%</span></li>`).join('');
  }

  // white strokes on black, downsampled to the model's input by block averaging
  const pad = $('pad');
  const ctx = pad.getContext('2d');
  function clearPad() { ctx.fillStyle = 'black'; ctx.fillRect(0, 0, pad.width, pad.height); }
  clearPad();
  let drawing = false;
  function pos(e) { const r = pad.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
  pad.addEventListener('pointerdown', (e) => { drawing = true; ctx.beginPath(); ctx.moveTo(...pos(e)); });
  pad.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    ctx.lineWidth = pad.width / 6; ctx.lineCap = 'round'; ctx.strokeStyle = 'white';
    ctx.lineTo(...pos(e)); ctx.stroke();
  });
  window.addEventListener('pointerup', () => { if (drawing) { drawing = false; predictPad(); } });

  function padToInput() {
    const img = ctx.getImageData(0, 0, pad.width, pad.height).data;
    const bh = pad.height / H, bw = pad.width / W, out = [];
    for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) {
      let s = 0, k = 0;
      for (let y = Math.floor(r * bh); y < Math.floor((r + 1) * bh); y++)
        for (let x = Math.floor(c * bw); x < Math.floor((c + 1) * bw); x++) { s += img[4 * (y * pad.width + x)]; k++; }
      for (let ch = 0; ch < C; ch++) out.push(s / k / 255);
    }
    return out;
  }

  function drawSmall(canvas, flat) {
    const g = canvas.getContext('2d'), im = g.createImageData(W, H);
    for (let i = 0; i < H * W; i++) {
      const v = Math.round(255 * Math.min(1, Math.max(0, flat[i * C])));
      im.data.set([v, v, v, 255], 4 * i);
    }
    g.putImageData(im, 0, 0);
  }

  async function predictPad() {
    const input = padToInput();
    drawSmall($('small'), input);
    show((await predict([input]))[0]);
  }

  $('clear').addEventListener('click', () => { clearPad(); $('answer').textContent = ''; $('bars').innerHTML = ''; });
  $('predict').addEventListener('click', predictPad);

  (config.samples || []).forEach((s, i) => {
    const cv = document.createElement('canvas');
    cv.width = W; cv.height = H; cv.title = `sample ${i} (label ${config.labels[s.label]})`;
    drawSmall(cv, s.x);
    cv.addEventListener('click', async () => { drawSmall($('small'), s.x); show((await predict([s.x]))[0]); });
    $('samples').appendChild(cv);
  });

  return { show, clearPad, padToInput, drawSmall };
}
