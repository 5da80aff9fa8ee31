package g60ledger.kafka;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import g60ledger.kafka.PartitionVectors.Case;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * On a real Apache Kafka cluster (its bootstrap address in the system property or the
 * environment variable {@code G60_KAFKA_BOOTSTRAP}; skipped when neither is set): a plain
 * {@code KafkaProducer<byte[], byte[]>} with the default partitioner writes every vector key
 * to the partition the vectors give for 12 partitions, as the broker acknowledges it
 * ({@code RecordMetadata.partition()}). The topic is created for the run under a unique name
 * and deleted afterwards.
 */
class LiveProducerPartitionTest {
  static final String BOOTSTRAP = "G60_KAFKA_BOOTSTRAP";
  static final int PARTITIONS = 12;
  static final long TIMEOUT_S = 120;

  static String bootstrap() {
    String b = System.getProperty(BOOTSTRAP);
    if (b == null || b.isBlank()) {
      b = System.getenv(BOOTSTRAP);
    }
    return b == null || b.isBlank() ? null : b.trim();
  }

  @Test
  void theDefaultPartitionerWritesEveryVectorKeyToItsPartitionOfTwelve() throws Exception {
    String bootstrap = bootstrap();
    assumeTrue(bootstrap != null, BOOTSTRAP + " is not set: no Kafka cluster to produce to");
    List<Case> cases = PartitionVectors.cases();
    String topic = "g60-client-tests-java-" + UUID.randomUUID();

    Properties adminConfig = new Properties();
    adminConfig.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    adminConfig.put(CommonClientConfigs.CLIENT_ID_CONFIG, "g60-client-tests-java-admin");
    adminConfig.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) TimeUnit.SECONDS.toMillis(TIMEOUT_S));
    try (Admin admin = Admin.create(adminConfig)) {
      // The cluster's default replication factor: one broker or three, as ops/kafka made it.
      admin
          .createTopics(List.of(new NewTopic(topic, Optional.of(PARTITIONS), Optional.empty())))
          .all()
          .get(TIMEOUT_S, TimeUnit.SECONDS);
      try {
        awaitLeaders(admin, topic);
        produceAndCheck(bootstrap, topic, cases);
      } finally {
        admin.deleteTopics(List.of(topic)).all().get(TIMEOUT_S, TimeUnit.SECONDS);
      }
    }
  }

  /** Waits until every partition of the new topic has a leader. */
  private static void awaitLeaders(Admin admin, String topic) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
    while (true) {
      try {
        TopicDescription d =
            admin.describeTopics(List.of(topic)).allTopicNames().get(TIMEOUT_S, TimeUnit.SECONDS).get(topic);
        if (d.partitions().size() == PARTITIONS && d.partitions().stream().allMatch(p -> p.leader() != null)) {
          return;
        }
      } catch (ExecutionException e) {
        // UnknownTopicOrPartitionException until the brokers have the topic's metadata.
      }
      assertTrue(System.nanoTime() < deadline, topic + ": no leader for every partition after " + TIMEOUT_S + " s");
      Thread.sleep(200);
    }
  }

  private static void produceAndCheck(String bootstrap, String topic, List<Case> cases) throws Exception {
    Properties config = new Properties();
    config.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    config.put(ProducerConfig.CLIENT_ID_CONFIG, "g60-client-tests-java-producer");
    config.put(ProducerConfig.ACKS_CONFIG, "all");
    config.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
    config.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, (int) TimeUnit.SECONDS.toMillis(TIMEOUT_S));
    config.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, (int) TimeUnit.SECONDS.toMillis(TIMEOUT_S));
    // No partitioner.class: the client's built-in default partitioner, murmur2 for keyed records.
    try (KafkaProducer<byte[], byte[]> producer =
        new KafkaProducer<>(config, new ByteArraySerializer(), new ByteArraySerializer())) {
      assertEquals(PARTITIONS, producer.partitionsFor(topic).size(), topic + ": partitions the producer sees");
      List<Future<RecordMetadata>> sent = new ArrayList<>();
      for (Case c : cases) {
        byte[] value = ("tcId " + c.tcId()).getBytes(StandardCharsets.UTF_8);
        sent.add(producer.send(new ProducerRecord<>(topic, c.key(), value)));
      }
      producer.flush();
      List<Executable> checks = new ArrayList<>();
      for (int i = 0; i < cases.size(); i++) {
        Case c = cases.get(i);
        RecordMetadata md = sent.get(i).get(TIMEOUT_S, TimeUnit.SECONDS);
        int want = c.partitions().get(PARTITIONS);
        checks.add(() -> assertEquals(topic, md.topic(), c + ": topic"));
        checks.add(() -> assertEquals(want, md.partition(), c + ": partition the broker acknowledged (of " + PARTITIONS + ")"));
      }
      assertAll(cases.size() + " records produced to " + topic, checks);
    }
  }
}
