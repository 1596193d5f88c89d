"""Pushes a model directory, pulls it back and compares (tools/clientcheck)."""
import filecmp, os, sys, tempfile
from bitnet_mesh import Client

src, name = sys.argv[1], sys.argv[2]
seen = set()
with Client(os.environ["BITNET_GRPC"]) as mesh:
    v = mesh.push(name, src, aliases=["prod"], progress=lambda p: seen.add(p.op))
    assert v.ref.name == name and v.ref.version == 1, v.ref
    with tempfile.TemporaryDirectory() as dst:
        mesh.pull(f"{name}:prod", dst, progress=lambda p: seen.add(p.op))
        for f in v.files:
            assert filecmp.cmp(os.path.join(src, f.path), os.path.join(dst, f.path), shallow=False), f.path
        mesh.pull(f"{name}@1", dst)  # complete files are kept
    assert seen == {"hash", "upload", "download"}, seen
    print("push/pull ok:", name, len(v.files), "files", v.parameter_count, "parameters")
