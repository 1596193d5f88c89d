import os, sys
from bitnet_mesh import Client, MeshError

with Client(os.environ.get("BITNET_GRPC", "127.0.0.1:50051")) as mesh:
    print("models:", [m.name for m in mesh.models()])
    for msg in mesh.generate("tiny", prompt="Light is", max_tokens=16, temperature=0):
        print(msg.text, end="", flush=True)
    print("\nfinish:", msg.finish_reason, "tokens:", msg.usage.completion_tokens, "node:", msg.node)
    try:
        mesh.generate_text("no-such-model", prompt="x")
    except MeshError as e:
        print("error:", e.code.name, file=sys.stderr)
