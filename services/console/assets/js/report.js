// The quantizer's quality report (per-linear zeros/scale/error,
// perplexity before and after, KL) as a summary, a chart and a table;
// used by the Models and Jobs pages.

import {barChart} from './chart.js';
import {h} from './dom.js';
import {bytes, count, n, num, pct} from './format.js';

export function reportView(report) {
  const r = report || {};
  const linears = r.linears || [];
  const before = n(r.perplexity_before);
  const after = n(r.perplexity_after);
  const src = n(r.source_size_bytes);
  const res = n(r.result_size_bytes);
  const chart = barChart({label: `Relative reconstruction error of ${linears.length} linear weights`, yLabel: 'rel. error', format: (v) => num(v)});
  chart.update(linears.map((l) => ({label: l.name, value: n(l.relative_error)})));
  return h('section', {class: 'report', 'aria-label': 'Quality report'},
    h('dl', {class: 'kv kv-inline report-summary'},
      h('dt', {}, 'Perplexity'), h('dd', {}, before ? `${num(before)} → ${num(after)}` : 'not measured (no tokenizer)',
        before ? h('span', {class: after > before ? 'delta-bad' : 'delta-good'}, ` (${after >= before ? '+' : ''}${pct((after - before) / before)})`) : null),
      h('dt', {}, 'Mean KL'), h('dd', {}, before ? `${num(r.mean_kl)} nats` : '–'),
      h('dt', {}, 'Top-1 agreement'), h('dd', {}, before ? pct(r.top1_agreement) : '–'),
      h('dt', {}, 'Calibration'), h('dd', {}, `${num(r.calibration_tokens)} tokens`),
      h('dt', {}, 'Size'), h('dd', {}, src ? `${bytes(src)} → ${bytes(res)} (${num(src / Math.max(1, res))}× smaller)` : bytes(res)),
      h('dt', {}, 'Parameters'), h('dd', {}, count(r.parameter_count))),
    linears.length
      ? [h('h4', {}, 'Relative error per linear (index as in the table)'), chart.el,
        h('div', {class: 'table-wrap'}, h('table', {class: 'data'},
          h('caption', {class: 'sr'}, 'Per-linear quantization statistics'),
          h('thead', {}, h('tr', {}, ['#', 'Tensor', 'Shape', 'Zeros', 'Scale', 'Rel. error'].map((c) => h('th', {scope: 'col'}, c)))),
          h('tbody', {}, linears.map((l, i) => h('tr', {},
            h('td', {class: 'num'}, String(i)), h('td', {class: 'mono'}, l.name), h('td', {class: 'num'}, `${l.rows}×${l.cols}`),
            h('td', {class: 'num'}, pct(l.zeros_fraction)), h('td', {class: 'num'}, num(l.scale)), h('td', {class: 'num'}, num(l.relative_error)))))))]
      : h('p', {class: 'hint'}, 'No per-linear statistics yet (they come with the finished job).'));
}
