"""kafka-python against tests/vectors/kafka-murmur2-partitions.json.

* ``kafka.partitioner.default.murmur2`` gives every vector key the vector's murmur2 value
  (kafka-python returns it unsigned, the vectors hold the Java client's signed int), and
  ``DefaultPartitioner`` (what ``KafkaProducer`` uses when given no partitioner) picks the
  vector's partition for every partition count.
* Live, when ``G60_KAFKA_BOOTSTRAP`` names a real Apache Kafka cluster (skipped otherwise):
  a plain ``KafkaProducer`` writes every vector key to the partition the vectors give for
  12 partitions, as the broker acknowledges it (``future.get().partition``), on a topic
  created for the run under a unique name and deleted afterwards.

The vectors' path is ``G60_VECTORS`` if set, else ``../../vectors/...`` from this file.
"""

import json
import os
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.partitioner.default import DefaultPartitioner, murmur2

VECTORS = Path(
    os.environ.get("G60_VECTORS")
    or Path(__file__).resolve().parent.parent.parent / "vectors" / "kafka-murmur2-partitions.json"
)
COUNTS = (1, 3, 8, 12, 16, 32)
LIVE_PARTITIONS = 12
TIMEOUT_S = 120


def load_cases():
    with open(VECTORS, encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    for c in cases:
        c["key"] = bytes.fromhex(c["key_hex"])
        c["partitions"] = {int(n): p for n, p in c["partitions"].items()}
    return cases


CASES = load_cases()


def case_id(c):
    return "tcId%d" % c["tcId"]


def test_the_file_holds_seventy_distinct_cases_for_every_partition_count():
    assert len(CASES) == 70, VECTORS
    assert len({c["tcId"] for c in CASES}) == 70
    for c in CASES:
        assert tuple(sorted(c["partitions"])) == COUNTS, case_id(c)
        if "key_utf8" in c:
            assert c["key"] == c["key_utf8"].encode("utf-8"), case_id(c)


def signed32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_murmur2_matches_the_vector(case):
    got = murmur2(case["key"])
    assert got == case["murmur2"] & 0xFFFFFFFF
    assert signed32(got) == case["murmur2"]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_default_partitioner_matches_the_vector_for_every_count(case):
    partitioner = DefaultPartitioner()
    got = {}
    for n in COUNTS:
        all_partitions = list(range(n))
        # available lists partitions with a leader: it must not matter for a keyed record.
        got[n] = (
            partitioner(case["key"], all_partitions, all_partitions),
            partitioner(case["key"], all_partitions, all_partitions[:1]),
            (murmur2(case["key"]) & 0x7FFFFFFF) % n,
        )
    assert got == {n: (p, p, p) for n, p in case["partitions"].items()}


def test_live_producer_writes_every_vector_key_to_its_partition_of_twelve():
    bootstrap = os.environ.get("G60_KAFKA_BOOTSTRAP", "").strip()
    if not bootstrap:
        pytest.skip("G60_KAFKA_BOOTSTRAP is not set: no Kafka cluster to produce to")
    servers = bootstrap.split(",")
    topic = "g60-client-tests-python-%s" % uuid.uuid4()
    admin = KafkaAdminClient(
        bootstrap_servers=servers,
        client_id="g60-client-tests-python-admin",
        request_timeout_ms=TIMEOUT_S * 1000,
    )
    try:
        brokers = len(admin.describe_cluster()["brokers"])
        # kafka-python's CreateTopics (v3 at most) cannot ask for the broker's default
        # replication factor: one replica per broker, three at most.
        admin.create_topics(
            [NewTopic(topic, num_partitions=LIVE_PARTITIONS, replication_factor=min(3, brokers))],
            timeout_ms=TIMEOUT_S * 1000,
        )
        try:
            await_leaders(admin, topic)
            produce_and_check(servers, topic)
        finally:
            admin.delete_topics([topic], timeout_ms=TIMEOUT_S * 1000)
    finally:
        admin.close()


def await_leaders(admin, topic):
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        described = [t for t in admin.describe_topics([topic]) if t["topic"] == topic]
        if described and described[0]["error_code"] == 0:
            parts = described[0]["partitions"]
            if len(parts) == LIVE_PARTITIONS and all(p["leader"] >= 0 for p in parts):
                return
        assert time.monotonic() < deadline, "%s: no leader for every partition after %d s" % (topic, TIMEOUT_S)
        time.sleep(0.2)


def produce_and_check(servers, topic):
    # No partitioner argument: kafka-python's DefaultPartitioner, murmur2 for keyed records.
    producer = KafkaProducer(
        bootstrap_servers=servers,
        client_id="g60-client-tests-python-producer",
        acks="all",
        enable_idempotence=True,
        max_block_ms=TIMEOUT_S * 1000,
        delivery_timeout_ms=TIMEOUT_S * 1000,
    )
    try:
        assert producer.partitions_for(topic) == set(range(LIVE_PARTITIONS))
        futures = [
            producer.send(topic, key=c["key"], value=("tcId %d" % c["tcId"]).encode("ascii"))
            for c in CASES
        ]
        producer.flush(timeout=TIMEOUT_S)
        got, want = {}, {}
        for c, f in zip(CASES, futures):
            md = f.get(timeout=TIMEOUT_S)
            assert md.topic == topic
            got[case_id(c)] = md.partition
            want[case_id(c)] = c["partitions"][LIVE_PARTITIONS]
        assert got == want
    finally:
        producer.close(timeout=TIMEOUT_S)
