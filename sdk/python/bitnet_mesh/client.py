"""Thin hand-written client over the generated bitnet-mesh stubs.

Client connects to a mesh (the router's gRPC address, e.g. `bitnet up`'s),
streams generations, lists models and nodes, and pushes and pulls model
versions with progress. Every RPC error is raised as MeshError, which
carries the gRPC status code and message.
"""

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional

import grpc

from bitnet.inference.v1 import inference_pb2, inference_pb2_grpc
from bitnet.model.v1 import model_pb2
from bitnet.registry.v1 import registry_pb2, registry_pb2_grpc

CHUNK = 1 << 20  # bytes per upload message
GGUF_FILE = "model.gguf"
PARTIAL = ".partial"


class MeshError(Exception):
    """An RPC failed: code is the grpc.StatusCode, details its message."""

    def __init__(self, code: grpc.StatusCode, details: str, op: str = ""):
        self.code = code
        self.details = details
        self.op = op
        prefix = f"{op}: " if op else ""
        super().__init__(f"{prefix}{code.name}: {details}")


@dataclass
class Progress:
    """One progress report: op is "hash", "upload" or "download"."""

    op: str
    file: str
    done: int
    total: int


ProgressFunc = Callable[[Progress], None]


def _wrap(op: str, err: grpc.RpcError) -> MeshError:
    return MeshError(err.code(), err.details() or "", op)


class Client:
    """A connection to a mesh's gRPC endpoint (insecure by default; pass
    credentials for TLS and metadata such as an API key)."""

    def __init__(self, target: str, credentials: Optional[grpc.ChannelCredentials] = None,
                 api_key: Optional[str] = None, timeout: Optional[float] = None):
        options = [("grpc.max_receive_message_length", 64 << 20)]
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=options)
        self._metadata = [("authorization", f"Bearer {api_key}")] if api_key else []
        self._timeout = timeout
        self.inference = inference_pb2_grpc.InferenceServiceStub(self._channel)
        self.registry = registry_pb2_grpc.RegistryServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, op: str, fn, request):
        try:
            return fn(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise _wrap(op, err) from None

    # Inference.

    def generate(self, model: str, prompt: str = "", messages: Optional[List[dict]] = None,
                 **params) -> Iterator[inference_pb2.GenerateResponse]:
        """Streams the generation of prompt (or of a chat: messages as
        [{"role": "user", "content": "..."}]); params are GenerateRequest
        fields (max_tokens, temperature, stop, seed, require, ...). Each
        message has the text delta; the last one finish_reason and usage."""
        req = inference_pb2.GenerateRequest(model=model, prompt=prompt, **params)
        roles = {"system": inference_pb2.ROLE_SYSTEM, "user": inference_pb2.ROLE_USER,
                 "assistant": inference_pb2.ROLE_ASSISTANT}
        for m in messages or []:
            req.messages.add(role=roles[m["role"]], content=m["content"])
        try:
            for msg in self.inference.Generate(req, timeout=self._timeout, metadata=self._metadata):
                yield msg
        except grpc.RpcError as err:
            raise _wrap(f"generate with {model}", err) from None

    def generate_text(self, model: str, prompt: str = "", **params) -> str:
        """Returns the whole generated text."""
        return "".join(m.text for m in self.generate(model, prompt, **params))

    def models(self) -> List[inference_pb2.ServableModel]:
        """Lists the models the mesh can serve (every page)."""
        out, token = [], ""
        while True:
            resp = self._call("list models", self.inference.ListModels,
                              inference_pb2.ListModelsRequest(page_size=1000, page_token=token))
            out.extend(resp.models)
            token = resp.next_page_token
            if not token:
                return out

    def nodes(self) -> List[inference_pb2.Node]:
        """Lists the inference nodes with their hardware and load."""
        return list(self._call("list nodes", self.inference.ListNodes, inference_pb2.ListNodesRequest()).nodes)

    # Registry: push and pull.

    def push(self, name: str, path: str, aliases: Optional[List[str]] = None, description: str = "",
             progress: Optional[ProgressFunc] = None) -> registry_pb2.ModelVersion:
        """Uploads a Hugging Face directory or a .gguf file as the next
        version of name (created if new); blobs the registry has are not sent
        again. Returns the new version."""
        meta = _inspect(path)
        for f in meta["files"]:
            f["sha256"] = _sha256(f["local"], f["path"], f["size"], progress)
            self._upload(f, progress)
        req = registry_pb2.CreateVersionRequest(
            name=name, create_model=True, description=description, architecture=meta["architecture"],
            parameter_count=meta["parameters"], format=meta["format"], quant_type=meta["quant"],
            context_length=meta["context"], vocab_size=meta["vocab"], aliases=aliases or [],
            lineage=model_pb2.Lineage(source=model_pb2.LINEAGE_SOURCE_UPLOAD))
        for f in meta["files"]:
            req.files.add(path=f["path"], sha256=f["sha256"], size_bytes=f["size"], media_type=f["media"])
        return self._call(f"push {path} as {name}", self.registry.CreateVersion, req).version

    def _upload(self, f: dict, progress: Optional[ProgressFunc]) -> None:
        op = f"upload {f['path']}"
        up = self._call(op, self.registry.CreateUpload,
                        registry_pb2.CreateUploadRequest(sha256=f["sha256"], size_bytes=f["size"])).upload
        if up.state == registry_pb2.UPLOAD_STATE_COMPLETE:
            if progress:
                progress(Progress("upload", f["path"], f["size"], f["size"]))
            return
        offset = up.offset

        def chunks():
            yield registry_pb2.UploadBlobRequest(header=registry_pb2.UploadBlobHeader(upload_id=up.upload_id, offset=offset))
            done = offset
            with open(f["local"], "rb") as fh:
                fh.seek(offset)
                while done < f["size"]:
                    data = fh.read(min(CHUNK, f["size"] - done))
                    if not data:
                        raise OSError(f"{f['local']} ended at {done} of {f['size']} bytes")
                    done += len(data)
                    yield registry_pb2.UploadBlobRequest(chunk=data)
                    if progress:
                        progress(Progress("upload", f["path"], done, f["size"]))

        resp = self._call(op, self.registry.UploadBlob, chunks())
        if resp.upload.state != registry_pb2.UPLOAD_STATE_COMPLETE:
            raise MeshError(grpc.StatusCode.ABORTED, f"upload ended at offset {resp.upload.offset} of {f['size']}", op)

    def pull(self, ref: str, dest: str, progress: Optional[ProgressFunc] = None) -> registry_pb2.ModelVersion:
        """Downloads version ref (NAME, NAME@N or NAME:ALIAS) into the
        directory dest, checking every file's sha256; files already complete
        are kept. Returns the version."""
        v = self._call(f"resolve {ref}", self.registry.ResolveModel, registry_pb2.ResolveModelRequest(ref=ref)).version
        for f in v.files:
            target = os.path.join(dest, *f.path.split("/"))
            if not os.path.abspath(target).startswith(os.path.abspath(dest) + os.sep):
                raise MeshError(grpc.StatusCode.INVALID_ARGUMENT, f"file path {f.path!r} leaves {dest}", f"pull {ref}")
            if os.path.exists(target) and os.path.getsize(target) == f.size_bytes and _sha256(target, f.path, f.size_bytes, None) == f.sha256:
                if progress:
                    progress(Progress("download", f.path, f.size_bytes, f.size_bytes))
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            partial, h, done = target + PARTIAL, hashlib.sha256(), 0
            with open(partial, "wb") as out:
                try:
                    for msg in self.registry.DownloadBlob(registry_pb2.DownloadBlobRequest(sha256=f.sha256),
                                                          timeout=self._timeout, metadata=self._metadata):
                        out.write(msg.data)
                        h.update(msg.data)
                        done += len(msg.data)
                        if progress:
                            progress(Progress("download", f.path, done, f.size_bytes))
                except grpc.RpcError as err:
                    raise _wrap(f"download {f.path}", err) from None
            if done != f.size_bytes or h.hexdigest() != f.sha256:
                os.remove(partial)
                raise MeshError(grpc.StatusCode.DATA_LOSS, f"{f.path}: got {done} bytes with sha256 {h.hexdigest()}, want {f.size_bytes} with {f.sha256}", f"pull {ref}")
            os.replace(partial, target)
        return v


def _sha256(local: str, name: str, size: int, progress: Optional[ProgressFunc]) -> str:
    h, done = hashlib.sha256(), 0
    with open(local, "rb") as fh:
        while True:
            data = fh.read(CHUNK)
            if not data:
                break
            h.update(data)
            done += len(data)
            if progress:
                progress(Progress("hash", name, done, size))
    if done != size:
        raise OSError(f"{local} changed while pushing ({done} bytes, was {size})")
    return h.hexdigest()


def _media_type(name: str) -> str:
    ext = os.path.splitext(name)[1]
    return {".json": "application/json", ".txt": "text/plain", ".md": "text/plain",
            ".gguf": "application/vnd.gguf"}.get(ext, "application/octet-stream")


def _inspect(path: str) -> dict:
    """What push needs to know about a local model."""
    if os.path.isfile(path):
        if not path.endswith(".gguf"):
            raise ValueError(f"{path}: want a .gguf file or a Hugging Face directory")
        return {"files": [{"path": GGUF_FILE, "local": path, "size": os.path.getsize(path), "media": _media_type(path)}],
                "format": model_pb2.MODEL_FORMAT_GGUF, "quant": model_pb2.QUANT_TYPE_UNSPECIFIED,
                "architecture": "", "parameters": 0, "context": 0, "vocab": 0}
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for n in sorted(names):
            local = os.path.join(root, n)
            if n.startswith(".") or n.endswith(PARTIAL) or not os.path.isfile(local):
                continue
            rel = os.path.relpath(local, path).replace(os.sep, "/")
            files.append({"path": rel, "local": local, "size": os.path.getsize(local), "media": _media_type(n)})
    files.sort(key=lambda f: f["path"])
    with open(os.path.join(path, "config.json")) as fh:
        cfg = json.load(fh)
    quant = {"float32": model_pb2.QUANT_TYPE_F32, "float16": model_pb2.QUANT_TYPE_F16,
             "bfloat16": model_pb2.QUANT_TYPE_BF16}.get(cfg.get("torch_dtype"), model_pb2.QUANT_TYPE_UNSPECIFIED)
    fmt = model_pb2.MODEL_FORMAT_HF_SAFETENSORS
    params, packed = 0, False
    for f in files:
        if f["path"].endswith(".safetensors"):
            with open(f["local"], "rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                header = json.loads(fh.read(min(n, 100 << 20)))
            for name, t in header.items():
                if name == "__metadata__" or name.endswith("_scale"):
                    continue
                count = 1
                for d in t["shape"]:
                    count *= d
                if t["dtype"] == "U8" and len(t["shape"]) == 2:
                    count, packed = count * 4, True
                params += count
    if packed or (cfg.get("quantization_config") or {}).get("quantization_mode") == "offline":
        fmt, quant = model_pb2.MODEL_FORMAT_HF_PACKED, model_pb2.QUANT_TYPE_I2_S
    return {"files": files, "format": fmt, "quant": quant, "architecture": cfg.get("model_type", ""),
            "parameters": params, "context": cfg.get("max_position_embeddings", 0), "vocab": cfg.get("vocab_size", 0)}
