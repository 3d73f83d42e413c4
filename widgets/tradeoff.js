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

function axis(values, field, lo, hi) {
  const f = FIELDS[field] || { scale: (v) => v, log: false };
  const xs = values.map(f.scale);
  let min = Math.min(...xs), max = Math.max(...xs);
  if (f.log) { min = Math.log10(min > 0 ? min : 1e-6); max = Math.log10(max > 0 ? max : 1e-6); }
  if (max - min < 1e-9) { min -= 0.5; max += 0.5; }
  const pad = (max - min) * 0.12; min -= pad; max += pad;
  return (v) => {
    let t = f.scale(v);
    if (f.log) t = Math.log10(t > 0 ? t : 1e-6);
    return lo + ((t - min) / (max - min)) * (hi - lo);
  };
}

function render({ model, el: root }) {
  root.classList.add('he-tradeoff');
  const title = document.createElement('div');
  title.className = 'he-tradeoff-title';
  const svg = el('svg', { width: 520, height: 340, viewBox: '0 0 520 340', role: 'img' });
  const info = document.createElement('div');
  info.className = 'he-tradeoff-info';
  root.append(title, svg, info);

  function describe(p) {
    return `${p.name}: ${(p.size_bytes / 1024).toFixed(1)} KiB, ` +
      `${(100 * p.accuracy).toFixed(2)}% accuracy, ${p.latency_median_ms.toPrecision(3)} ms`;
  }

  function draw() {
    const points = model.get('points') || [];
    const xf = model.get('x'), yf = model.get('y');
    const selected = model.get('selected');
    svg.innerHTML = '';
    title.textContent = `${(FIELDS[yf] || { label: yf }).label} vs ${(FIELDS[xf] || { label: xf }).label}` +
      ' (marker area: latency). Hover to see a variant, click to select it.';
    if (!points.length) { info.textContent = 'no variants yet'; return; }
    const X = axis(points.map((p) => p[xf]), xf, 60, 500);
    const Y = axis(points.map((p) => p[yf]), yf, 310, 20);
    el('line', { x1: 60, y1: 310, x2: 500, y2: 310, class: 'he-axis' }, svg);
    el('line', { x1: 60, y1: 20, x2: 60, y2: 310, class: 'he-axis' }, svg);
    el('text', { x: 280, y: 335, 'text-anchor': 'middle', class: 'he-label' }, svg).textContent = (FIELDS[xf] || { label: xf }).label;
    el('text', { x: 14, y: 165, transform: 'rotate(-90 14 165)', 'text-anchor': 'middle', class: 'he-label' }, svg)
      .textContent = (FIELDS[yf] || { label: yf }).label;
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
