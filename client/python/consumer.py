"""The seed article's consumer, with Fjord's Python client.

    /usr/bin/python3 client/python/consumer.py [--group items-group]
"""

import argparse
import os
import sys
from json import loads

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fjord import KafkaConsumer  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", default=os.environ.get("FJORD_BOOTSTRAP",
                                                          "localhost:9092"))
parser.add_argument("--topic", default="items-list")
parser.add_argument("--group", default="items-group")
args = parser.parse_args()

# As in the article: a member of group items-group that commits what it read, so
# the next run continues where this one stopped (the consumer is closed, which
# commits and leaves the group, when the script exits).
consumer = KafkaConsumer(
    args.topic,
    bootstrap_servers=[args.bootstrap],
    auto_offset_reset="earliest",
    enable_auto_commit=True,
    group_id=args.group,
    consumer_timeout_ms=1000,
    value_deserializer=lambda x: loads(x.decode("utf-8")))

for message in consumer:
    print(message.value)
