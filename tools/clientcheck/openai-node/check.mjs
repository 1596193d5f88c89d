// Checks bitnet-mesh's OpenAI-compatible API with the official openai
// client against a real `bitnet up` (started by tools/clientcheck's Go
// test, which passes its addresses in the environment):
//
//   OPENAI_BASE_URL   http://HOST:PORT/v1 of the mesh (model "tiny" pushed
//                     with aliases prod, "long" a model that never ends)
//   MESH_HTTP         http://HOST:PORT (for /metrics)
//   BITNET_BIN, TINY_DIR   `bitnet generate --chat` on the same model files
//   LIMITED_BASE_URL  a mesh whose memory budget refuses every model (429)
//   AUTH_BASE_URL     optional: a mesh with API keys on (401 for a bad key),
//   AUTH_ADMIN_KEY    and its admin key
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import OpenAI, { AuthenticationError, BadRequestError, NotFoundError, RateLimitError } from "openai";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const client = new OpenAI({ baseURL: env("OPENAI_BASE_URL"), apiKey: process.env.OPENAI_API_KEY ?? "unused", maxRetries: 0 });
const checks = [];
const check = (name, fn) => checks.push([name, fn]);

const prompt = "Light is";
const messages = [{ role: "system", content: "Answer briefly." }, { role: "user", content: prompt }];
let greedy; // the non-streamed greedy completion

check("list models", async () => {
  const ids = [];
  for await (const m of client.models.list()) {
    assert.equal(m.object, "model");
    ids.push(m.id);
  }
  for (const want of ["tiny", "tiny@1", "tiny:prod", "long"]) assert.ok(ids.includes(want), `${want} in ${ids}`);
  const m = await client.models.retrieve("tiny@1");
  assert.equal(m.id, "tiny@1");
});

check("chat, greedy, equals bitnet generate with the same template", async () => {
  greedy = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 12, temperature: 0 });
  const c = greedy.choices[0];
  assert.equal(greedy.object, "chat.completion");
  assert.equal(c.message.role, "assistant");
  assert.equal(c.finish_reason, "length");
  assert.equal(greedy.usage.completion_tokens, 12);
  assert.equal(greedy.usage.total_tokens, greedy.usage.prompt_tokens + 12);
  const cli = spawnSync(env("BITNET_BIN"), ["generate", "--model", env("TINY_DIR"), "--chat", "--system", "Answer briefly.",
    "--prompt", prompt, "--max-tokens", "12", "--temperature", "0"], { encoding: "utf8" });
  assert.equal(cli.status, 0, cli.stderr);
  assert.equal(c.message.content, cli.stdout);
});

check("chat, streamed, include_usage", async () => {
  const stream = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 12, temperature: 0, stream: true,
    stream_options: { include_usage: true } });
  let text = "", finish = null, usage = null, chunks = 0;
  for await (const ch of stream) {
    chunks++;
    assert.equal(ch.object, "chat.completion.chunk");
    for (const c of ch.choices) {
      text += c.delta?.content ?? "";
      finish = c.finish_reason ?? finish;
    }
    if (ch.usage) usage = ch.usage;
  }
  assert.ok(chunks > 3);
  assert.equal(text, greedy.choices[0].message.content);
  assert.equal(finish, "length");
  assert.deepEqual(usage, greedy.usage);
});

check("stop", async () => {
  const full = greedy.choices[0].message.content;
  const stop = full.slice(4, 7);
  const r = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 12, temperature: 0, stop: [stop, "never-there"] });
  assert.equal(r.choices[0].message.content, full.slice(0, full.indexOf(stop)));
  assert.equal(r.choices[0].finish_reason, "stop");
});

check("logprobs", async () => {
  const r = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, r.usage.completion_tokens);
  assert.equal(lp.map((l) => l.token).join(""), r.choices[0].message.content);
  for (const l of lp) {
    assert.ok(l.logprob <= 0);
    assert.equal(l.top_logprobs.length, 3);
    assert.equal(l.top_logprobs[0].token, l.token); // greedy: the most likely
  }
});

check("json_schema output validates", async () => {
  const schema = { type: "object", properties: { name: { type: "string", maxLength: 16 }, year: { type: "integer" },
    tags: { type: "array", items: { type: "string", enum: ["optics", "light", "prism"] }, maxItems: 3 } },
    required: ["name", "year", "tags"], additionalProperties: false };
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({ model: "tiny", messages: [{ role: "user", content: "A book as JSON" }],
      max_tokens: 80, temperature: 1, seed, response_format: { type: "json_schema", json_schema: { name: "book", strict: true, schema } } });
    const doc = JSON.parse(r.choices[0].message.content);
    assert.deepEqual(Object.keys(doc), ["name", "year", "tags"]);
    assert.equal(typeof doc.name, "string");
    assert.ok([...doc.name].length <= 16);
    assert.ok(Number.isInteger(doc.year));
    assert.ok(Array.isArray(doc.tags) && doc.tags.length <= 3 && doc.tags.every((t) => ["optics", "light", "prism"].includes(t)));
  }
});

check("typed errors", async () => {
  await assert.rejects(client.chat.completions.create({ model: "no-such-model", messages }), (e) => e instanceof NotFoundError && e.code === "model_not_found");
  await assert.rejects(client.chat.completions.create({ model: "tiny", messages, n: 2 }), (e) => e instanceof BadRequestError && e.param === "n");
  const limited = new OpenAI({ baseURL: env("LIMITED_BASE_URL"), apiKey: "unused", maxRetries: 0 });
  await assert.rejects(limited.chat.completions.create({ model: "tiny", messages }), (e) => e instanceof RateLimitError && Number(e.headers.get("retry-after")) >= 1);
  if (process.env.AUTH_BASE_URL) {
    const bad = new OpenAI({ baseURL: process.env.AUTH_BASE_URL, apiKey: "not-a-key", maxRetries: 0 });
    await assert.rejects(bad.chat.completions.create({ model: "tiny", messages }), (e) => e instanceof AuthenticationError && e.status === 401);
    await assert.rejects(bad.models.list(), (e) => e instanceof AuthenticationError);
    const admin = new OpenAI({ baseURL: process.env.AUTH_BASE_URL, apiKey: env("AUTH_ADMIN_KEY"), maxRetries: 0 });
    const ids = [];
    for await (const m of admin.models.list()) ids.push(m.id);
    assert.deepEqual(ids, []); // the key works: an empty mesh
  } else {
    console.log("  (AuthenticationError: skipped, no mesh with API keys: AUTH_BASE_URL unset)");
  }
});

// metric reads one sample of /metrics: the first line starting with prefix.
async function metric(prefix) {
  const body = await (await fetch(env("MESH_HTTP") + "/metrics")).text();
  const line = body.split("\n").find((l) => l.startsWith(prefix));
  return line ? Number(line.slice(prefix.length).trim()) : 0;
}

check("aborting a stream stops the generation", async () => {
  const active = 'bitnet_inference_active_requests{node="local"}';
  const cancelledBefore = await metric('bitnet:request_success_total{finished_reason="cancelled",model_name="long@1",node="local"}');
  const ac = new AbortController();
  const stream = await client.completions.create({ model: "long", prompt, max_tokens: 30000, stream: true }, { signal: ac.signal });
  let chunks = 0;
  try {
    for await (const _ of stream) {
      if (++chunks === 3) {
        assert.equal(await metric(active), 1);
        ac.abort();
      }
    }
  } catch (e) {
    assert.ok(ac.signal.aborted, `stream failed before the abort: ${e}`);
  }
  const deadline = Date.now() + 10000;
  for (;;) {
    const a = await metric(active);
    const c = await metric('bitnet:request_success_total{finished_reason="cancelled",model_name="long@1",node="local"}');
    if (a === 0 && c === cancelledBefore + 1) break;
    assert.ok(Date.now() < deadline, `after the abort: ${a} active requests, ${c - cancelledBefore} cancelled; want 0 and 1`);
    await new Promise((r) => setTimeout(r, 50));
  }
});

let failed = 0;
for (const [name, fn] of checks) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
  }
}
process.exit(failed ? 1 : 0);
