// Command subscribe is a subscriber of healthsignals in Go (docs/subscribers.md): it reads
// hs.target-status.v1 or hs.alerts.v1 from the beginning with read_committed, decodes each value with the
// code protoc generates from proto/, and prints one line per record:
//
//	KEY CE_ID STATUS value=V target=T                                  hs.target-status.v1 (target - if absent)
//	KEY CE_ID STATE SEVERITY period=P value=V threshold=T startsAt=S endsAt=E    hs.alerts.v1 (endsAt - if firing)
//	KEY CE_ID deleted                                                  a tombstone: the key was deleted
//
// It stops once it has read every partition up to its end (the last stable offset), or goes on with
// --follow. It joins no consumer group and commits nothing: a table subscriber reads the whole compacted
// topic at each start and keeps the latest value per key. Kafka client: franz-go (pure Go).
//
//	protoc -I proto --go_out=gen proto/healthsignals/v1/*.proto   # then gen/healthsignals/contracts/go/go.mod
//	go build -o subscribe . && ./subscribe 127.0.0.1:9092 hs.target-status.v1
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"

	hs "healthsignals/contracts/go/healthsignals/v1"
)

func main() {
	args, follow := []string{}, false
	for _, a := range os.Args[1:] {
		if a == "--follow" {
			follow = true
		} else {
			args = append(args, a)
		}
	}
	if len(args) != 2 || (args[1] != "hs.target-status.v1" && args[1] != "hs.alerts.v1") {
		fail("usage: subscribe BOOTSTRAP hs.target-status.v1|hs.alerts.v1 [--follow]")
	}
	topic := args[1]
	client, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(args[0], ",")...),
		kgo.ConsumeTopics(topic), // no group: every partition, from the reset offset
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Only records of committed transactions: the services write exactly-once, and records of an
		// aborted transaction are in the log too.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// The transaction markers too, so that the offsets read reach the end offsets (skipped below).
		kgo.KeepControlRecords(),
	)
	if err != nil {
		fail("subscribe: %v", err)
	}
	defer client.Close()
	ctx := context.Background()
	end := endOffsets(ctx, client, topic)
	next := map[int32]int64{} // per partition, the offset after the last record read
	for follow || !caughtUp(next, end) {
		fetches := client.PollFetches(ctx)
		fetches.EachError(func(t string, p int32, err error) { fail("subscribe: %s [%d]: %v", t, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				fmt.Println(describe(topic, r))
			}
		})
	}
}

// describe is the line printed for one record.
func describe(topic string, r *kgo.Record) string {
	id := "-"
	for _, h := range r.Headers {
		if h.Key == "ce_id" {
			id = string(h.Value)
		}
	}
	if r.Value == nil {
		return fmt.Sprintf("%s %s deleted", r.Key, id)
	}
	if topic == "hs.alerts.v1" {
		var a hs.Alert
		if err := proto.Unmarshal(r.Value, &a); err != nil {
			fail("subscribe: %s [%d] offset %d: %v", topic, r.Partition, r.Offset, err)
		}
		return fmt.Sprintf("%s %s %s %s period=%s value=%s threshold=%s startsAt=%s endsAt=%s", r.Key, id,
			a.State, a.Severity, a.Period, number(a.Value), number(a.Threshold), a.StartsAt, orDash(a.EndsAt))
	}
	var s hs.TargetStatus
	if err := proto.Unmarshal(r.Value, &s); err != nil {
		fail("subscribe: %s [%d] offset %d: %v", topic, r.Partition, r.Offset, err)
	}
	target := "-" // proto3 optional: a nil pointer is absent, which is not 0
	if s.Target != nil {
		target = number(*s.Target)
	}
	return fmt.Sprintf("%s %s %s value=%s target=%s", r.Key, id, s.Status, number(s.Value), target)
}

// endOffsets is, per partition, the offset up to which a read_committed reader that starts now must read:
// the last stable offset (ListOffsets at timestamp -1 under read_committed), or 0 for a partition that
// holds no record any more (its earliest offset, timestamp -2, is the same).
func endOffsets(ctx context.Context, client *kgo.Client, topic string) map[int32]int64 {
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	metaResp, err := meta.RequestWith(ctx, client)
	if err == nil && len(metaResp.Topics) == 1 {
		err = kerr.ErrorForCode(metaResp.Topics[0].ErrorCode)
	}
	if err != nil {
		fail("subscribe: metadata of %s: %v", topic, err)
	}
	latest := listOffsets(ctx, client, topic, metaResp.Topics[0].Partitions, -1)
	earliest := listOffsets(ctx, client, topic, metaResp.Topics[0].Partitions, -2)
	for p, offset := range latest {
		if earliest[p] == offset {
			latest[p] = 0
		}
	}
	return latest
}

func listOffsets(ctx context.Context, client *kgo.Client, topic string,
	partitions []kmsg.MetadataResponseTopicPartition, timestamp int64) map[int32]int64 {
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = 1 // read_committed: the last stable offset, not the high watermark
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p.Partition
		rp.Timestamp = timestamp
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, client) // franz-go sends each partition to its leader
	if err != nil {
		fail("subscribe: offsets of %s: %v", topic, err)
	}
	offsets := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				fail("subscribe: offsets of %s [%d]: %v", topic, p.Partition, err)
			}
			offsets[p.Partition] = p.Offset
		}
	}
	return offsets
}

func caughtUp(next, end map[int32]int64) bool {
	for p, offset := range end {
		if next[p] < offset {
			return false
		}
	}
	return true
}

func number(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}
