#!/usr/bin/env python3
"""A subscriber of healthsignals in Python (docs/subscribers.md): reads hs.target-status.v1 or hs.alerts.v1
from the beginning with read_committed, decodes each value with the code protoc generates from proto/, and
prints one line per record:

    KEY CE_ID STATUS value=V target=T                                  hs.target-status.v1 (target - if absent)
    KEY CE_ID STATE SEVERITY period=P value=V threshold=T startsAt=S endsAt=E    hs.alerts.v1 (endsAt - if firing)
    KEY CE_ID deleted                                                  a tombstone: the key was deleted

It stops once it has read every partition up to its end (the last stable offset), or goes on with --follow.
It joins no consumer group and commits nothing: a table subscriber reads the whole compacted topic at each
start and keeps the latest value per key.

    protoc -I proto --python_out=gen proto/healthsignals/v1/*.proto
    pip install confluent-kafka protobuf==4.21.*      # protobuf 4.21 for protoc 3.21
    PYTHONPATH=gen python3 subscribe.py 127.0.0.1:9092 hs.target-status.v1

usage: subscribe.py BOOTSTRAP TOPIC [--follow]
"""
import sys

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from healthsignals.v1 import alert_pb2, common_pb2, target_status_pb2


def enum_name(enum, number):
    """The value's name; a number this code does not know yet (a newer schema) prints as the number."""
    return enum.Name(number) if number in enum.values() else str(number)


def describe(topic, record):
    headers = dict(record.headers() or [])
    key = record.key().decode("utf-8")
    event_id = headers.get("ce_id", b"-").decode("utf-8")
    if record.value() is None:
        return f"{key} {event_id} deleted"
    if topic == "hs.alerts.v1":
        alert = alert_pb2.Alert.FromString(record.value())
        return (f"{key} {event_id} {enum_name(alert_pb2.AlertState, alert.state)} "
                f"{enum_name(common_pb2.Severity, alert.severity)} period={alert.period} value={alert.value!r} "
                f"threshold={alert.threshold!r} startsAt={alert.starts_at} endsAt={alert.ends_at or '-'}")
    status = target_status_pb2.TargetStatus.FromString(record.value())
    target = repr(status.target) if status.HasField("target") else "-"  # proto3 optional: absent is not 0
    return (f"{key} {event_id} {enum_name(target_status_pb2.TargetState, status.status)} "
            f"value={status.value!r} target={target}")


def main():
    args = [a for a in sys.argv[1:] if a != "--follow"]
    if len(args) != 2 or args[1] not in ("hs.target-status.v1", "hs.alerts.v1"):
        sys.exit("usage: subscribe.py BOOTSTRAP hs.target-status.v1|hs.alerts.v1 [--follow]")
    bootstrap, topic = args
    follow = "--follow" in sys.argv
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "unused",  # the client wants one; partitions are assigned and nothing is committed
        "enable.auto.commit": False,
        # Only records of committed transactions: the services write exactly-once, and records of an
        # aborted transaction are in the log too.
        "isolation.level": "read_committed",
        "enable.partition.eof": True,  # report when a partition is read to its end
    })
    metadata = consumer.list_topics(topic, timeout=30).topics[topic]
    if metadata.error is not None:
        sys.exit(f"subscribe: {topic}: {metadata.error}")
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions])
    at_end = set()
    try:
        while follow or len(at_end) < len(metadata.partitions):
            record = consumer.poll(1.0)
            if record is None:
                continue
            if record.error():
                if record.error().code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(record.error())
                at_end.add(record.partition())
                continue
            print(describe(topic, record), flush=True)
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
