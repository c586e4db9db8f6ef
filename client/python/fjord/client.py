"""FjordProducer and FjordConsumer: kafka-python's shapes over Fjord's gRPC API."""

import atexit
import collections
import itertools
import logging
import queue
import threading
import time
import weakref

import grpc

from fjord import _group, _stubs
from fjord.errors import (CommitFailedError, FjordError, IllegalStateError,
                          NoOffsetForPartitionError, error_info, reason_name)

_stubs.ensure_generated()

from fjord.v1 import fetch_pb2, fetch_pb2_grpc  # noqa: E402
from fjord.v1 import group_pb2  # noqa: E402
from fjord.v1 import metadata_pb2, metadata_pb2_grpc  # noqa: E402
from fjord.v1 import produce_pb2, produce_pb2_grpc  # noqa: E402
from fjord.v1 import record_pb2  # noqa: E402

_log = logging.getLogger("fjord")

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
        self._lock = threading.Lock()
        self._channels = {}
        self._brokers = {}
        self._topics = {}

    @property
    def bootstrap(self):
        return list(self._bootstrap)

    def channel(self, address):
        with self._lock:
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
        partitions = self.topic(topic).partitions
        if partition >= len(partitions):  # the topic grew since we last looked
            partitions = self.refresh(topic).partitions
        info = partitions[partition]
        return self.channel(self._brokers[info.leader_id])

    def close(self):
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for ch in channels:
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


TopicPartition = collections.namedtuple("TopicPartition", ["topic", "partition"])
OffsetAndMetadata = collections.namedtuple("OffsetAndMetadata", ["offset", "metadata"])

# Put into a consumer's queue by the heartbeat thread to wake the iteration
# thread when the group's answer changed.
_WAKE = object()

# Consumers in a group that are still open: closed (committed, left) at exit, so
# that a script that just iterates and ends, like the seed article's, hands its
# partitions and offsets to the next consumer at once.
_open_group_consumers = weakref.WeakSet()


@atexit.register
def _close_open_group_consumers():
    for consumer in list(_open_group_consumers):
        try:
            consumer.close()
        except Exception:  # nothing useful to do about it at exit
            pass


def _tp(tp):
    return tp if isinstance(tp, TopicPartition) else TopicPartition(*tp)


class _Fetcher:
    """Streams one partition from an offset into a consumer's queue as
    (fetcher, record) items, then (fetcher, grpc.RpcError) if the stream fails.
    After stop() it puts nothing more."""

    def __init__(self, stub, out, tp, offset, max_wait_ms):
        self.tp = tp
        self._out = out
        self._stopped = threading.Event()
        self._call = stub.Fetch(fetch_pb2.FetchRequest(
            topic=tp.topic, partition=tp.partition, offset=offset,
            max_wait_ms=max_wait_ms))
        threading.Thread(target=self._pump, daemon=True,
                         name=f"fjord-fetch-{tp.topic}-{tp.partition}").start()

    def _pump(self):
        try:
            for response in self._call:
                for rec in response.records:
                    if not self._put(rec):
                        return
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                self._put(e)

    def _put(self, item):
        while not self._stopped.is_set():
            try:
                self._out.put((self, item), timeout=0.2)
                return True
            except queue.Full:
                pass
        return False

    def stop(self):
        self._stopped.set()
        self._call.cancel()


class FjordConsumer:
    """Reads records, like kafka-python's KafkaConsumer: iterate over it (or call
    poll()); iteration stops after consumer_timeout_ms without a record (never
    when None).

    Without group_id it reads every partition of the given topics, starting at
    each partition's log start ('earliest') or end ('latest', the default), and
    closes itself when iteration stops.

    With group_id it is a member of that consumer group (proto/fjord/v1/
    group.proto): the group's coordinator shares the subscribed topics'
    partitions among the members, and each partition starts at the group's
    committed offset, or where auto_offset_reset says when there is none
    ('earliest', 'latest', or 'none': raise NoOffsetForPartitionError). A
    background thread heartbeats; the partitions themselves are taken and
    released on the iterating thread, in __next__/poll(). With
    enable_auto_commit the positions (the next offset to return) of the owned
    partitions are committed every auto_commit_interval_ms, when a partition
    moves to another member, when iteration stops, and on close(). close()
    leaves the group (and is called at interpreter exit if the program did not).

    group_instance_id makes the member static: close() then leaves with epoch -2
    and its partitions wait for it (up to the session timeout) instead of moving.
    session_timeout_ms None means the broker's default (45 s);
    heartbeat_interval_ms, when given, caps the interval the coordinator asks for;
    group_remote_assignor is 'uniform' (the broker's default) or 'range'.
    """

    def __init__(self, *topics, bootstrap_servers=("127.0.0.1:9092",),
                 group_id=None, group_instance_id=None, auto_offset_reset="latest",
                 enable_auto_commit=True, auto_commit_interval_ms=5000,
                 session_timeout_ms=None, heartbeat_interval_ms=None,
                 group_remote_assignor=None, consumer_timeout_ms=None,
                 value_deserializer=None, key_deserializer=None,
                 fetch_max_wait_ms=500, max_poll_records=500,
                 request_timeout_ms=30000):
        if auto_offset_reset not in ("earliest", "latest", "none"):
            raise ValueError("auto_offset_reset must be 'earliest', 'latest' or 'none'")
        if group_id is None and auto_offset_reset == "none":
            raise ValueError("auto_offset_reset='none' needs a group_id (without a "
                             "group there is no committed offset to start from)")
        if group_id is None and group_instance_id is not None:
            raise ValueError("group_instance_id needs a group_id")
        self._request_timeout_s = request_timeout_ms / 1000
        self._cluster = _Cluster(bootstrap_servers, self._request_timeout_s)
        self._timeout_s = (None if consumer_timeout_ms in (None, float("inf"))
                           else consumer_timeout_ms / 1000)
        self._value_deserializer = value_deserializer or (lambda v: v)
        self._key_deserializer = key_deserializer or (lambda k: k)
        self._reset = auto_offset_reset
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._max_poll_records = max_poll_records
        self._queue = queue.Queue(maxsize=10000)
        self._closed = False
        self._fetchers = {}   # TopicPartition -> _Fetcher
        self._positions = {}  # TopicPartition -> the next offset to return
        self._subscription = ()

        self._group_id = group_id
        self._group_options = dict(
            instance_id=group_instance_id, assignor=group_remote_assignor,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            join_timeout_s=self._request_timeout_s, on_change=self._wake)
        self._auto_commit = bool(enable_auto_commit) and group_id is not None
        self._auto_commit_interval_s = auto_commit_interval_ms / 1000
        self._next_auto_commit = time.monotonic() + self._auto_commit_interval_s
        self._coordinator = (_group.Coordinator(self._cluster, group_id,
                                                self._request_timeout_s)
                             if group_id is not None else None)
        self._membership = None
        self._owned_generation = 0  # the membership generation of what we own
        self._seen_version = None   # the assignment version reconciled last
        self._committed = {}        # TopicPartition -> offset we last committed
        if topics:
            try:
                self.subscribe(topics)
            except BaseException:
                self._shutdown()
                raise

    # -- subscription and assignment -----------------------------------------

    def subscribe(self, topics=(), pattern=None, listener=None):
        """Subscribes to `topics` (replacing the previous subscription). With a
        group, joins it (the first time) or tells the coordinator; without one,
        takes every partition of the topics."""
        if pattern is not None or listener is not None:
            raise NotImplementedError("subscribing by pattern, and rebalance "
                                      "listeners, are not supported")
        if isinstance(topics, str):
            topics = [topics]
        topics = list(dict.fromkeys(topics))
        if not topics:
            raise ValueError("subscribe() needs at least one topic")
        self._check_open()
        if self._group_id is None:
            self._assign_all(topics)
        elif self._membership is None:
            membership = _group.Membership(self._coordinator, self._group_id, topics,
                                           **self._group_options)
            membership.join()
            self._membership = membership
            _open_group_consumers.add(self)
        else:
            self._membership.set_topics(topics)
        self._subscription = tuple(topics)

    def subscription(self):
        return set(self._subscription)

    def assignment(self):
        """The partitions this consumer owns now (a set of TopicPartition)."""
        return set(self._positions)

    def position(self, tp):
        """The offset of the next record this consumer will return for `tp`."""
        tp = _tp(tp)
        if tp not in self._positions:
            raise IllegalStateError(f"{tp} is not assigned to this consumer")
        return self._positions[tp]

    def seek(self, tp, offset):
        """Makes the next record returned for `tp` the one at `offset`."""
        tp = _tp(tp)
        if tp not in self._positions:
            raise IllegalStateError(f"cannot seek {tp}: it is not assigned to this "
                                    "consumer")
        if offset < 0:
            raise ValueError("offset must be >= 0")
        self._fetchers.pop(tp).stop()
        self._start(tp, offset)

    def seek_to_beginning(self, *partitions):
        for tp in partitions or list(self._positions):
            self.seek(tp, self._list_offset(_tp(tp), "earliest"))

    def seek_to_end(self, *partitions):
        for tp in partitions or list(self._positions):
            self.seek(tp, self._list_offset(_tp(tp), "latest"))

    # -- offsets --------------------------------------------------------------

    def commit(self, offsets=None):
        """Commits `offsets` ({TopicPartition: offset or OffsetAndMetadata}), by
        default the positions of every owned partition; returns when the group
        has them. Raises CommitFailedError when the member no longer owns them."""
        self._check_group("commit()")
        self._check_open()
        if offsets is None:
            self._reconcile()
            todo = {tp: (pos, "") for tp, pos in self._positions.items()}
        else:
            todo = {}
            for tp, v in offsets.items():
                if isinstance(v, int):
                    todo[_tp(tp)] = (v, "")
                else:
                    todo[_tp(tp)] = (v.offset, getattr(v, "metadata", "") or "")
        self._commit(todo)

    def committed(self, tp, metadata=False):
        """The group's committed offset for `tp` (None when there is none), or
        an OffsetAndMetadata with metadata=True."""
        self._check_group("committed()")
        self._check_open()
        tp = _tp(tp)
        response = self._coordinator.call(
            "FetchOffsets", group_pb2.FetchOffsetsRequest(
                group_id=self._group_id, partitions=_group._grouped([tp])),
            deadline=time.monotonic() + self._request_timeout_s)
        for o in response.offsets:
            if (o.topic, o.partition) == tp and o.offset >= 0:
                return OffsetAndMetadata(o.offset, o.metadata) if metadata else o.offset
        return None

    # -- reading --------------------------------------------------------------

    def __iter__(self):
        return self

    def __next__(self):
        if self._closed:
            raise StopIteration
        deadline = None if self._timeout_s is None else time.monotonic() + self._timeout_s
        while True:
            self._housekeeping()
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                self._iteration_timed_out()
                raise StopIteration
            record = self._take(item)
            if record is not None:
                return record

    def poll(self, timeout_ms=0, max_records=None, update_offsets=True):
        """Returns {TopicPartition: [records]}: what arrives within timeout_ms, at
        most max_records (max_poll_records by default)."""
        del update_offsets  # positions always advance, as in kafka-python's default
        self._check_open()
        limit = max_records or self._max_poll_records
        deadline = time.monotonic() + timeout_ms / 1000
        out = {}
        n = 0
        while n < limit:
            self._housekeeping()
            try:
                if n == 0:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                break
            record = self._take(item)
            if record is not None:
                out.setdefault(TopicPartition(record.topic, record.partition),
                               []).append(record)
                n += 1
        return out

    def close(self, autocommit=True):
        """With a group: commits the positions (if enable_auto_commit), leaves the
        group. Then stops reading. Idempotent."""
        if self._closed:
            return
        self._closed = True
        _open_group_consumers.discard(self)
        try:
            if self._membership is not None:
                if (autocommit and self._auto_commit and
                        self._membership.generation == self._owned_generation):
                    self._commit_quietly(list(self._positions), "on close")
                for f in self._fetchers.values():
                    f.stop()
                self._membership.leave()
        finally:
            self._shutdown()

    # -- internals --------------------------------------------------------------

    def _shutdown(self):
        self._closed = True
        _open_group_consumers.discard(self)
        for f in self._fetchers.values():
            f.stop()
        self._fetchers.clear()
        self._positions.clear()
        self._cluster.close()

    def _check_open(self):
        if self._closed:
            raise IllegalStateError("the consumer is closed")

    def _check_group(self, what):
        if self._group_id is None:
            raise IllegalStateError(f"{what} needs a group_id")

    def _wake(self):
        try:
            self._queue.put_nowait(_WAKE)
        except queue.Full:  # the iterating thread has items to wake it anyway
            pass

    def _start(self, tp, offset):
        stub = fetch_pb2_grpc.FetchServiceStub(self._cluster.leader(tp.topic, tp.partition))
        self._fetchers[tp] = _Fetcher(stub, self._queue, tp, offset,
                                      self._fetch_max_wait_ms)
        self._positions[tp] = offset

    def _drop(self, tps):
        for tp in tps:
            fetcher = self._fetchers.pop(tp, None)
            if fetcher is not None:
                fetcher.stop()
            self._positions.pop(tp, None)
            self._committed.pop(tp, None)

    def _list_offset(self, tp, reset):
        if reset == "none":
            raise NoOffsetForPartitionError(
                f"group {self._group_id} has no committed offset for {tp} (or it is "
                "out of range) and auto_offset_reset is 'none'")
        spec = (fetch_pb2.ListOffsetsRequest.EARLIEST if reset == "earliest"
                else fetch_pb2.ListOffsetsRequest.LATEST)
        stub = fetch_pb2_grpc.FetchServiceStub(self._cluster.leader(tp.topic, tp.partition))
        return stub.ListOffsets(fetch_pb2.ListOffsetsRequest(
            topic=tp.topic, partition=tp.partition, spec=spec),
            timeout=self._request_timeout_s).offset

    def _assign_all(self, topics):
        """Without a group: every partition of `topics`, new ones from
        auto_offset_reset."""
        wanted = []
        for topic in topics:
            for p in self._cluster.topic(topic).partitions:
                wanted.append(TopicPartition(topic, p.partition))
        self._drop([tp for tp in list(self._positions) if tp not in set(wanted)])
        for tp in wanted:
            if tp not in self._positions:
                self._start(tp, self._list_offset(tp, self._reset))

    def _take(self, item):
        """The record an item of the queue carries, or None when it is to be
        skipped (a wake-up, or from a partition no longer read from there)."""
        if item is _WAKE:
            return None
        fetcher, payload = item
        tp = fetcher.tp
        if self._fetchers.get(tp) is not fetcher:
            return None
        if (self._membership is not None and
                self._membership.generation != self._owned_generation):
            return None  # the member lost its partitions; _reconcile drops them
        if isinstance(payload, grpc.RpcError):
            if (self._membership is not None and
                    payload.code() == grpc.StatusCode.OUT_OF_RANGE):
                # E.g. a committed offset below the log start (retention).
                offset = self._list_offset(tp, self._reset)
                _log.warning("%s: offset %d is out of range (%s); resetting to %d (%s)",
                             tp, self._positions[tp], payload.details(), offset,
                             self._reset)
                self._fetchers.pop(tp).stop()
                self._start(tp, offset)
                return None
            raise payload
        if payload.offset < self._positions[tp]:
            return None
        # Deserialize first: a deserializer that raises leaves the position at
        # the record.
        record = ConsumedRecord(tp.topic, tp.partition, payload,
                                self._value_deserializer, self._key_deserializer)
        self._positions[tp] = payload.offset + 1
        return record

    def _iteration_timed_out(self):
        if self._membership is None:
            self.close()
        elif self._auto_commit:
            # Stay in the group (iterating again continues), but make what was
            # read so far durable.
            self._commit_quietly(list(self._positions), "after consumer_timeout_ms")

    def _housekeeping(self):
        if self._membership is None:
            return
        self._reconcile()
        if self._auto_commit and time.monotonic() >= self._next_auto_commit:
            self._commit_quietly(list(self._positions), "auto-commit")
            self._next_auto_commit = time.monotonic() + self._auto_commit_interval_s

    def _reconcile(self):
        """Brings what this consumer owns in line with the group's last answer:
        releases what it no longer has (committing first, with auto-commit) and
        takes what it newly has (from the committed offset or auto_offset_reset).
        """
        if self._membership is None:
            return
        generation, assignment, version, fatal = self._membership.snapshot()
        if fatal is not None:
            raise fatal
        if generation != self._owned_generation:
            # Removed or fenced: the partitions may belong to another member
            # already, so they are dropped without committing.
            self._drop(list(self._positions))
            self._owned_generation = generation
            self._membership.set_owned(generation, (), released=False)
        if version == self._seen_version:
            return
        assignment = {TopicPartition(t, p) for t, p in assignment}
        owned = set(self._positions)
        revoked = owned - assignment
        added = assignment - owned
        if revoked:
            if self._auto_commit:
                self._commit_quietly(revoked, "before releasing them")
            self._drop(revoked)
            _log.info("group %s: released %s", self._group_id, sorted(revoked))
            self._membership.set_owned(generation, self._positions, released=True)
        if added:
            for tp, offset in sorted(self._starting_offsets(added).items()):
                self._start(tp, offset)
            _log.info("group %s: took %s", self._group_id, sorted(added))
            self._membership.set_owned(generation, self._positions, released=False)
        self._seen_version = version

    def _starting_offsets(self, tps):
        response = self._coordinator.call(
            "FetchOffsets", group_pb2.FetchOffsetsRequest(
                group_id=self._group_id, partitions=_group._grouped(tps)),
            deadline=time.monotonic() + self._request_timeout_s)
        committed = {TopicPartition(o.topic, o.partition): o.offset
                     for o in response.offsets}
        out = {}
        for tp in tps:
            offset = committed.get(tp, -1)
            if offset >= 0:
                out[tp] = offset
                self._committed[tp] = offset
            else:
                out[tp] = self._list_offset(tp, self._reset)
        return out

    def _commit(self, offsets):
        """Commits {TopicPartition: (offset, metadata)}; raises CommitFailedError
        or grpc.RpcError."""
        if not offsets:
            return
        generation, member_id, epoch = self._membership.commit_identity()
        if generation != self._owned_generation:
            raise CommitFailedError(f"group {self._group_id}: the member lost its "
                                    "partitions; nothing was committed")
        request = group_pb2.CommitOffsetsRequest(
            group_id=self._group_id, member_id=member_id, member_epoch=epoch,
            offsets=[group_pb2.OffsetToCommit(topic=tp.topic, partition=tp.partition,
                                              offset=offset, metadata=metadata)
                     for tp, (offset, metadata) in sorted(offsets.items())])
        try:
            self._coordinator.call("CommitOffsets", request,
                                   deadline=time.monotonic() + self._request_timeout_s)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise CommitFailedError(
                    f"group {self._group_id}: commit refused "
                    f"({reason_name(error_info(e))}): {e.details()}") from e
            raise
        for tp, (offset, _) in offsets.items():
            if tp in self._positions:
                self._committed[tp] = offset

    def _commit_quietly(self, tps, why):
        """Commits the positions of `tps` that changed since we last committed
        them; logs rather than raises."""
        todo = {tp: (self._positions[tp], "") for tp in tps
                if tp in self._positions and
                self._committed.get(tp) != self._positions[tp]}
        try:
            self._commit(todo)
        except (FjordError, grpc.RpcError) as e:
            _log.warning("group %s: commit %s failed: %s", self._group_id, why, e)
