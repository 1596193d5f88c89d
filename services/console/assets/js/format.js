// Formatting of API values for people. uint64 fields arrive as JSON
// strings (protojson); every function here takes either.

export const n = (v) => (v === undefined || v === null || v === '' ? 0 : Number(v));

export function bytes(v) {
  let x = n(v);
  if (!x) return '0 B';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x >= 100 || i === 0 ? Math.round(x) : x.toFixed(1)} ${units[i]}`;
}

// count: 112832 -> "113 K", 2412000000 -> "2.41 B".
export function count(v) {
  const x = n(v);
  const units = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'K']];
  for (const [d, u] of units) {
    if (x >= d) {
      const y = x / d;
      return `${y >= 100 ? Math.round(y) : y.toPrecision(3)} ${u}`;
    }
  }
  return String(Math.round(x));
}

// num rounds to about 3 significant digits (or the given fraction digits).
export function num(v, digits) {
  const x = n(v);
  if (!Number.isFinite(x)) return '–';
  if (digits !== undefined) return x.toFixed(digits);
  const a = Math.abs(x);
  if (Number.isInteger(x)) return a >= 10000 ? x.toLocaleString('en-US') : String(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a >= 0.001) return String(Number(x.toPrecision(3)));
  return x.toExponential(2);
}

// tick prints an axis value as short as it is exact: 6.5, 0.25, 1200.
export const tick = (v) => {
  const a = Math.abs(v);
  if (a >= 1e6 || (a > 0 && a < 1e-4)) return v.toExponential(1);
  return String(Number(v.toPrecision(6)));
};

export const pct = (v, digits = 1) => `${(n(v) * 100).toFixed(digits)}%`;

export function ms(v) {
  const x = n(v);
  if (x >= 10000) return `${(x / 1000).toFixed(1)} s`;
  if (x >= 1000) return `${(x / 1000).toFixed(2)} s`;
  if (x >= 100) return `${Math.round(x)} ms`;
  if (x >= 10) return `${x.toFixed(1)} ms`;
  return `${x.toFixed(2)} ms`;
}

// seconds: 192 -> "3 m 12 s".
export function seconds(v) {
  const x = n(v);
  if (x < 10) return `${Number(x.toFixed(1))} s`;
  let s = Math.round(x);
  if (s < 60) return `${s} s`;
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const hh = Math.floor(s / 3600);
  s -= hh * 3600;
  const mm = Math.floor(s / 60);
  s -= mm * 60;
  if (d) return `${d} d ${hh} h`;
  if (hh) return `${hh} h ${mm} m`;
  return `${mm} m ${s} s`;
}

export const date = (ts) => (ts ? new Date(ts) : null);

export function time(ts) {
  const d = date(ts);
  if (!d || Number.isNaN(d.getTime())) return '–';
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

export function ago(ts, now = Date.now()) {
  const d = date(ts);
  if (!d) return '–';
  const s = Math.max(0, (now - d.getTime()) / 1000);
  return s < 2 ? 'just now' : `${seconds(Math.round(s))} ago`;
}

// enumName turns 'QUANT_TYPE_TQ2_0' into 'TQ2_0' and 'JOB_STATE_RUNNING'
// into 'running' (lower case for states and reasons).
const ENUM_PREFIXES = ['MODEL_FORMAT_', 'QUANT_TYPE_', 'LINEAGE_SOURCE_', 'JOB_STATE_', 'FINISH_REASON_', 'ROLE_', 'SCHEDULE_', 'DATASET_FORMAT_'];
export function enumName(v) {
  if (!v) return '–';
  for (const p of ENUM_PREFIXES) {
    if (v.startsWith(p)) {
      const rest = v.slice(p.length);
      if (rest === 'UNSPECIFIED') return '–';
      return p === 'QUANT_TYPE_' ? rest : rest.toLowerCase().replaceAll('_', ' ');
    }
  }
  return v;
}

const FORMATS = {MODEL_FORMAT_GGUF: 'GGUF', MODEL_FORMAT_HF_SAFETENSORS: 'HF safetensors', MODEL_FORMAT_HF_PACKED: 'HF packed'};
export const format = (v) => FORMATS[v] || enumName(v);

// ref prints a ModelRef: NAME@N, NAME:ALIAS or NAME.
export function ref(r) {
  if (!r || !r.name) return '–';
  if (r.version) return `${r.name}@${r.version}`;
  if (r.alias) return `${r.name}:${r.alias}`;
  return r.name;
}

export const terminal = (state) => ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].includes(state);

// FAMILIES names the model family of a registry architecture as the Go
// side's model.FamilyOf does (console_test's TestFamilyTable keeps the two
// in step): Hugging Face architectures as written (BitNetForCausalLM and
// BitnetForCausalLM differ by case only), GGUF architectures and
// config.json model types in lower case.
const FAMILIES = {
  'BitNetForCausalLM': 'bitnet',
  'BitnetForCausalLM': 'bitnet-b1.58',
  'LlamaForCausalLM': 'llama',
  'Qwen3ForCausalLM': 'qwen3',
  'Qwen3Model': 'qwen3',
  'Gemma3ForCausalLM': 'gemma3',
  'Gemma3TextModel': 'gemma3',
  'Gemma3Model': 'gemma3',
  'bitnet': 'bitnet',
  'bitnet-25': 'bitnet',
  'bitnet-b1.58': 'bitnet-b1.58',
  'bitnet_b1_58': 'bitnet-b1.58',
  'llama': 'llama',
  'qwen3': 'qwen3',
  'gemma3': 'gemma3',
  'gemma3_text': 'gemma3',
};

// family: "BitnetForCausalLM" -> "bitnet-b1.58"; '' when unknown.
export function family(arch) {
  if (!arch) return '';
  return FAMILIES[arch] || FAMILIES[arch.toLowerCase()] || '';
}
