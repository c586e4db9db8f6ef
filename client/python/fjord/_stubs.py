"""Generates the Python gRPC stubs for proto/fjord/v1 on first use.

protoc writes them into this package, as the subpackage fjord.v1 (the proto
package's own name), so the generated modules' imports ("from fjord.v1 import
record_pb2") resolve to them. They are regenerated whenever the protos change and
are not committed (see .gitignore).
"""

import hashlib
import os
import shutil
import subprocess

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_OUT = os.path.dirname(_PACKAGE_DIR)
_PROTO_ROOT = os.path.abspath(os.path.join(_OUT, "..", "..", "proto"))
_PROTOS = ["fjord/v1/record.proto", "fjord/v1/produce.proto",
           "fjord/v1/fetch.proto", "fjord/v1/metadata.proto",
           "fjord/v1/admin.proto", "fjord/v1/group.proto"]


def _digest():
    h = hashlib.sha256()
    for p in _PROTOS:
        with open(os.path.join(_PROTO_ROOT, p), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def ensure_generated():
    marker = os.path.join(_PACKAGE_DIR, "v1", ".digest")
    digest = _digest()
    try:
        with open(marker) as f:
            if f.read() == digest:
                return
    except FileNotFoundError:
        pass
    plugin = shutil.which("grpc_python_plugin")
    if plugin is None or shutil.which("protoc") is None:
        raise RuntimeError("protoc and grpc_python_plugin are needed to generate "
                           "the Fjord stubs; run tools/install-deps")
    subprocess.run(
        ["protoc", "-I", _PROTO_ROOT, "--python_out", _OUT, "--grpc_out", _OUT,
         "--plugin=protoc-gen-grpc=" + plugin] + _PROTOS,
        check=True)
    open(os.path.join(_PACKAGE_DIR, "v1", "__init__.py"), "a").close()
    with open(marker, "w") as f:
        f.write(digest)
