"""A consumer's side of Fjord's consumer-group protocol (proto/fjord/v1/group.proto):
finding the coordinator, joining, heartbeating in a background thread, leaving,
and the group's offset calls.

The coordinator computes assignments (KIP-848 style); the member heartbeats with
what it owns and is told what it may own. The consumer (client.py) owns the
partitions and reconciles them with the assignment on its own (iteration) thread;
this module only reports the assignment and carries what the consumer says it
owns in the next heartbeat.
"""

import logging
import threading
import time
import uuid

import grpc

from fjord import _stubs
from fjord.errors import ErrorInfo, error_info, reason_name

_stubs.ensure_generated()

from fjord.v1 import group_pb2, group_pb2_grpc  # noqa: E402

_log = logging.getLogger("fjord")

_BACKOFF_S = 0.05
_BACKOFF_MAX_S = 1.0
# How long a heartbeat may take (the coordinator writes changes acks=all before
# it answers; its own write timeout is 10 s).
_HEARTBEAT_RPC_S = 12.0
# How long close() tries to leave the group.
_LEAVE_S = 3.0
# The broker's default session timeout (--group-session-timeout-ms), assumed
# when the consumer asks for the default: after this long without an answer the
# member considers itself removed.
_DEFAULT_SESSION_MS = 45000

_RETRIABLE_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


def _grouped(tps):
    """[TopicPartitions] for an iterable of (topic, partition)."""
    by_topic = {}
    for topic, partition in tps:
        by_topic.setdefault(topic, set()).add(partition)
    return [group_pb2.TopicPartitions(topic=t, partitions=sorted(ps))
            for t, ps in sorted(by_topic.items())]


class _Closing(Exception):
    """A retry loop was interrupted because the member is closing."""


class Coordinator:
    """Calls GroupService at the group's coordinator, finding it (again) as needed.

    Retries UNAVAILABLE and DEADLINE_EXCEEDED (NOT_COORDINATOR: at the
    coordinator the error names, or found again; COORDINATOR_LOADING: after a
    short backoff) until a deadline, then raises the last error. Thread-safe.
    """

    def __init__(self, cluster, group_id, rpc_timeout_s):
        self._cluster = cluster
        self._group_id = group_id
        self._rpc_timeout = rpc_timeout_s
        self._lock = threading.Lock()
        self._address = None

    def _stub(self, address):
        return group_pb2_grpc.GroupServiceStub(self._cluster.channel(address))

    def _timeout(self, deadline, cap):
        return max(0.05, min(cap, deadline - time.monotonic()))

    def _usable(self, address, via):
        """`address`, with a wildcard host replaced by the host of `via`."""
        host, _, port = address.rpartition(":")
        if host in _WILDCARD_HOSTS and via:
            return via.rpartition(":")[0] + ":" + port
        return address

    def _find(self, deadline):
        last = None
        request = group_pb2.FindCoordinatorRequest(group_id=self._group_id)
        for address in self._cluster.bootstrap:
            try:
                r = self._stub(address).FindCoordinator(
                    request, timeout=self._timeout(deadline, self._rpc_timeout))
                return self._usable(r.address, address)
            except grpc.RpcError as e:
                if e.code() not in _RETRIABLE_CODES:
                    raise
                last = e
        raise last

    def call(self, method, request, deadline, rpc_timeout_s=None, interrupt=None,
             retry_unreleased=False):
        """GroupService.`method`(request), retried until `deadline` (monotonic).

        `interrupt` (a threading.Event) cuts backoffs short: raises _Closing.
        With retry_unreleased, FAILED_PRECONDITION UNRELEASED_INSTANCE_ID (a
        static member's predecessor has not left yet) is retried too.
        """
        cap = rpc_timeout_s or self._rpc_timeout
        backoff = _BACKOFF_S
        redirected = False
        while True:
            with self._lock:
                address = self._address
            try:
                if address is None:
                    address = self._find(deadline)
                    with self._lock:
                        self._address = address
                return getattr(self._stub(address), method)(
                    request, timeout=self._timeout(deadline, cap))
            except grpc.RpcError as e:
                info = error_info(e)
                unreleased = (e.code() == grpc.StatusCode.FAILED_PRECONDITION and
                              info.reason == ErrorInfo.UNRELEASED_INSTANCE_ID)
                if e.code() not in _RETRIABLE_CODES and not (
                        retry_unreleased and unreleased):
                    raise
                pause = True
                if info.reason == ErrorInfo.NOT_COORDINATOR and info.leader_address:
                    # Follow the named coordinator at once, but not twice in a row
                    # (brokers that disagree while leadership moves).
                    nxt = self._usable(info.leader_address, address)
                    pause = redirected
                    redirected = not redirected
                elif info.reason in (ErrorInfo.COORDINATOR_LOADING,
                                     ErrorInfo.NOT_ENOUGH_REPLICAS,
                                     ErrorInfo.OUTCOME_UNKNOWN) or unreleased:
                    nxt = address  # the right broker, not ready yet
                    redirected = False
                else:
                    # NOT_COORDINATOR without an address, SHUTTING_DOWN, a broker
                    # that cannot be reached: find the coordinator again.
                    nxt = None
                    redirected = False
                with self._lock:
                    self._address = nxt
                _log.debug("group %s: %s failed (%s, %s); retrying", self._group_id,
                           method, e.code().name, reason_name(info))
                if not pause:
                    continue
                if time.monotonic() + backoff >= deadline:
                    raise
                if interrupt is not None:
                    if interrupt.wait(backoff):
                        raise _Closing() from e
                else:
                    time.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)


class Membership:
    """A member of one group: joins, heartbeats in a background thread, leaves.

    State, guarded by one lock:
      generation  - increases whenever the member lost its partitions (removed
                    or fenced): the consumer must then drop every partition it
                    owns without committing, and what it reports owning for an
                    older generation is not sent.
      assignment  - the last answer's assignment (frozenset of (topic, partition))
                    and a version that increases when it changes.
      owned       - what the consumer says it owns (set_owned), sent with every
                    heartbeat.
      fatal       - a non-retriable error; the heartbeat thread has stopped.

    `on_change()` is called (from the heartbeat thread, without the lock) when
    the assignment, the generation or `fatal` changed, to wake the consumer.
    """

    def __init__(self, coordinator, group_id, topics, instance_id=None,
                 assignor="", session_timeout_ms=None, heartbeat_interval_ms=None,
                 join_timeout_s=30.0, on_change=lambda: None):
        self._coordinator = coordinator
        self._group_id = group_id
        self._instance_id = instance_id or ""
        self._assignor = assignor or ""
        self._session_ms = session_timeout_ms or 0
        self._session_s = (session_timeout_ms or _DEFAULT_SESSION_MS) / 1000
        self._max_interval_s = (heartbeat_interval_ms / 1000
                                if heartbeat_interval_ms else None)
        # Joins (epoch 0) are retried this long; a static member's predecessor
        # may hold its instance id for up to a session timeout.
        self._join_timeout_s = max(join_timeout_s,
                                   self._session_s + 1 if self._instance_id else 0)
        self._on_change = on_change
        self._cv = threading.Condition()
        # KIP-848 lets the client pick its member id; picking it here makes a
        # join whose answer was lost safe to retry (no second member).
        self._member_id = uuid.uuid4().hex
        self._epoch = 0
        self._generation = 0
        self._topics = sorted(set(topics))
        self._assignment = frozenset()
        self._version = 0
        self._owned = frozenset()
        self._owned_generation = 0
        self._fatal = None
        self._heartbeat_now = False
        self._next_heartbeat = 0.0
        self._last_answer = time.monotonic()
        self._may_be_member = False
        self._answered = False
        self._stopping = threading.Event()
        self._thread = None

    # -- the consumer's side ------------------------------------------------

    def join(self):
        """Joins (the first heartbeat, on the caller's thread, so that bad
        arguments fail here), then starts the heartbeat thread. Raises
        grpc.RpcError."""
        self._heartbeat(time.monotonic() + self._join_timeout_s)
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"fjord-heartbeat-{self._group_id}")
        self._thread.start()

    def snapshot(self):
        """(generation, assignment, version, fatal)."""
        with self._cv:
            return self._generation, self._assignment, self._version, self._fatal

    @property
    def generation(self):
        return self._generation

    def commit_identity(self):
        """(generation, member_id, member_epoch) for a commit."""
        with self._cv:
            return self._generation, self._member_id, self._epoch

    def set_owned(self, generation, owned, released):
        """The consumer owns `owned` (as of `generation`). After a release the
        coordinator is told at once, so the partitions can move on."""
        with self._cv:
            if generation != self._generation:
                return
            self._owned = frozenset(owned)
            self._owned_generation = generation
            if released:
                self._heartbeat_now = True
                self._cv.notify_all()

    def set_topics(self, topics):
        with self._cv:
            self._topics = sorted(set(topics))
            self._heartbeat_now = True
            self._cv.notify_all()

    def leave(self):
        """Stops the heartbeat thread and leaves the group (member_epoch -1, or -2
        for a static member, whose partitions then wait for it to come back).
        Errors are logged, not raised."""
        with self._cv:
            self._stopping.set()
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=_HEARTBEAT_RPC_S + 1)
        if not self._may_be_member:
            return
        request = group_pb2.GroupHeartbeatRequest(
            group_id=self._group_id, member_id=self._member_id,
            member_epoch=-2 if self._instance_id else -1,
            instance_id=self._instance_id)
        try:
            self._coordinator.call("Heartbeat", request,
                                   deadline=time.monotonic() + _LEAVE_S)
            self._may_be_member = False
        except grpc.RpcError as e:
            _log.warning("group %s: leaving failed (%s: %s); the coordinator will "
                         "remove member %s when its session expires", self._group_id,
                         e.code().name, e.details(), self._member_id)

    # -- the heartbeat thread -----------------------------------------------

    def _request(self):
        owned = self._owned if self._owned_generation == self._generation else ()
        return group_pb2.GroupHeartbeatRequest(
            group_id=self._group_id, member_id=self._member_id,
            member_epoch=self._epoch, instance_id=self._instance_id,
            subscribed_topics=self._topics, assignor=self._assignor,
            session_timeout_ms=self._session_ms, owned_partitions=_grouped(owned))

    def _heartbeat(self, deadline, interrupt=None):
        with self._cv:
            request = self._request()
            self._heartbeat_now = False
        joining = request.member_epoch == 0
        self._may_be_member = True
        try:
            response = self._coordinator.call(
                "Heartbeat", request, deadline, rpc_timeout_s=_HEARTBEAT_RPC_S,
                interrupt=interrupt, retry_unreleased=joining)
        except grpc.RpcError as e:
            if joining and not self._answered and e.code() not in _RETRIABLE_CODES:
                self._may_be_member = False  # refused: never became a member
            raise
        now = time.monotonic()
        assignment = frozenset((tp.topic, p) for tp in response.assignment
                               for p in tp.partitions)
        interval = (response.heartbeat_interval_ms or 3000) / 1000
        if self._max_interval_s is not None:
            interval = min(interval, self._max_interval_s)
        with self._cv:
            changed = assignment != self._assignment
            self._member_id = response.member_id or self._member_id
            self._epoch = response.member_epoch
            if changed:
                self._assignment = assignment
                self._version += 1
            self._last_answer = now
            self._answered = True
            self._next_heartbeat = now + interval
        if joining:
            _log.info("group %s: joined as member %s (epoch %d)", self._group_id,
                      self._member_id, response.member_epoch)
        if changed:
            self._on_change()

    def _lose(self, why):
        """The member lost its partitions: the consumer drops them without
        committing, and the next heartbeat joins again (epoch 0, same id)."""
        _log.warning("group %s: member %s lost its partitions (%s); joining again",
                     self._group_id, self._member_id, why)
        with self._cv:
            self._generation += 1
            self._epoch = 0
            self._assignment = frozenset()
            self._version += 1
            self._heartbeat_now = True
        self._on_change()

    def _fail(self, error):
        _log.error("group %s: %s; the consumer stops", self._group_id, error)
        with self._cv:
            self._fatal = error
            self._version += 1
        self._on_change()

    def _run(self):
        while True:
            with self._cv:
                while (not self._stopping.is_set() and not self._heartbeat_now and
                       time.monotonic() < self._next_heartbeat):
                    self._cv.wait(self._next_heartbeat - time.monotonic())
                if self._stopping.is_set():
                    return
                joining = self._epoch == 0
                # A member retries until its session would have expired; a
                # join, for the join timeout.
                deadline = (time.monotonic() + self._join_timeout_s if joining
                            else self._last_answer + self._session_s)
            try:
                self._heartbeat(deadline, interrupt=self._stopping)
            except _Closing:
                return
            except grpc.RpcError as e:
                if self._stopping.is_set():
                    return
                info = error_info(e)
                if (e.code() == grpc.StatusCode.FAILED_PRECONDITION and
                        info.reason in (ErrorInfo.UNKNOWN_MEMBER_ID,
                                        ErrorInfo.FENCED_MEMBER_EPOCH)):
                    self._lose(f"{reason_name(info)}: {e.details()}")
                elif e.code() in _RETRIABLE_CODES and not joining:
                    self._lose(f"no answer from the coordinator for the session "
                               f"timeout ({e.code().name}: {e.details()})")
                else:
                    self._fail(e)
                    return
            except Exception as e:  # a bug: surface it rather than die silently
                self._fail(e)
                return
