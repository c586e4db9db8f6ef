"""Tests the Python client against a real fjord-broker on 127.0.0.1.

Run by Bazel (//client/python:client_test), which passes the broker binary's path
as the first argument.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from json import dumps, loads

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fjord import (FjordConsumer, FjordProducer, IllegalStateError,  # noqa: E402
                   KafkaConsumer, NoOffsetForPartitionError, TopicPartition, murmur2)
from fjord.errors import ErrorInfo, error_info  # noqa: E402

import grpc  # noqa: E402

BROKER = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PythonClientTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        cls.port = free_port()
        cls.bootstrap = f"127.0.0.1:{cls.port}"
        cls.log = open(os.path.join(cls.dir, "broker.log"), "w")
        cls.broker = subprocess.Popen(
            [BROKER, "--data-dir", os.path.join(cls.dir, "data"),
             "--listen", cls.bootstrap, "--create-topics",
             "items-list:3:1,keyed:3:1,test-topic:3:1,shared:4:1,no-reset:2:1"],
            stdout=cls.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                FjordProducer(bootstrap_servers=[cls.bootstrap])._cluster.refresh(
                    "items-list")
                break
            except grpc.RpcError:
                if time.monotonic() > deadline or cls.broker.poll() is not None:
                    raise RuntimeError("broker did not come up; log in " + cls.dir)
                time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        cls.broker.send_signal(signal.SIGTERM)
        try:
            cls.broker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            cls.broker.kill()
            cls.broker.wait()
        cls.log.close()

    def test_murmur2_matches_kafka(self):
        # Vectors from Kafka's UtilsTest.testMurmur2.
        self.assertEqual(murmur2(b"21"), -973932308)
        self.assertEqual(murmur2(b"foobar"), -790332482)
        self.assertEqual(murmur2(b"a-little-bit-long-string"), -985981536)
        self.assertEqual(murmur2(b"abc"), 479470107)

    def test_seed_producer_and_consumer(self):
        producer = FjordProducer(bootstrap_servers=[self.bootstrap],
                                 value_serializer=lambda x: dumps(x).encode("utf-8"))
        sent = [producer.send("items-list", value={"number": e}) for e in range(100)]
        # Null keys go round-robin: every partition gets a third.
        self.assertEqual(sorted({p for p, _ in sent}), [0, 1, 2])
        consumer = FjordConsumer(
            "items-list", bootstrap_servers=[self.bootstrap],
            auto_offset_reset="earliest", consumer_timeout_ms=1000,
            value_deserializer=lambda x: loads(x.decode("utf-8")))
        got = [m for m in consumer]
        numbers = [m.value["number"] for m in got]
        self.assertEqual(sorted(numbers), list(range(100)))
        for p in range(3):
            offsets = [m.offset for m in got if m.partition == p]
            self.assertEqual(offsets, sorted(offsets))

    def test_keyed_records_share_a_partition(self):
        producer = FjordProducer(bootstrap_servers=[self.bootstrap])
        parts = {producer.send("keyed", value=b"v", key=b"alice")[0]
                 for _ in range(5)}
        self.assertEqual(parts, {(murmur2(b"alice") & 0x7FFFFFFF) % 3})

    def test_errors_are_clear(self):
        producer = FjordProducer(bootstrap_servers=[self.bootstrap])
        with self.assertRaises(grpc.RpcError) as ctx:
            producer.send("no-such-topic", value=b"x")
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertIn("no-such-topic", ctx.exception.details())
        self.assertEqual(error_info(ctx.exception).reason, ErrorInfo.UNKNOWN_TOPIC)
        # A bad group id fails at once, in the constructor (which joins).
        with self.assertRaises(grpc.RpcError) as ctx:
            FjordConsumer("items-list", bootstrap_servers=[self.bootstrap],
                          group_id="items group")
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(error_info(ctx.exception).reason, ErrorInfo.INVALID_GROUP_ID)
        # Group calls without a group are refused, not ignored.
        consumer = FjordConsumer("items-list", bootstrap_servers=[self.bootstrap])
        with self.assertRaises(IllegalStateError):
            consumer.commit()
        consumer.close()
        with self.assertRaises(ValueError):
            FjordConsumer("items-list", bootstrap_servers=[self.bootstrap],
                          auto_offset_reset="none")

    def test_group_consumer_continues_where_the_group_left_off(self):
        # The seed article's flow: produce, consume everything as group
        # items-group, stop; produce more; a new consumer in the group reads
        # exactly the new records.
        producer = FjordProducer(bootstrap_servers=[self.bootstrap],
                                 value_serializer=lambda x: dumps(x).encode("utf-8"))

        def seed_consumer():
            return KafkaConsumer(
                "test-topic", bootstrap_servers=[self.bootstrap],
                auto_offset_reset="earliest", enable_auto_commit=True,
                group_id="items-group", consumer_timeout_ms=1000,
                value_deserializer=lambda x: loads(x.decode("utf-8")))

        for e in range(30):
            producer.send("test-topic", value={"number": e})
        consumer = seed_consumer()
        self.addCleanup(consumer.close)
        first = [m.value["number"] for m in consumer]
        self.assertEqual(sorted(first), list(range(30)))
        everything = {TopicPartition("test-topic", p) for p in range(3)}
        self.assertEqual(consumer.assignment(), everything)
        self.assertEqual(sum(consumer.position(tp) for tp in everything), 30)
        # Stopping committed the positions (auto-commit); commit() agrees.
        for tp in everything:
            self.assertEqual(consumer.committed(tp), consumer.position(tp))
        consumer.commit()
        consumer.close()

        for e in range(30, 50):
            producer.send("test-topic", value={"number": e})
        consumer = seed_consumer()
        self.addCleanup(consumer.close)
        second = [m.value["number"] for m in consumer]
        consumer.close()
        self.assertEqual(sorted(second), list(range(30, 50)))

    def test_group_members_share_the_partitions(self):
        producer = FjordProducer(bootstrap_servers=[self.bootstrap])
        for e in range(40):
            producer.send("shared", value=b"%d" % e)
        everything = {TopicPartition("shared", p) for p in range(4)}

        def member():
            return KafkaConsumer(
                "shared", bootstrap_servers=[self.bootstrap], group_id="sharing",
                auto_offset_reset="earliest", heartbeat_interval_ms=200)

        first, second = member(), member()
        self.addCleanup(first.close)
        self.addCleanup(second.close)
        read = []

        def poll_both_until(done, what):
            deadline = time.monotonic() + 20
            while True:
                for c in (first, second):
                    if not c._closed:
                        for records in c.poll(timeout_ms=50).values():
                            read.extend(int(r.value) for r in records)
                a, b = first.assignment(), second.assignment()
                # No partition is ever owned by both.
                self.assertFalse(a & b, f"both own {a & b}")
                if done(a, b):
                    return a, b
                self.assertLess(time.monotonic(), deadline,
                                f"{what}: first owns {sorted(a)}, second {sorted(b)}")

        a, b = poll_both_until(
            lambda a, b: a and b and a | b == everything and len(read) >= 40,
            "the members did not split the partitions")
        self.assertEqual(len(a) + len(b), 4)
        # Partitions that moved were committed by the member releasing them, and
        # the next owner continued there: every record was read exactly once.
        self.assertEqual(sorted(read), list(range(40)))

        # When one leaves, the other gets everything.
        first.close()
        poll_both_until(lambda a, b: b == everything,
                        "the remaining member did not get every partition")
        second.close()

    def test_group_without_committed_offset_and_reset_none_raises(self):
        consumer = KafkaConsumer("no-reset", bootstrap_servers=[self.bootstrap],
                                 group_id="no-reset-group", auto_offset_reset="none")
        self.addCleanup(consumer.close)
        with self.assertRaises(NoOffsetForPartitionError):
            consumer.poll(timeout_ms=100)
        consumer.close()

if __name__ == "__main__":
    BROKER = os.path.abspath(sys.argv.pop(1))
    unittest.main()
