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
from fjord import FjordConsumer, FjordProducer, murmur2  # noqa: E402

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
             "--listen", cls.bootstrap, "--create-topics", "items-list:3:1,keyed:3:1"],
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
        with self.assertRaises(NotImplementedError):
            FjordConsumer("items-list", bootstrap_servers=[self.bootstrap],
                          group_id="items-group")


if __name__ == "__main__":
    BROKER = os.path.abspath(sys.argv.pop(1))
    unittest.main()
