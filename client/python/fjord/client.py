"""FjordProducer and FjordConsumer: kafka-python's shapes over Fjord's gRPC API."""

import itertools
import queue
import threading
import time

import grpc

from fjord import _stubs

_stubs.ensure_generated()

from fjord.v1 import fetch_pb2, fetch_pb2_grpc  # noqa: E402
from fjord.v1 import metadata_pb2, metadata_pb2_grpc  # noqa: E402
from fjord.v1 import produce_pb2, produce_pb2_grpc  # noqa: E402
from fjord.v1 import record_pb2  # noqa: E402

_ACKS = {0: record_pb2.ACKS_NONE, 1: record_pb2.ACKS_LEADER,
         "all": record_pb2.ACKS_ALL, -1: record_pb2.ACKS_ALL}


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (Utils.murmur2), as a signed 32-bit int."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def _partition_for_key(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class _Cluster:
    """Channels to the brokers and the topic table from Metadata."""

    def __init__(self, bootstrap_servers, timeout_s):
        if isinstance(bootstrap_servers, str):
            bootstrap_servers = bootstrap_servers.split(",")
        self._bootstrap = [s.replace("localhost", "127.0.0.1")
                           for s in bootstrap_servers]
        self._timeout = timeout_s
        self._channels = {}
        self._brokers = {}
        self._topics = {}

    def channel(self, address):
        if address not in self._channels:
            self._channels[address] = grpc.insecure_channel(address)
        return self._channels[address]

    def refresh(self, topic):
        last = None
        for address in self._bootstrap:
            try:
                stub = metadata_pb2_grpc.MetadataServiceStub(self.channel(address))
                md = stub.Metadata(metadata_pb2.MetadataRequest(topics=[topic]),
                                   timeout=self._timeout)
                break
            except grpc.RpcError as e:
                last = e
                if e.code() not in (grpc.StatusCode.UNAVAILABLE,
                                    grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
        else:
            raise last
        self._brokers = {b.id: f"{b.host}:{b.port}" for b in md.brokers}
        for t in md.topics:
            self._topics[t.name] = t
        return self._topics[topic]

    def topic(self, topic):
        return self._topics.get(topic) or self.refresh(topic)

    def leader(self, topic, partition):
        info = self.topic(topic).partitions[partition]
        return self.channel(self._brokers[info.leader_id])

    def close(self):
        for ch in self._channels.values():
            ch.close()


class FjordProducer:
    """Sends records, like kafka-python's KafkaProducer.

    send() returns after the broker acknowledged the record (one request per
    record: simple, not fast; the C++ client batches). Retries UNAVAILABLE with
    backoff up to `retries` times.
    """

    def __init__(self, bootstrap_servers=("127.0.0.1:9092",), value_serializer=None,
                 key_serializer=None, acks="all", retries=5, request_timeout_ms=30000):
        self._cluster = _Cluster(bootstrap_servers, request_timeout_ms / 1000)
        self._value_serializer = value_serializer or (lambda v: v)
        self._key_serializer = key_serializer or (lambda k: k)
        self._acks = _ACKS[acks]
        self._retries = retries
        self._timeout = request_timeout_ms / 1000
        self._round_robin = {}

    def send(self, topic, value=None, key=None, partition=None, headers=None):
        """Returns (partition, offset) once acknowledged; raises grpc.RpcError."""
        value = self._value_serializer(value) if value is not None else b""
        record = record_pb2.Record(value=value)
        if key is not None:
            record.key = self._key_serializer(key)
        for hk, hv in headers or []:
            record.headers.add(key=hk, value=hv)
        count = len(self._cluster.topic(topic).partitions)
        if partition is None:
            if key is not None:
                partition = _partition_for_key(record.key, count)
            else:
                rr = self._round_robin.setdefault(topic, itertools.count())
                partition = next(rr) % count
        request = produce_pb2.ProduceRequest(topic=topic, partition=partition,
                                             records=[record], acks=self._acks)
        for attempt in itertools.count():
            stub = produce_pb2_grpc.ProduceServiceStub(
                self._cluster.leader(topic, partition))
            try:
                response = stub.Produce(request, timeout=self._timeout)
                return partition, response.base_offset
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or attempt >= self._retries:
                    raise
                time.sleep(min(0.1 * 2 ** attempt, 2.0))
                self._cluster.refresh(topic)

    def flush(self):
        """Every send() is already acknowledged when it returns."""

    def close(self):
        self._cluster.close()


class ConsumedRecord:
    """One record, with kafka-python's attribute names."""

    def __init__(self, topic, partition, rec, value_deserializer, key_deserializer):
        self.topic = topic
        self.partition = partition
        self.offset = rec.offset
        self.timestamp = rec.timestamp_ms
        self.key = key_deserializer(rec.key) if rec.HasField("key") else None
        self.value = value_deserializer(rec.value)
        self.headers = [(h.key, h.value) for h in rec.headers]

    def __repr__(self):
        return (f"ConsumedRecord(topic={self.topic!r}, partition={self.partition}, "
                f"offset={self.offset}, key={self.key!r}, value={self.value!r})")


class FjordConsumer:
    """Reads every partition of the given topics, like kafka-python's KafkaConsumer
    without a group: iterate over it; iteration stops after consumer_timeout_ms
    without a record (forever when None).

    auto_offset_reset: 'earliest' starts at each partition's log start, 'latest'
    at its end. Consumer groups (group_id) are not available in Fjord yet, so
    passing one is an error rather than being silently ignored.
    """

    def __init__(self, *topics, bootstrap_servers=("127.0.0.1:9092",),
                 auto_offset_reset="latest", consumer_timeout_ms=None,
                 value_deserializer=None, key_deserializer=None, group_id=None,
                 fetch_max_wait_ms=500):
        if group_id is not None:
            raise NotImplementedError(
                "consumer groups are not available in Fjord yet; omit group_id")
        if auto_offset_reset not in ("earliest", "latest"):
            raise ValueError("auto_offset_reset must be 'earliest' or 'latest'")
        self._cluster = _Cluster(bootstrap_servers, 30)
        self._timeout_s = None if consumer_timeout_ms is None else consumer_timeout_ms / 1000
        self._value_deserializer = value_deserializer or (lambda v: v)
        self._key_deserializer = key_deserializer or (lambda k: k)
        self._queue = queue.Queue(maxsize=10000)
        self._calls = []
        self._closed = threading.Event()
        spec = (fetch_pb2.ListOffsetsRequest.EARLIEST if auto_offset_reset == "earliest"
                else fetch_pb2.ListOffsetsRequest.LATEST)
        for topic in topics:
            for p in self._cluster.topic(topic).partitions:
                stub = fetch_pb2_grpc.FetchServiceStub(
                    self._cluster.leader(topic, p.partition))
                start = stub.ListOffsets(fetch_pb2.ListOffsetsRequest(
                    topic=topic, partition=p.partition, spec=spec), timeout=30).offset
                call = stub.Fetch(fetch_pb2.FetchRequest(
                    topic=topic, partition=p.partition, offset=start,
                    max_wait_ms=fetch_max_wait_ms))
                self._calls.append(call)
                threading.Thread(target=self._pump, args=(topic, p.partition, call),
                                 daemon=True).start()

    def _pump(self, topic, partition, call):
        try:
            for response in call:
                for rec in response.records:
                    self._queue.put((topic, partition, rec))
        except grpc.RpcError as e:
            if not self._closed.is_set() and e.code() != grpc.StatusCode.CANCELLED:
                self._queue.put(e)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            item = self._queue.get(timeout=self._timeout_s)
        except queue.Empty:
            self.close()
            raise StopIteration
        if isinstance(item, grpc.RpcError):
            raise item
        topic, partition, rec = item
        return ConsumedRecord(topic, partition, rec, self._value_deserializer,
                              self._key_deserializer)

    def close(self):
        self._closed.set()
        for call in self._calls:
            call.cancel()
        self._cluster.close()
