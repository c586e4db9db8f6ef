"""Generated C++ (and gRPC) code from .proto files with the system protoc.

Bazel's native cc_proto_library needs a protobuf repository that cannot be fetched
offline, so a genrule runs Debian's protoc and grpc_cpp_plugin instead. Protos live
under proto/ and import each other by paths relative to proto/ (for example
"fjord/v1/record.proto"); generated headers are included the same way.
"""

def fjord_cc_proto_library(name, srcs, grpc = True, deps = [], visibility = None):
    """Declares a cc_library `name` holding the generated code for `srcs`.

    Args:
      name: target name.
      srcs: .proto files under //proto.
      grpc: also generate service stubs.
      deps: other fjord_cc_proto_library targets whose protos `srcs` import.
      visibility: as usual.
    """
    outs = []
    for src in srcs:
        base = src[:-len(".proto")]
        outs += [base + ".pb.h", base + ".pb.cc"]
        if grpc:
            outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]

    # The import path root is the proto/ directory of this workspace.
    dep_protos = [d + "_srcs" for d in deps]
    cmd = "protoc -I$$(dirname $(location //proto:ROOT)) --cpp_out=$(GENDIR)/proto "
    if grpc:
        cmd += "--grpc_out=$(GENDIR)/proto --plugin=protoc-gen-grpc=$$(which grpc_cpp_plugin) "
    cmd += " ".join(["$(location %s)" % s for s in srcs])

    native.filegroup(
        name = name + "_srcs",
        srcs = srcs + dep_protos,
        visibility = visibility,
    )
    native.genrule(
        name = name + "_gen",
        srcs = srcs + dep_protos + ["//proto:ROOT"],
        outs = outs,
        cmd = cmd,
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        strip_include_prefix = "/proto",
        deps = deps + ["//third_party:grpc", "//third_party:protobuf"],
        visibility = visibility,
    )
