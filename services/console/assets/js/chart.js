// A tiny SVG chart library: line charts (loss curves), bar charts
// (quantization error per linear) and sparklines, drawn at the
// container's width and redrawn on resize. Colours come from CSS classes
// (s0, s1, ...), so themes restyle them.

import {h, replace} from './dom.js';
import {num, tick} from './format.js';

const s = (tag, props, ...children) => h(`svg:${tag}`, props, ...children);

// niceTicks returns about count round values covering [lo, hi].
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function extent(values, pad) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (lo === Infinity) return [0, 1];
  if (lo === hi) return [lo - (Math.abs(lo) || 1) * 0.1, hi + (Math.abs(hi) || 1) * 0.1];
  const p = (hi - lo) * pad;
  return [lo - p, hi + p];
}

// yLabel is a y axis title, turned to read upwards, centred at y.
function yLabel(text, y) {
  return text ? s('text', {class: 'axis-label', x: 12, y, 'text-anchor': 'middle', transform: `rotate(-90 12 ${y})`}, text) : null;
}

// responsive wraps a draw(width) function: it runs now, on update and
// whenever the figure's width changes.
function responsive(fig, draw) {
  let last = 0;
  const run = () => {
    const w = Math.max(200, Math.floor(fig.clientWidth || 600));
    last = w;
    draw(w);
  };
  if (typeof ResizeObserver === 'function') {
    new ResizeObserver(() => {
      if (Math.floor(fig.clientWidth) !== last && fig.isConnected) run();
    }).observe(fig);
  }
  return run;
}

// lineChart: opts {label, xLabel, yLabel, height, xMin, xMax}; update(series)
// with series [{name, points: [[x, y], ...], dots}] redraws it.
export function lineChart(opts) {
  const height = opts.height || 220;
  const svg = s('svg', {role: 'img', 'aria-label': opts.label, height, class: 'chart-svg'});
  const legend = h('ul', {class: 'legend'});
  const fig = h('figure', {class: 'chart'}, svg, legend);
  let series = [];
  const draw = (width) => {
    const m = {l: 52, r: 14, t: 10, b: 36};
    const iw = width - m.l - m.r;
    const ih = height - m.t - m.b;
    const xs = series.flatMap((se) => se.points.map((p) => p[0]));
    const ys = series.flatMap((se) => se.points.map((p) => p[1]));
    let [x0, x1] = extent(xs, 0);
    if (opts.xMin !== undefined) x0 = opts.xMin;
    if (opts.xMax) x1 = Math.max(x1, opts.xMax);
    if (x1 <= x0) x1 = x0 + 1;
    const [y0, y1] = extent(ys, 0.08);
    const X = (v) => m.l + ((v - x0) / (x1 - x0)) * iw;
    const Y = (v) => m.t + ih - ((v - y0) / (y1 - y0)) * ih;
    svg.setAttribute('width', width);
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    const grid = [];
    for (const t of niceTicks(y0, y1, Math.max(2, Math.round(ih / 45)))) {
      grid.push(s('line', {class: 'grid', x1: m.l, x2: m.l + iw, y1: Y(t), y2: Y(t)}));
      grid.push(s('text', {class: 'tick', x: m.l - 6, y: Y(t) + 4, 'text-anchor': 'end'}, tick(t)));
    }
    for (const t of niceTicks(x0, x1, Math.max(2, Math.round(iw / 90)))) {
      grid.push(s('line', {class: 'grid grid-x', x1: X(t), x2: X(t), y1: m.t, y2: m.t + ih}));
      grid.push(s('text', {class: 'tick', x: X(t), y: m.t + ih + 16, 'text-anchor': 'middle'}, tick(t)));
    }
    const marks = series.map((se, i) => {
      const pts = se.points.filter((p) => Number.isFinite(p[1]));
      const g = s('g', {class: `series s${i}`, 'data-name': se.name, 'data-count': pts.length});
      if (pts.length > 1 && !se.dotsOnly) {
        g.append(s('path', {class: 'line', d: pts.map((p, j) => `${j ? 'L' : 'M'}${X(p[0]).toFixed(1)} ${Y(p[1]).toFixed(1)}`).join('')}));
      }
      if (se.dots || pts.length === 1) {
        for (const p of pts) g.append(s('circle', {class: 'dot', cx: X(p[0]), cy: Y(p[1]), r: 4}, s('title', {}, `${se.name}: ${num(p[1])} at ${num(p[0])}`)));
      }
      return g;
    });
    replace(svg,
      s('rect', {class: 'plot', x: m.l, y: m.t, width: iw, height: ih}),
      grid, marks,
      opts.xLabel ? s('text', {class: 'axis-label', x: m.l + iw / 2, y: height - 4, 'text-anchor': 'middle'}, opts.xLabel) : null,
      yLabel(opts.yLabel, m.t + ih / 2));
  };
  const run = responsive(fig, draw);
  return {
    el: fig,
    update(next) {
      series = next;
      fig.dataset.points = String(series.reduce((a, se) => a + se.points.length, 0));
      replace(legend, series.map((se, i) => {
        const last = se.points[se.points.length - 1];
        return h('li', {class: `s${i}`}, h('span', {class: 'swatch', 'aria-hidden': 'true'}), se.name,
          last ? h('span', {class: 'legend-last'}, ` ${num(last[1])}`) : ' (none yet)');
      }));
      const summary = series.map((se) => {
        const last = se.points[se.points.length - 1];
        return `${se.name}: ${se.points.length} points${last ? `, latest ${num(last[1])} at ${num(last[0])}` : ''}`;
      }).join('; ');
      svg.setAttribute('aria-label', `${opts.label}. ${summary}`);
      run();
    },
  };
}

// barChart: opts {label, yLabel, height, format}; update(bars) with bars
// [{label, value}] draws one bar each (titles name them on hover).
export function barChart(opts) {
  const height = opts.height || 180;
  const fmt = opts.format || num;
  const maxBar = opts.maxBar || 44;
  const svg = s('svg', {role: 'img', 'aria-label': opts.label, height, class: 'chart-svg'});
  const fig = h('figure', {class: 'chart'}, svg);
  let bars = [];
  const draw = (width) => {
    const m = {l: 52, r: 10, t: 10, b: 24};
    const iw = width - m.l - m.r;
    const ih = height - m.t - m.b;
    const hi = Math.max(1e-9, ...bars.map((b) => b.value)) * 1.08;
    const Y = (v) => m.t + ih - (v / hi) * ih;
    const slot = iw / Math.max(1, bars.length);
    const bw = Math.min(slot * 0.76, maxBar);
    const x0 = m.l + (iw - slot * bars.length) / 2;
    svg.setAttribute('width', width);
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    const grid = niceTicks(0, hi, 4).map((t) => [
      s('line', {class: 'grid', x1: m.l, x2: m.l + iw, y1: Y(t), y2: Y(t)}),
      s('text', {class: 'tick', x: m.l - 6, y: Y(t) + 4, 'text-anchor': 'end'}, tick(t)),
    ]);
    const rects = bars.map((b, i) => s('rect', {class: 'bar', x: x0 + i * slot + (slot - bw) / 2, y: Y(b.value), width: Math.max(1, bw), height: Math.max(0, m.t + ih - Y(b.value)), rx: 2},
      s('title', {}, `${b.label}: ${fmt(b.value)}`)));
    const every = Math.ceil(bars.length / Math.max(1, Math.floor(iw / 28)));
    const labels = bars.map((b, i) => (i % every === 0 ? s('text', {class: 'tick', x: x0 + (i + 0.5) * slot, y: height - 8, 'text-anchor': 'middle'}, String(i)) : null));
    replace(svg, grid, rects, labels,
      yLabel(opts.yLabel, m.t + ih / 2));
  };
  const run = responsive(fig, draw);
  return {
    el: fig,
    update(next) {
      bars = next;
      fig.dataset.points = String(bars.length);
      run();
    },
  };
}

// sparkline draws values (oldest first) as a small line, scaled to their
// own maximum.
export function sparkline(values, {width = 120, height = 28, label = ''} = {}) {
  const hi = Math.max(1e-9, ...values);
  const pts = values.map((v, i) => `${((i / Math.max(1, values.length - 1)) * (width - 2) + 1).toFixed(1)},${(height - 2 - (v / hi) * (height - 4)).toFixed(1)}`);
  return s('svg', {class: 'spark', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label},
    values.length > 1 ? s('polyline', {points: pts.join(' ')}) : null);
}
