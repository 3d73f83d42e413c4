// TradeoffExplorer: an interactive scatter of model variants (anywidget ES module, no build step).
// Synced state: points [{name, size_bytes, latency_median_ms, accuracy}], x / y (field names), hovered, selected.
const FIELDS = {
  size_bytes: { label: 'size (KiB)', scale: (v) => v / 1024, log: true },
  gzip_bytes: { label: 'gzip size (KiB)', scale: (v) => v / 1024, log: true },
  latency_median_ms: { label: 'latency (ms, median)', scale: (v) => v, log: true },
  accuracy: { label: 'accuracy (%)', scale: (v) => 100 * v, log: false },
};
const SVG = 'http://www.w3.org/2000/svg';

function el(tag, attrs, parent) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

// a field's axis for these values: latencies all under a millisecond are shown in µs, as the tables show them
function field(name, values) {
  if (name === 'latency_median_ms' && values.length && Math.max(...values) < 1) {
    return { label: 'latency (µs, median)', scale: (v) => 1000 * v, log: true };
  }
  return FIELDS[name] || { label: name, scale: (v) => v, log: false };
}

// tick values (in the axis' unit) between min and max (log10 of them on a log axis): 1-2-5 steps
function ticks(min, max, log) {
  if (log) {
    const out = [];
    for (let e = Math.floor(min); e <= Math.ceil(max); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (Math.log10(v) >= min && Math.log10(v) <= max) out.push(+v.toPrecision(6));
      }
    }
    if (out.length > 7) return out.filter((v) => Number.isInteger(Math.log10(v)));  // several decades: 1, 10, 100
    return out.length >= 2 ? out : ticks(10 ** min, 10 ** max, false);  // within one 1-2-5 step: linear ones
  }
  const raw = (max - min) / 5, p = 10 ** Math.floor(Math.log10(raw)), m = raw / p;
  const step = (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
  const out = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-6; v += step) out.push(+v.toPrecision(6));
  return out;
}

function tickLabel(v) {
  return Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US') : String(+v.toPrecision(3));
}

// the pixel position of a raw value (v => px), with the axis' ticks as [px, label] pairs in `.ticks`
function axis(values, f, lo, hi) {
  const xs = values.map(f.scale);
  let min = Math.min(...xs), max = Math.max(...xs);
  if (f.log) { min = Math.log10(min > 0 ? min : 1e-6); max = Math.log10(max > 0 ? max : 1e-6); }
  if (max - min < 1e-9) { min -= 0.5; max += 0.5; }
  const pad = (max - min) * 0.12; min -= pad; max += pad;
  const px = (t) => {
    if (f.log) t = Math.log10(t > 0 ? t : 1e-6);
    return lo + ((t - min) / (max - min)) * (hi - lo);
  };
  const at = (v) => px(f.scale(v));
  at.ticks = ticks(min, max, f.log).map((t) => [px(t), tickLabel(t)]);
  return at;
}

function latency(ms) {
  return ms < 1 ? `${(1000 * ms).toPrecision(3)} µs` : `${ms.toPrecision(3)} ms`;
}

function render({ model, el: root }) {
  root.classList.add('he-tradeoff');
  const title = document.createElement('div');
  title.className = 'he-tradeoff-title';
  const svg = el('svg', { width: 520, height: 356, viewBox: '0 0 520 356', role: 'img' });
  const info = document.createElement('div');
  info.className = 'he-tradeoff-info';
  root.append(title, svg, info);

  function describe(p) {
    return `${p.name}: ${(p.size_bytes / 1024).toFixed(1)} KiB, ` +
      `${(100 * p.accuracy).toFixed(2)}% accuracy, ${latency(p.latency_median_ms)}`;
  }

  function draw() {
    const points = model.get('points') || [];
    const xf = model.get('x'), yf = model.get('y');
    const selected = model.get('selected');
    svg.innerHTML = '';
    const fx = field(xf, points.map((p) => p[xf])), fy = field(yf, points.map((p) => p[yf]));
    title.textContent = `${fy.label} vs ${fx.label}` +
      ' (marker area: latency). Hover to see a variant, click to select it.';
    if (!points.length) { info.textContent = 'no variants yet'; return; }
    const X = axis(points.map((p) => p[xf]), fx, 60, 500);
    const Y = axis(points.map((p) => p[yf]), fy, 310, 20);
    X.ticks.forEach(([x, label]) => {  // tick values on both axes, with faint grid lines
      const g = el('g', { class: 'he-tick he-tick-x' }, svg);
      el('line', { x1: x, y1: 20, x2: x, y2: 310, class: 'he-grid' }, g);
      el('line', { x1: x, y1: 310, x2: x, y2: 315 }, g);
      el('text', { x, y: 328, 'text-anchor': 'middle' }, g).textContent = label;
    });
    Y.ticks.forEach(([y, label]) => {
      const g = el('g', { class: 'he-tick he-tick-y' }, svg);
      el('line', { x1: 60, y1: y, x2: 500, y2: y, class: 'he-grid' }, g);
      el('line', { x1: 55, y1: y, x2: 60, y2: y }, g);
      el('text', { x: 52, y: y + 4, 'text-anchor': 'end' }, g).textContent = label;
    });
    el('line', { x1: 60, y1: 310, x2: 500, y2: 310, class: 'he-axis' }, svg);
    el('line', { x1: 60, y1: 20, x2: 60, y2: 310, class: 'he-axis' }, svg);
    el('text', { x: 280, y: 350, 'text-anchor': 'middle', class: 'he-label' }, svg).textContent = fx.label;
    el('text', { x: 12, y: 165, transform: 'rotate(-90 12 165)', 'text-anchor': 'middle', class: 'he-label' }, svg)
      .textContent = fy.label;
    const lat = points.map((p) => p.latency_median_ms);
    const maxLat = Math.max(...lat) || 1;
    points.forEach((p) => {
      const g = el('g', { class: 'he-point' + (p.name === selected ? ' he-selected' : ''), 'data-name': p.name }, svg);
      el('circle', { cx: X(p[xf]), cy: Y(p[yf]), r: 6 + 14 * Math.sqrt(p.latency_median_ms / maxLat) }, g);
      el('text', { x: X(p[xf]) + 10, y: Y(p[yf]) - 10, class: 'he-name' }, g).textContent = p.name;
      g.addEventListener('mouseenter', () => {
        info.textContent = describe(p);
        model.set('hovered', p.name);
        model.save_changes();
      });
      g.addEventListener('click', () => {
        model.set('selected', p.name);
        model.save_changes();
      });
    });
    const sel = points.find((p) => p.name === selected);
    info.textContent = sel ? `selected: ${describe(sel)}` : 'click a variant to select it';
  }

  draw();
  for (const name of ['points', 'x', 'y', 'selected']) model.on(`change:${name}`, draw);
  return () => { for (const name of ['points', 'x', 'y', 'selected']) model.off(`change:${name}`, draw); };
}

export default { render };
