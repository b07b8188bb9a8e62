// The partition rule of docs/producers.md in Java, as its Java snippet writes it: kafka-clients' own
// Utils.murmur2 and Utils.toPositive applied to the grouping key. Prints, for a partition count and grouping
// keys given as arguments, one partition per line; tests/e2e/test_producer_snippets.py compares them with the
// Python function of the same document. Run as a single source file: java -cp kafka-clients.jar PartitionRule.java
import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.utils.Utils;

public class PartitionRule {
    static int partitionFor(String groupingKey, int partitions) {
        return Utils.toPositive(Utils.murmur2(groupingKey.getBytes(StandardCharsets.UTF_8))) % partitions;
    }

    public static void main(String[] args) {
        int partitions = Integer.parseInt(args[0]);
        for (int i = 1; i < args.length; i++)
            System.out.println(partitionFor(args[i], partitions));
    }
}
