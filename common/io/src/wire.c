/* The wire format of record values (hs/wire.h). */
#include "hs/wire.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The table tools/embed-protos.cmake generates (hs_proto_sources.c, built into hs_proto). */
extern const hs_proto_source hs_proto_source_table[];
extern const size_t hs_proto_source_count;

/* --- Framing -----------------------------------------------------------------------------------------------
 */

size_t hs_wire_put_varint(uint8_t out[5], int32_t value)
{
    uint32_t zz = ((uint32_t)value << 1) ^ (uint32_t)(value >> 31); /* zigzag: 0,-1,1,-2 -> 0,1,2,3 */
    size_t n = 0;
    while (zz >= 0x80) {
        out[n++] = (uint8_t)(zz | 0x80);
        zz >>= 7;
    }
    out[n++] = (uint8_t)zz;
    return n;
}

/* A zigzag varint at bytes[*pos]; false when it runs out of the value or over 5 bytes. */
static bool get_varint(const uint8_t *bytes, size_t len, size_t *pos, int32_t *value)
{
    uint32_t zz = 0;
    for (unsigned shift = 0, n = 0; n < 5; n++, shift += 7) {
        if (*pos >= len)
            return false;
        uint8_t b = bytes[(*pos)++];
        if (n == 4 && b > 0x0f)
            return false; /* more than 32 bits */
        zz |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *value = (int32_t)((zz >> 1) ^ (~(zz & 1) + 1));
            return true;
        }
    }
    return false;
}

size_t hs_wire_header(uint8_t out[HS_WIRE_HEADER_MAX], int32_t schema_id, const hs_wire_path *path)
{
    size_t n = 0;
    out[n++] = HS_WIRE_MAGIC;
    uint32_t id = (uint32_t)schema_id;
    out[n++] = (uint8_t)(id >> 24);
    out[n++] = (uint8_t)(id >> 16);
    out[n++] = (uint8_t)(id >> 8);
    out[n++] = (uint8_t)id;
    if (path->count == 1 && path->indexes[0] == 0) {
        out[n++] = 0; /* the first message: the count 0 alone */
        return n;
    }
    size_t count = path->count <= HS_WIRE_MAX_INDEXES ? path->count : HS_WIRE_MAX_INDEXES;
    n += hs_wire_put_varint(out + n, (int32_t)count);
    for (size_t i = 0; i < count; i++)
        n += hs_wire_put_varint(out + n, path->indexes[i]);
    return n;
}

bool hs_wire_is_framed(const uint8_t *bytes, size_t len)
{
    return len > 0 && bytes[0] == HS_WIRE_MAGIC;
}

hs_err hs_wire_parse(const uint8_t *bytes, size_t len, hs_wire_frame *frame, hs_error *error)
{
    if (!hs_wire_is_framed(bytes, len))
        return hs_error_set(error, HS_ERR_DECODE,
                            "not a framed value: it does not start with the magic byte 0");
    if (len < 6)
        return hs_error_set(error, HS_ERR_DECODE, "framed value of %zu bytes is shorter than its header",
                            len);
    frame->schema_id =
        (int32_t)((uint32_t)bytes[1] << 24 | (uint32_t)bytes[2] << 16 | (uint32_t)bytes[3] << 8 | bytes[4]);
    size_t pos = 5;
    int32_t count;
    if (!get_varint(bytes, len, &pos, &count))
        return hs_error_set(error, HS_ERR_DECODE, "framed value: the message-index count is not a varint");
    if (count < 0 || count > HS_WIRE_MAX_INDEXES)
        return hs_error_set(error, HS_ERR_DECODE, "framed value: message-index count %d is outside 0..%d",
                            (int)count, HS_WIRE_MAX_INDEXES);
    frame->path.count = count ? (size_t)count : 1;
    frame->path.indexes[0] = 0;
    for (int32_t i = 0; i < count; i++) {
        if (!get_varint(bytes, len, &pos, &frame->path.indexes[i]))
            return hs_error_set(error, HS_ERR_DECODE, "framed value: message index %d is not a varint",
                                (int)i);
        if (frame->path.indexes[i] < 0)
            return hs_error_set(error, HS_ERR_DECODE, "framed value: message index %d is negative (%d)",
                                (int)i, (int)frame->path.indexes[i]);
    }
    frame->header_len = pos;
    return HS_OK;
}

/* --- .proto sources ----------------------------------------------------------------------------------------
 */

const hs_proto_source *hs_proto_sources(size_t *count)
{
    *count = hs_proto_source_count;
    return hs_proto_source_table;
}

const hs_proto_source *hs_proto_source_find(const char *path)
{
    for (size_t i = 0; i < hs_proto_source_count; i++)
        if (strcmp(hs_proto_source_table[i].path, path) == 0)
            return &hs_proto_source_table[i];
    return NULL;
}

/* A token of a .proto file: an identifier (dotted names included), a string literal (without its quotes)
 * or one punctuation character. */
typedef struct token {
    enum { TOK_END, TOK_IDENT, TOK_STRING, TOK_PUNCT } kind;
    const char *start;
    size_t len;
} token;

static bool is_ident(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && ((c >= '0' && c <= '9') || c == '.'));
}

static token next_token(const char **p)
{
    const char *s = *p;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
            s++;
        if (s[0] == '/' && s[1] == '/') {
            while (*s && *s != '\n')
                s++;
        } else if (s[0] == '/' && s[1] == '*') {
            const char *end = strstr(s + 2, "*/");
            s = end ? end + 2 : s + strlen(s);
        } else {
            break;
        }
    }
    token t = {TOK_END, s, 0};
    if (!*s) {
        *p = s;
        return t;
    }
    if (*s == '"' || *s == '\'') {
        char quote = *s++;
        t.kind = TOK_STRING;
        t.start = s;
        while (*s && *s != quote) {
            if (*s == '\\' && s[1])
                s++;
            s++;
        }
        t.len = (size_t)(s - t.start);
        if (*s)
            s++;
    } else if (is_ident(*s, true)) {
        t.kind = TOK_IDENT;
        while (is_ident(*s, false))
            s++;
        t.len = (size_t)(s - t.start);
    } else {
        t.kind = TOK_PUNCT;
        t.len = 1;
        s++;
    }
    *p = s;
    return t;
}

static bool tok_is(token t, const char *text)
{
    return t.len == strlen(text) && memcmp(t.start, text, t.len) == 0;
}

hs_err hs_wire_message_path(const char *text, const char *full_name, hs_wire_path *path, hs_error *error)
{
    /* Scopes: the file, then each brace; message scopes count their nested messages. */
    enum { MAX_DEPTH = 64 };
    struct {
        bool message;
        int32_t messages; /* nested messages seen so far */
        size_t name_end;  /* length of `name` when this scope is a message */
    } scope[MAX_DEPTH] = {{.message = true}};
    size_t depth = 0;
    char name[512] = ""; /* the package, then the dotted names of the open messages */
    size_t name_len = 0;
    hs_wire_path cur = {.count = 0};

    const char *p = text;
    token prev = {TOK_END, NULL, 0};
    for (token t = next_token(&p); t.kind != TOK_END; prev = t, t = next_token(&p)) {
        if (t.kind == TOK_IDENT && tok_is(t, "package") && depth == 0 && prev.kind != TOK_IDENT) {
            token pkg = next_token(&p);
            if (pkg.kind == TOK_IDENT && pkg.len < sizeof name) {
                memcpy(name, pkg.start, pkg.len);
                name_len = pkg.len;
                name[name_len] = '\0';
                scope[0].name_end = name_len;
            }
            t = pkg; /* the loop's step makes it `prev` */
            continue;
        }
        if (t.kind == TOK_IDENT && tok_is(t, "message") && scope[depth].message &&
            (prev.kind == TOK_END ||
             (prev.kind == TOK_PUNCT && (*prev.start == ';' || *prev.start == '{' || *prev.start == '}')))) {
            const char *save = p;
            token id = next_token(&p);
            token brace = next_token(&p);
            if (id.kind != TOK_IDENT || brace.kind != TOK_PUNCT || *brace.start != '{') {
                p = save;
                continue;
            }
            if (depth + 1 >= MAX_DEPTH || cur.count >= HS_WIRE_MAX_INDEXES)
                return hs_error_set(error, HS_ERR_PARSE, "messages nested deeper than %d",
                                    HS_WIRE_MAX_INDEXES);
            int32_t index = scope[depth].messages++;
            cur.indexes[cur.count++] = index;
            size_t need = name_len + (name_len ? 1 : 0) + id.len;
            if (need >= sizeof name)
                return hs_error_set(error, HS_ERR_PARSE, "message name too long");
            if (name_len)
                name[name_len++] = '.';
            memcpy(name + name_len, id.start, id.len);
            name_len += id.len;
            name[name_len] = '\0';
            depth++;
            scope[depth].message = true;
            scope[depth].messages = 0;
            scope[depth].name_end = name_len;
            if (strcmp(name, full_name) == 0) {
                *path = cur;
                return HS_OK;
            }
            t = brace;
            continue;
        }
        if (t.kind == TOK_PUNCT && *t.start == '{') {
            if (depth + 1 >= MAX_DEPTH)
                return hs_error_set(error, HS_ERR_PARSE, "braces nested deeper than %d", MAX_DEPTH);
            depth++;
            scope[depth].message = false;
            scope[depth].messages = 0;
            scope[depth].name_end = name_len;
        } else if (t.kind == TOK_PUNCT && *t.start == '}') {
            if (depth == 0)
                return hs_error_set(error, HS_ERR_PARSE, "unbalanced '}'");
            if (scope[depth].message) {
                cur.count--;
                depth--;
                name_len = scope[depth].name_end;
                name[name_len] = '\0';
            } else {
                depth--;
            }
        }
    }
    if (depth != 0)
        return hs_error_set(error, HS_ERR_PARSE, "unbalanced '{'");
    return hs_error_set(error, HS_ERR_NOT_FOUND, "%s is not declared here", full_name);
}

hs_err hs_wire_imports(const char *text,
                       hs_err (*fn)(void *ctx, const char *path, size_t len, hs_error *error), void *ctx,
                       hs_error *error)
{
    const char *p = text;
    size_t depth = 0;
    for (token t = next_token(&p); t.kind != TOK_END; t = next_token(&p)) {
        if (t.kind == TOK_PUNCT && *t.start == '{')
            depth++;
        else if (t.kind == TOK_PUNCT && *t.start == '}' && depth)
            depth--;
        else if (depth == 0 && t.kind == TOK_IDENT && tok_is(t, "import")) {
            token s = next_token(&p);
            if (s.kind == TOK_IDENT && (tok_is(s, "public") || tok_is(s, "weak")))
                s = next_token(&p);
            if (s.kind == TOK_STRING) {
                hs_err err = fn(ctx, s.start, s.len, error);
                if (err)
                    return err;
            }
        }
    }
    return HS_OK;
}

hs_err hs_wire_locate(const ProtobufCMessageDescriptor *descriptor, const hs_proto_source **file,
                      hs_wire_path *path, hs_error *error)
{
    *file = NULL;
    for (size_t i = 0; i < hs_proto_source_count; i++) {
        hs_error ignored = {0};
        if (hs_wire_message_path(hs_proto_source_table[i].text, descriptor->name, path, &ignored) == HS_OK) {
            *file = &hs_proto_source_table[i];
            return HS_OK;
        }
    }
    return hs_error_set(error, HS_ERR_NOT_FOUND, "no .proto file of the contracts declares %s",
                        descriptor->name);
}

/* --- This process ------------------------------------------------------------------------------------------
 */

enum { MAX_TOPICS = 64 };

/* The path of each registered topic's type, computed once (paths[i] for hs_topic_all()[i]). */
static struct {
    pthread_once_t once;
    const hs_topic *topics;
    size_t count;
    hs_wire_path paths[MAX_TOPICS];
    const char *files[MAX_TOPICS];
    bool known[MAX_TOPICS];
} types = {.once = PTHREAD_ONCE_INIT};

/* Schema id + 1 by topic (0: bare). */
static _Atomic int32_t schema_ids[MAX_TOPICS];

static void compute_paths(void)
{
    types.topics = hs_topic_all(&types.count);
    if (types.count > MAX_TOPICS)
        types.count = MAX_TOPICS;
    for (size_t i = 0; i < types.count; i++) {
        const hs_proto_source *file = NULL;
        hs_error ignored = {0};
        if (types.topics[i].value_type &&
            hs_wire_locate(types.topics[i].value_type, &file, &types.paths[i], &ignored) == HS_OK) {
            types.files[i] = file->path;
            types.known[i] = true;
        }
    }
}

/* The index of `topic` in the registry, or -1. */
static long topic_index(const hs_topic *topic)
{
    pthread_once(&types.once, compute_paths);
    /* The registry's own entries, as every producer passes them: by address, without a string compare. */
    uintptr_t at = (uintptr_t)topic, base = (uintptr_t)types.topics;
    if (at >= base && at < base + types.count * sizeof *types.topics &&
        (at - base) % sizeof *types.topics == 0)
        return (long)((at - base) / sizeof *types.topics);
    for (size_t i = 0; i < types.count; i++)
        if (strcmp(types.topics[i].name, topic->name) == 0)
            return (long)i;
    return -1;
}

hs_err hs_wire_enable(const hs_topic *topic, int32_t schema_id, hs_error *error)
{
    long i = topic_index(topic);
    if (i < 0 || !types.known[i])
        return hs_error_set(error, HS_ERR_INTERNAL, "%s has no message type in the contracts' .proto files",
                            topic->name);
    if (schema_id < 0 || schema_id == INT32_MAX)
        return hs_error_set(error, HS_ERR_CONFIG, "schema id %d for %s is out of range", (int)schema_id,
                            topic->name);
    atomic_store(&schema_ids[i], schema_id + 1);
    return HS_OK;
}

int32_t hs_wire_schema_id(const hs_topic *topic)
{
    long i = topic_index(topic);
    return i < 0 ? -1 : atomic_load(&schema_ids[i]) - 1;
}

const uint8_t *hs_wire_frame_value(const hs_topic *topic, const uint8_t *value, size_t len, uint8_t *small,
                                   size_t small_size, size_t *out_len)
{
    long i = topic_index(topic);
    int32_t id = i < 0 ? -1 : atomic_load(&schema_ids[i]) - 1;
    if (id < 0) {
        *out_len = len;
        return value;
    }
    uint8_t header[HS_WIRE_HEADER_MAX];
    size_t header_len = hs_wire_header(header, id, &types.paths[i]);
    uint8_t *out = header_len + len <= small_size ? small : malloc(header_len + len);
    if (!out)
        return NULL;
    memcpy(out, header, header_len);
    if (len)
        memcpy(out + header_len, value, len);
    *out_len = header_len + len;
    return out;
}

static bool same_path(const hs_wire_path *a, const hs_wire_path *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++)
        if (a->indexes[i] != b->indexes[i])
            return false;
    return true;
}

static void format_path(const hs_wire_path *path, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "[");
    for (size_t i = 0; i < path->count && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%d", i ? "," : "", (int)path->indexes[i]);
    if (n < size)
        snprintf(out + n, size - n, "]");
}

hs_err hs_wire_payload(const ProtobufCMessageDescriptor *descriptor, const uint8_t *bytes, size_t len,
                       const uint8_t **payload, size_t *payload_len, hs_error *error)
{
    if (!hs_wire_is_framed(bytes, len)) {
        *payload = bytes;
        *payload_len = len;
        return HS_OK;
    }
    hs_wire_frame frame = {0};
    hs_err err = hs_wire_parse(bytes, len, &frame, error);
    if (err)
        return err;
    /* The expected path: the registered topics' types are computed once; any other type is looked up. */
    pthread_once(&types.once, compute_paths);
    const hs_wire_path *want = NULL;
    const char *file = NULL;
    hs_wire_path found = {0};
    for (size_t i = 0; i < types.count && !want; i++)
        if (types.known[i] && types.topics[i].value_type == descriptor) {
            want = &types.paths[i];
            file = types.files[i];
        }
    if (!want) {
        const hs_proto_source *src = NULL;
        if (hs_wire_locate(descriptor, &src, &found, error) != HS_OK || !src)
            return hs_error_set(error, HS_ERR_DECODE, "framed value of %s, which no .proto file declares",
                                descriptor->name);
        want = &found;
        file = src->path;
    }
    if (!same_path(&frame.path, want)) {
        char got_text[96], want_text[96];
        format_path(&frame.path, got_text, sizeof got_text);
        format_path(want, want_text, sizeof want_text);
        return hs_error_set(error, HS_ERR_DECODE,
                            "framed value (schema id %d) names message %s of its schema, not %s (%s in %s)",
                            (int)frame.schema_id, got_text, descriptor->name, want_text, file);
    }
    *payload = bytes + frame.header_len;
    *payload_len = len - frame.header_len;
    return HS_OK;
}

ProtobufCMessage *hs_wire_unpack(const ProtobufCMessageDescriptor *descriptor, ProtobufCAllocator *allocator,
                                 size_t len, const uint8_t *bytes)
{
    const uint8_t *payload = bytes;
    size_t payload_len = len;
    hs_error ignored = {0};
    if (hs_wire_payload(descriptor, bytes, len, &payload, &payload_len, &ignored) != HS_OK)
        return NULL;
    return protobuf_c_message_unpack(descriptor, allocator, payload_len, payload);
}
