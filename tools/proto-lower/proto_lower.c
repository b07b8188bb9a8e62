/* hs-proto-lower: lets protoc-c 1.4 generate C from .proto files that use proto3 `optional`. protoc compiles
 * `optional int64 volume = 6;` into a field in a one-field oneof named `_volume`, flagged proto3_optional;
 * protoc-c refuses the flag, so this tool copies a FileDescriptorSet with the flag cleared, leaving exactly
 * the oneof `_volume { int64 volume = 6; }` that protoc-c accepts. Wire format and JSON are the same either
 * way; what changes is that every other language's generator (Java above all, whose accessors of a oneof
 * `_volume` clash with those of its field `volume`) sees the standard proto3 `optional`. The build runs
 * protoc-c on the output with --descriptor_set_in (top-level CMakeLists.txt).
 *   usage: hs-proto-lower IN.desc OUT.desc
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"

/* The whole of `path` in a malloc'd buffer; NULL after printing why. */
static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "hs-proto-lower: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, used = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        used += fread(buf + used, 1, cap - used, f);
        if (used < cap)
            break;
        uint8_t *grown = realloc(buf, cap * 2);
        if (!grown)
            free(buf);
        buf = grown;
        cap *= 2;
    }
    bool failed = ferror(f) != 0;
    fclose(f);
    if (!buf || failed) {
        fprintf(stderr, "hs-proto-lower: cannot read %s\n", path);
        free(buf);
        return NULL;
    }
    *len = used;
    return buf;
}

/* Clears proto3_optional on every field of `msg` and its nested messages; returns how many were set. */
static size_t lower_message(Google__Protobuf__DescriptorProto *msg)
{
    size_t lowered = 0;
    for (size_t i = 0; i < msg->n_field; i++) {
        Google__Protobuf__FieldDescriptorProto *field = msg->field[i];
        if (field->has_proto3_optional && field->proto3_optional) {
            field->has_proto3_optional = 0;
            field->proto3_optional = 0;
            lowered++;
        }
    }
    for (size_t i = 0; i < msg->n_nested_type; i++)
        lowered += lower_message(msg->nested_type[i]);
    return lowered;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: hs-proto-lower IN.desc OUT.desc\n");
        return 2;
    }
    size_t len = 0;
    uint8_t *data = read_all(argv[1], &len);
    if (!data)
        return 1;
    Google__Protobuf__FileDescriptorSet *set = google__protobuf__file_descriptor_set__unpack(NULL, len, data);
    free(data);
    if (!set) {
        fprintf(stderr, "hs-proto-lower: %s is not a FileDescriptorSet\n", argv[1]);
        return 1;
    }
    size_t lowered = 0;
    for (size_t f = 0; f < set->n_file; f++)
        for (size_t m = 0; m < set->file[f]->n_message_type; m++)
            lowered += lower_message(set->file[f]->message_type[m]);
    size_t size = google__protobuf__file_descriptor_set__get_packed_size(set);
    uint8_t *out = malloc(size ? size : 1);
    FILE *f = out ? fopen(argv[2], "wb") : NULL;
    bool ok =
        f && google__protobuf__file_descriptor_set__pack(set, out) == size && fwrite(out, 1, size, f) == size;
    ok = f && fclose(f) == 0 && ok;
    free(out);
    google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
    if (!ok) {
        fprintf(stderr, "hs-proto-lower: cannot write %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    printf("hs-proto-lower: %zu optional field%s as one-field oneofs\n", lowered, lowered == 1 ? "" : "s");
    return 0;
}
