// Thin hand-written client over the generated bitnet-mesh services:
// connect to a mesh (the router's gRPC address, e.g. `bitnet up`'s) over
// the gRPC protocol, stream generations, list models and nodes, push and
// pull model versions with progress. Every RPC error is thrown as a
// MeshError carrying the gRPC status code.

import { createHash } from "node:crypto";
import { createReadStream, existsSync, promises as fs, readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client as RpcClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import {
  type GenerateRequest,
  type GenerateResponse,
  GenerateRequestSchema,
  InferenceService,
  type Node,
  Role,
  type ServableModel,
} from "./gen/bitnet/inference/v1/inference_pb.js";
import { LineageSource, ModelFormat, QuantType } from "./gen/bitnet/model/v1/model_pb.js";
import {
  type ModelVersion,
  RegistryService,
  type UploadBlobRequest,
  UploadBlobRequestSchema,
  UploadState,
} from "./gen/bitnet/registry/v1/registry_pb.js";

const CHUNK = 1 << 20;
const GGUF_FILE = "model.gguf";
const PARTIAL = ".partial";

/** An RPC failed: code is the gRPC status code (e.g. Code.NotFound). */
export class MeshError extends Error {
  readonly code: Code;
  readonly codeName: string;
  readonly details: string;
  constructor(code: Code, details: string, op = "") {
    super(`${op ? op + ": " : ""}${Code[code]}: ${details}`);
    this.name = "MeshError";
    this.code = code;
    this.codeName = Code[code];
    this.details = details;
  }
}

function wrap(op: string, err: unknown): MeshError {
  if (err instanceof MeshError) return err;
  const ce = ConnectError.from(err);
  return new MeshError(ce.code, ce.rawMessage, op);
}

/** One progress report: op is "hash", "upload" or "download". */
export interface Progress {
  op: "hash" | "upload" | "download";
  file: string;
  done: number;
  total: number;
}

export type ProgressFunc = (p: Progress) => void;

export interface ClientOptions {
  /** An API key sent as `Authorization: Bearer KEY`. */
  apiKey?: string;
  /** Per-call timeout in milliseconds. */
  timeoutMs?: number;
}

/** GenerateRequest fields besides the model and prompt (maxTokens,
 * temperature, stop, seed, require, responseFormat, ...). */
export type GenerateParams = Omit<Exclude<MessageInitShape<typeof GenerateRequestSchema>, GenerateRequest>, "$typeName" | "model" | "prompt" | "messages">;

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** A connection to a mesh's gRPC endpoint, e.g. "http://127.0.0.1:50051". */
export class Client {
  readonly inference: RpcClient<typeof InferenceService>;
  readonly registry: RpcClient<typeof RegistryService>;
  private readonly timeoutMs?: number;

  constructor(baseUrl: string, opts: ClientOptions = {}) {
    const interceptors: Interceptor[] = [];
    if (opts.apiKey) {
      const key = opts.apiKey;
      interceptors.push((next) => (req) => {
        req.header.set("authorization", `Bearer ${key}`);
        return next(req);
      });
    }
    const transport = createGrpcTransport({ baseUrl, interceptors, readMaxBytes: 64 << 20 });
    this.inference = createClient(InferenceService, transport);
    this.registry = createClient(RegistryService, transport);
    this.timeoutMs = opts.timeoutMs;
  }

  /** Streams the generation of prompt (or of a chat with messages). Each
   * message has a text delta; the last one finishReason and usage. */
  async *generate(model: string, prompt: string | ChatMessage[], params: GenerateParams = {}): AsyncGenerator<GenerateResponse> {
    const roles = { system: Role.SYSTEM, user: Role.USER, assistant: Role.ASSISTANT };
    const req = create(GenerateRequestSchema, {
      ...params,
      model,
      prompt: typeof prompt === "string" ? prompt : "",
      messages: typeof prompt === "string" ? [] : prompt.map((m) => ({ role: roles[m.role], content: m.content })),
    });
    try {
      for await (const msg of this.inference.generate(req, { timeoutMs: this.timeoutMs })) {
        yield msg;
      }
    } catch (err) {
      throw wrap(`generate with ${model}`, err);
    }
  }

  /** Returns the whole generated text. */
  async generateText(model: string, prompt: string | ChatMessage[], params: GenerateParams = {}): Promise<string> {
    let text = "";
    for await (const msg of this.generate(model, prompt, params)) text += msg.text;
    return text;
  }

  /** Lists the models the mesh can serve (every page). */
  async models(): Promise<ServableModel[]> {
    const out: ServableModel[] = [];
    let pageToken = "";
    try {
      do {
        const resp = await this.inference.listModels({ pageSize: 1000, pageToken }, { timeoutMs: this.timeoutMs });
        out.push(...resp.models);
        pageToken = resp.nextPageToken;
      } while (pageToken);
    } catch (err) {
      throw wrap("list models", err);
    }
    return out;
  }

  /** Lists the inference nodes with their hardware and load. */
  async nodes(): Promise<Node[]> {
    try {
      return (await this.inference.listNodes({}, { timeoutMs: this.timeoutMs })).nodes;
    } catch (err) {
      throw wrap("list nodes", err);
    }
  }

  /** Uploads a Hugging Face directory or a .gguf file as the next version of
   * name (created if new); blobs the registry has are not sent again. */
  async push(name: string, localPath: string, opts: { aliases?: string[]; description?: string; progress?: ProgressFunc } = {}): Promise<ModelVersion> {
    const op = `push ${localPath} as ${name}`;
    const meta = inspect(localPath);
    try {
      for (const f of meta.files) {
        f.sha256 = await sha256(f.local, f.path, f.size, opts.progress);
        await this.upload(f, opts.progress);
      }
      const resp = await this.registry.createVersion({
        name,
        createModel: true,
        description: opts.description ?? "",
        architecture: meta.architecture,
        parameterCount: meta.parameters,
        format: meta.format,
        quantType: meta.quant,
        contextLength: meta.context,
        vocabSize: meta.vocab,
        aliases: opts.aliases ?? [],
        lineage: { source: LineageSource.UPLOAD },
        files: meta.files.map((f) => ({ path: f.path, sha256: f.sha256, sizeBytes: BigInt(f.size), mediaType: f.media })),
      }, { timeoutMs: this.timeoutMs });
      return resp.version!;
    } catch (err) {
      throw wrap(op, err);
    }
  }

  private async upload(f: LocalFile, progress?: ProgressFunc): Promise<void> {
    const up = (await this.registry.createUpload({ sha256: f.sha256, sizeBytes: BigInt(f.size) })).upload!;
    if (up.state === UploadState.COMPLETE) {
      progress?.({ op: "upload", file: f.path, done: f.size, total: f.size });
      return;
    }
    const offset = Number(up.offset);
    async function* chunks(): AsyncGenerator<UploadBlobRequest> {
      yield create(UploadBlobRequestSchema, { content: { case: "header", value: { uploadId: up.uploadId, offset: BigInt(offset) } } });
      let done = offset;
      for await (const buf of createReadStream(f.local, { start: offset, highWaterMark: CHUNK })) {
        done += (buf as Buffer).length;
        yield create(UploadBlobRequestSchema, { content: { case: "chunk", value: buf as Buffer } });
        progress?.({ op: "upload", file: f.path, done, total: f.size });
      }
    }
    const resp = await this.registry.uploadBlob(chunks());
    if (resp.upload?.state !== UploadState.COMPLETE) {
      throw new MeshError(Code.Aborted, `upload ended at offset ${resp.upload?.offset} of ${f.size}`, `upload ${f.path}`);
    }
  }

  /** Downloads version ref (NAME, NAME@N or NAME:ALIAS) into the directory
   * dest, checking every file's sha256; complete files are kept. */
  async pull(ref: string, dest: string, progress?: ProgressFunc): Promise<ModelVersion> {
    let v: ModelVersion;
    try {
      v = (await this.registry.resolveModel({ ref }, { timeoutMs: this.timeoutMs })).version!;
    } catch (err) {
      throw wrap(`resolve ${ref}`, err);
    }
    const root = path.resolve(dest);
    for (const f of v.files) {
      const target = path.resolve(root, ...f.path.split("/"));
      if (!target.startsWith(root + path.sep)) {
        throw new MeshError(Code.InvalidArgument, `file path ${JSON.stringify(f.path)} leaves ${dest}`, `pull ${ref}`);
      }
      const size = Number(f.sizeBytes);
      if (existsSync(target) && statSync(target).size === size && (await sha256(target, f.path, size)) === f.sha256) {
        progress?.({ op: "download", file: f.path, done: size, total: size });
        continue;
      }
      await fs.mkdir(path.dirname(target), { recursive: true });
      const partial = target + PARTIAL;
      const out = await fs.open(partial, "w");
      const h = createHash("sha256");
      let done = 0;
      try {
        for await (const msg of this.registry.downloadBlob({ sha256: f.sha256 }, { timeoutMs: this.timeoutMs })) {
          await out.write(msg.data);
          h.update(msg.data);
          done += msg.data.length;
          progress?.({ op: "download", file: f.path, done, total: size });
        }
      } catch (err) {
        throw wrap(`download ${f.path}`, err);
      } finally {
        await out.close();
      }
      const got = h.digest("hex");
      if (done !== size || got !== f.sha256) {
        await fs.rm(partial, { force: true });
        throw new MeshError(Code.DataLoss, `${f.path}: got ${done} bytes with sha256 ${got}, want ${size} with ${f.sha256}`, `pull ${ref}`);
      }
      await fs.rename(partial, target);
    }
    return v;
  }
}

interface LocalFile {
  path: string;
  local: string;
  size: number;
  media: string;
  sha256: string;
}

interface LocalModel {
  files: LocalFile[];
  format: ModelFormat;
  quant: QuantType;
  architecture: string;
  parameters: bigint;
  context: number;
  vocab: number;
}

function mediaType(name: string): string {
  const ext = path.extname(name);
  return ({ ".json": "application/json", ".txt": "text/plain", ".md": "text/plain", ".gguf": "application/vnd.gguf" } as Record<string, string>)[ext] ?? "application/octet-stream";
}

async function sha256(local: string, name: string, size: number, progress?: ProgressFunc): Promise<string> {
  const h = createHash("sha256");
  let done = 0;
  for await (const buf of createReadStream(local, { highWaterMark: CHUNK })) {
    h.update(buf as Buffer);
    done += (buf as Buffer).length;
    progress?.({ op: "hash", file: name, done, total: size });
  }
  if (done !== size) throw new Error(`${local} changed while pushing (${done} bytes, was ${size})`);
  return h.digest("hex");
}

/** What push needs to know about a local model. */
function inspect(p: string): LocalModel {
  const st = statSync(p);
  if (st.isFile()) {
    if (!p.endsWith(".gguf")) throw new Error(`${p}: want a .gguf file or a Hugging Face directory`);
    return { files: [{ path: GGUF_FILE, local: p, size: st.size, media: mediaType(p), sha256: "" }], format: ModelFormat.GGUF,
      quant: QuantType.UNSPECIFIED, architecture: "", parameters: 0n, context: 0, vocab: 0 };
  }
  const files: LocalFile[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSorted(dir)) {
      if (e.startsWith(".")) continue;
      const local = path.join(dir, e);
      const s = statSync(local);
      if (s.isDirectory()) walk(local);
      else if (s.isFile() && !e.endsWith(PARTIAL)) files.push({ path: path.relative(p, local).split(path.sep).join("/"), local, size: s.size, media: mediaType(e), sha256: "" });
    }
  };
  walk(p);
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const cfg = JSON.parse(readFileSync(path.join(p, "config.json"), "utf8"));
  let quant = ({ float32: QuantType.F32, float16: QuantType.F16, bfloat16: QuantType.BF16 } as Record<string, QuantType>)[cfg.torch_dtype] ?? QuantType.UNSPECIFIED;
  let format = ModelFormat.HF_SAFETENSORS;
  let params = 0n;
  let packed = false;
  for (const f of files) {
    if (!f.path.endsWith(".safetensors")) continue;
    const buf = readFileSync(f.local);
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: string; shape: number[] }>;
    for (const [name, t] of Object.entries(header)) {
      if (name === "__metadata__" || name.endsWith("_scale")) continue;
      let count = t.shape.reduce((a, b) => a * BigInt(b), 1n);
      if (t.dtype === "U8" && t.shape.length === 2) {
        count *= 4n;
        packed = true;
      }
      params += count;
    }
  }
  if (packed || cfg.quantization_config?.quantization_mode === "offline") {
    format = ModelFormat.HF_PACKED;
    quant = QuantType.I2_S;
  }
  return { files, format, quant, architecture: cfg.model_type ?? "", parameters: params, context: cfg.max_position_embeddings ?? 0, vocab: cfg.vocab_size ?? 0 };
}

function readdirSorted(dir: string): string[] {
  return readdirSync(dir).sort();
}
