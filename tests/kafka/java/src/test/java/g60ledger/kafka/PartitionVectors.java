package g60ledger.kafka;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * tests/vectors/kafka-murmur2-partitions.json, read with Jackson. Its path is the system
 * property {@code g60.vectors} (the pom sets it), else
 * {@code ../../vectors/kafka-murmur2-partitions.json} relative to this module (surefire's
 * working directory).
 */
final class PartitionVectors {
  static final String PROPERTY = "g60.vectors";
  static final String DEFAULT_PATH = "../../vectors/kafka-murmur2-partitions.json";
  /** The partition counts every case gives a partition for. */
  static final List<Integer> COUNTS = List.of(1, 3, 8, 12, 16, 32);

  /** One vector: a key, its murmur2 value (signed, as Utils.murmur2 returns it) and its partitions. */
  record Case(int tcId, String keyUtf8, byte[] key, int murmur2, Map<Integer, Integer> partitions) {
    @Override
    public String toString() {
      return "tcId " + tcId + (keyUtf8 != null ? " key \"" + keyUtf8 + "\"" : " key_hex " + HexFormat.of().formatHex(key));
    }
  }

  private static List<Case> cached;

  private PartitionVectors() {}

  static Path path() {
    String p = System.getProperty(PROPERTY);
    return Paths.get(p == null || p.isEmpty() ? DEFAULT_PATH : p).toAbsolutePath().normalize();
  }

  static synchronized List<Case> cases() {
    if (cached == null) {
      cached = load(path());
    }
    return cached;
  }

  static List<Case> load(Path path) {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(Files.readAllBytes(path));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the vectors " + path, e);
    }
    JsonNode cases = root.path("cases");
    if (!cases.isArray()) {
      throw new IllegalStateException(path + ": no \"cases\" array");
    }
    List<Case> out = new ArrayList<>();
    for (JsonNode c : cases) {
      Map<Integer, Integer> partitions = new TreeMap<>();
      for (Iterator<Map.Entry<String, JsonNode>> it = c.path("partitions").fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        partitions.put(Integer.valueOf(e.getKey()), e.getValue().intValue());
      }
      out.add(
          new Case(
              c.path("tcId").intValue(),
              c.path("key_utf8").isTextual() ? c.path("key_utf8").textValue() : null,
              HexFormat.of().parseHex(c.path("key_hex").textValue()),
              require(c, "murmur2").intValue(),
              Collections.unmodifiableMap(partitions)));
    }
    return Collections.unmodifiableList(out);
  }

  private static JsonNode require(JsonNode c, String field) {
    JsonNode n = c.get(field);
    if (n == null || !n.canConvertToInt()) {
      throw new IllegalStateException("case " + c.path("tcId") + ": no integer \"" + field + "\"");
    }
    return n;
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
