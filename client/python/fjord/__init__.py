"""A small Python client for Fjord, shaped like kafka-python's KafkaProducer and
KafkaConsumer so the seed article's code carries over.

It talks to the broker with gRPC stubs generated from proto/fjord/v1 (see
fjord/_stubs.py). Needs Debian's python3-grpcio and python3-protobuf (use
/usr/bin/python3) and protoc with grpc_python_plugin (protobuf-compiler-grpc);
tools/install-deps installs all of them.
"""

from fjord.client import FjordConsumer, FjordProducer, ConsumedRecord, murmur2

__all__ = ["FjordProducer", "FjordConsumer", "ConsumedRecord", "murmur2"]
