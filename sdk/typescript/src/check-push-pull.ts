// Pushes a model directory, pulls it back and compares (tools/clientcheck).
import { readFileSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Client } from "./index.js";

const [src, name] = process.argv.slice(2);
const seen = new Set<string>();
const mesh = new Client(process.env.BITNET_GRPC_URL!);
const v = await mesh.push(name, src, { aliases: ["prod"], progress: (p) => seen.add(p.op) });
if (v.ref?.name !== name || v.ref?.version !== 1) throw new Error(`pushed ${JSON.stringify(v.ref)}`);
const dst = mkdtempSync(path.join(tmpdir(), "pull-"));
await mesh.pull(`${name}:prod`, dst, (p) => seen.add(p.op));
for (const f of v.files) {
  if (!readFileSync(path.join(src, f.path)).equals(readFileSync(path.join(dst, f.path)))) throw new Error(`${f.path} differs`);
}
if ([...seen].sort().join(",") !== "download,hash,upload") throw new Error(`progress ops ${[...seen]}`);
console.log("push/pull ok:", name, v.files.length, "files", v.parameterCount, "parameters");
