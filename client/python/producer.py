"""The seed article's producer, with Fjord's Python client.

    /usr/bin/python3 client/python/producer.py [--count N] [--interval S]
"""

import argparse
import os
import sys
from json import dumps
from time import sleep

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fjord import FjordProducer  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", default=os.environ.get("FJORD_BOOTSTRAP",
                                                          "localhost:9092"))
parser.add_argument("--topic", default="items-list")
parser.add_argument("--count", type=int, default=1000)
parser.add_argument("--interval", type=float, default=5.0)
args = parser.parse_args()

producer = FjordProducer(bootstrap_servers=[args.bootstrap],
                         value_serializer=lambda x: dumps(x).encode("utf-8"))

for e in range(args.count):
    data = {"number": e}
    producer.send(args.topic, value=data)
    print(e)
    sleep(args.interval)
