"""The seed article's consumer, with Fjord's Python client.

    /usr/bin/python3 client/python/consumer.py
"""

import argparse
import os
import sys
from json import loads

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fjord import FjordConsumer  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", default=os.environ.get("FJORD_BOOTSTRAP",
                                                          "localhost:9092"))
parser.add_argument("--topic", default="items-list")
args = parser.parse_args()

consumer = FjordConsumer(
    args.topic,
    bootstrap_servers=[args.bootstrap],
    auto_offset_reset="earliest",
    consumer_timeout_ms=1000,
    value_deserializer=lambda x: loads(x.decode("utf-8")))

for message in consumer:
    print(message.value)
