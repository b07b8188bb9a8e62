/*
 * A subscriber of healthsignals in Java (docs/subscribers.md): reads hs.target-status.v1 or hs.alerts.v1 from
 * the beginning with read_committed, decodes each value with the code protoc generates from proto/, and
 * prints one line per record:
 *
 *   KEY CE_ID STATUS value=V target=T                                  hs.target-status.v1 (target - if absent)
 *   KEY CE_ID STATE SEVERITY period=P value=V threshold=T startsAt=S endsAt=E    hs.alerts.v1 (endsAt - if firing)
 *   KEY CE_ID deleted                                                  a tombstone: the key was deleted
 *
 * It stops once it has read every partition up to its end (the last stable offset), or goes on with
 * --follow. It joins no consumer group and commits nothing: a table subscriber reads the whole compacted topic
 * at each start and keeps the latest value per key. Needs org.apache.kafka:kafka-clients (3.9.1 here) and
 * com.google.protobuf:protobuf-java 3.21.x (the runtime of protoc 3.21).
 *
 *   protoc -I proto --java_out=gen proto/healthsignals/v1/*.proto
 *   javac -cp 'kafka-clients.jar:protobuf-java.jar' -d classes $(find gen -name '*.java') Subscribe.java
 *   java -cp 'classes:kafka-clients.jar:protobuf-java.jar:...' Subscribe 127.0.0.1:9092 hs.target-status.v1
 */
import com.google.protobuf.InvalidProtocolBufferException;
import dk.healthsignals.v1.Alert;
import dk.healthsignals.v1.TargetStatus;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

public final class Subscribe {
    public static void main(String[] argv) throws InvalidProtocolBufferException {
        List<String> args = new ArrayList<>(List.of(argv));
        boolean follow = args.remove("--follow");
        if (args.size() != 2 || !(args.get(1).equals("hs.target-status.v1") || args.get(1).equals("hs.alerts.v1"))) {
            System.err.println("usage: Subscribe BOOTSTRAP hs.target-status.v1|hs.alerts.v1 [--follow]");
            System.exit(2);
        }
        String topic = args.get(1);
        Properties config = new Properties();
        config.put("bootstrap.servers", args.get(0));
        // Only records of committed transactions: the services write exactly-once, and records of an aborted
        // transaction are in the log too.
        config.put("isolation.level", "read_committed");
        config.put("enable.auto.commit", "false");
        config.put("key.deserializer", StringDeserializer.class.getName());
        config.put("value.deserializer", ByteArrayDeserializer.class.getName());
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(config)) {
            List<TopicPartition> partitions = new ArrayList<>();
            List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(30));
            if (infos == null || infos.isEmpty()) {
                System.err.println("subscribe: no topic " + topic);
                System.exit(1);
            }
            for (PartitionInfo info : infos) {
                partitions.add(new TopicPartition(topic, info.partition()));
            }
            consumer.assign(partitions); // no group: every partition
            consumer.seekToBeginning(partitions);
            // Under read_committed, the end offsets are the last stable offsets.
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
            while (follow || !caughtUp(consumer, end)) {
                for (ConsumerRecord<String, byte[]> record : consumer.poll(Duration.ofSeconds(1))) {
                    System.out.println(describe(topic, record));
                }
            }
        }
    }

    /** The line printed for one record. */
    static String describe(String topic, ConsumerRecord<String, byte[]> record) throws InvalidProtocolBufferException {
        Header idHeader = record.headers().lastHeader("ce_id");
        String id = idHeader == null ? "-" : new String(idHeader.value(), StandardCharsets.UTF_8);
        if (record.value() == null) {
            return record.key() + " " + id + " deleted";
        }
        if (topic.equals("hs.alerts.v1")) {
            Alert a = Alert.parseFrom(record.value());
            return String.format("%s %s %s %s period=%s value=%s threshold=%s startsAt=%s endsAt=%s", record.key(), id,
                    a.getState(), a.getSeverity(), a.getPeriod(), a.getValue(), a.getThreshold(), a.getStartsAt(),
                    a.getEndsAt().isEmpty() ? "-" : a.getEndsAt());
        }
        TargetStatus s = TargetStatus.parseFrom(record.value());
        String target = s.hasTarget() ? Double.toString(s.getTarget()) : "-"; // proto3 optional: absent is not 0
        return String.format("%s %s %s value=%s target=%s", record.key(), id, s.getStatus(), s.getValue(), target);
    }

    /** Whether the consumer's position (past transaction markers too) has reached every end offset. */
    static boolean caughtUp(KafkaConsumer<String, byte[]> consumer, Map<TopicPartition, Long> end) {
        for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
            if (consumer.position(e.getKey()) < e.getValue()) {
                return false;
            }
        }
        return true;
    }
}
