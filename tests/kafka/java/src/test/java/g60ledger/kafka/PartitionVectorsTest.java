package g60ledger.kafka;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import g60ledger.kafka.PartitionVectors.Case;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.utils.Utils;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Kafka's Java client (the pinned kafka-clients) computes, for every key of
 * tests/vectors/kafka-murmur2-partitions.json, the vector's murmur2 value and, for every
 * partition count, the vector's partition: both by the formula of docs/formats.md section 1
 * ({@code Utils.toPositive(Utils.murmur2(key)) % n}) and by the producer's own default
 * partitioner for keyed records ({@code BuiltInPartitioner.partitionForKey}).
 */
class PartitionVectorsTest {
  static Stream<Case> cases() {
    return PartitionVectors.cases().stream();
  }

  @Test
  void theFileHoldsSeventyDistinctCasesForEveryPartitionCount() {
    List<Case> cases = PartitionVectors.cases();
    assertEquals(70, cases.size(), "cases in " + PartitionVectors.path());
    Set<Integer> ids = new HashSet<>();
    for (Case c : cases) {
      assertEquals(true, ids.add(c.tcId()), "duplicate tcId " + c.tcId());
      assertEquals(PartitionVectors.COUNTS, new ArrayList<>(c.partitions().keySet()), c + ": partition counts");
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void keyHexIsTheUtf8Key(Case c) {
    assumeTrue(c.keyUtf8() != null, c + " has no key_utf8");
    assertArrayEquals(PartitionVectors.utf8(c.keyUtf8()), c.key(), c + ": key_hex is not key_utf8 in UTF-8");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void murmur2MatchesUtilsMurmur2(Case c) {
    assertEquals(c.murmur2(), Utils.murmur2(c.key()), c + ": Utils.murmur2");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void partitionMatchesTheJavaClientForEveryCount(Case c) {
    byte[] key = c.key();
    List<Executable> checks = new ArrayList<>();
    c.partitions()
        .forEach(
            (n, want) -> {
              checks.add(
                  () -> assertEquals(want, Utils.toPositive(Utils.murmur2(key)) % n, c + ", " + n + " partitions: toPositive(murmur2) % n"));
              checks.add(
                  () -> assertEquals(want, BuiltInPartitioner.partitionForKey(key, n), c + ", " + n + " partitions: BuiltInPartitioner.partitionForKey"));
            });
    assertAll(c.toString(), checks);
  }
}
