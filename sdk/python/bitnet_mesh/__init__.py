"""bitnet-mesh Python SDK: a thin client over the generated gRPC stubs.

    from bitnet_mesh import Client
    with Client("127.0.0.1:50051") as mesh:
        for msg in mesh.generate("tiny", prompt="Light is", max_tokens=16):
            print(msg.text, end="")

The generated messages and stubs are importable directly too, e.g.
``from bitnet.inference.v1 import inference_pb2``.
"""

from bitnet_mesh.client import Client, MeshError, Progress

__all__ = ["Client", "MeshError", "Progress"]
