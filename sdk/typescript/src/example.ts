import { Client, Code, MeshError } from "./index.js";

const mesh = new Client(process.env.BITNET_GRPC_URL ?? "http://127.0.0.1:50051");
console.log("models:", (await mesh.models()).map((m) => m.name));
let last;
for await (const msg of mesh.generate("tiny", "Light is", { maxTokens: 16, temperature: 0 })) {
  process.stdout.write(msg.text);
  last = msg;
}
console.log("\nfinish:", last?.finishReason, "tokens:", last?.usage?.completionTokens, "node:", last?.node);
await mesh.generateText("no-such-model", "x").catch((e: MeshError) => console.error("error:", Code[e.code]));
