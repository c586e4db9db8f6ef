"""A small Python client for Fjord, shaped like kafka-python's KafkaProducer and
KafkaConsumer so the seed article's code carries over.

It talks to the broker with gRPC stubs generated from proto/fjord/v1 (see
fjord/_stubs.py). Needs Debian's python3-grpcio and python3-protobuf (use
/usr/bin/python3) and protoc with grpc_python_plugin (protobuf-compiler-grpc);
tools/install-deps installs all of them.
"""

from fjord.client import (ConsumedRecord, FjordConsumer, FjordProducer,
                          OffsetAndMetadata, TopicPartition, murmur2)
from fjord.errors import (CommitFailedError, FjordError, IllegalStateError,
                          NoOffsetForPartitionError)

# kafka-python's names, so that its code carries over with only the import changed.
KafkaConsumer = FjordConsumer
KafkaProducer = FjordProducer

__all__ = ["FjordProducer", "FjordConsumer", "KafkaProducer", "KafkaConsumer",
           "ConsumedRecord", "TopicPartition", "OffsetAndMetadata", "murmur2",
           "FjordError", "CommitFailedError", "IllegalStateError",
           "NoOffsetForPartitionError"]
