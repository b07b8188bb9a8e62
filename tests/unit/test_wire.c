/* Confluent's wire format (hs/wire.h): the byte layouts of Confluent's documentation ("Wire format", the
 * Protobuf message indexes) as fixtures, zigzag varints at their edges, the message paths of nested
 * messages, and values of the real topics framed and read back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "healthsignals/v1/indicator.pb-c.h"
#include "healthsignals/v1/regional_variation.pb-c.h"
#include "healthsignals/v1/rule.pb-c.h"
#include "hs/wire.h"

/* The example of Confluent's documentation of the Protobuf message indexes, with what protoc also
 * accepts and must not be counted: enums, oneofs, options with aggregate values, braces in strings and
 * comments. */
static const char docs_proto[] = "syntax = \"proto3\";\n"
                                 "package test.package;\n"
                                 "// message NotAMessage { }\n"
                                 "enum Kind { KIND_UNSPECIFIED = 0; }\n"
                                 "message MessageA {\n"
                                 "  /* message AlsoNot { } */\n"
                                 "  message MessageB {\n"
                                 "    message MessageC { string s = 1 [json_name = \"m{\"]; }\n"
                                 "  }\n"
                                 "  enum Inner { INNER_UNSPECIFIED = 0; }\n"
                                 "  message MessageD { oneof o { int32 a = 1; string b = 2; } }\n"
                                 "  message MessageE {\n"
                                 "    message MessageF { }\n"
                                 "    message MessageG { }\n"
                                 "  }\n"
                                 "}\n"
                                 "message MessageH {\n"
                                 "  message MessageI { }\n"
                                 "}\n";

static hs_wire_path path_of(const char *name)
{
    hs_wire_path path = {0};
    hs_error error = {0};
    assert_int_equal(hs_wire_message_path(docs_proto, name, &path, &error), HS_OK);
    return path;
}

static void assert_path(hs_wire_path path, size_t count, const int32_t *want)
{
    assert_int_equal(path.count, count);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(path.indexes[i], want[i]);
}

static void test_message_paths_of_nested_messages(void **state)
{
    assert_path(path_of("test.package.MessageA"), 1, (int32_t[]){0});
    assert_path(path_of("test.package.MessageA.MessageB.MessageC"), 3, (int32_t[]){0, 0, 0});
    assert_path(path_of("test.package.MessageA.MessageD"), 2, (int32_t[]){0, 1});
    /* The documentation's example: MessageE.MessageG is [0, 2, 1]. */
    assert_path(path_of("test.package.MessageA.MessageE.MessageG"), 3, (int32_t[]){0, 2, 1});
    assert_path(path_of("test.package.MessageH"), 1, (int32_t[]){1});
    assert_path(path_of("test.package.MessageH.MessageI"), 2, (int32_t[]){1, 0});

    hs_wire_path path;
    hs_error error = {0};
    assert_int_equal(hs_wire_message_path(docs_proto, "test.package.NotAMessage", &path, &error),
                     HS_ERR_NOT_FOUND);
    assert_int_equal(hs_wire_message_path(docs_proto, "other.MessageA", &path, &error), HS_ERR_NOT_FOUND);
    assert_int_equal(hs_wire_message_path("message A { }}", "X", &path, &error), HS_ERR_PARSE);
}

/* Confluent's layout: magic 0, the id big-endian, then the indexes as zigzag varints; [0] is the single
 * byte 0. */
static void test_header_layouts_of_the_documentation(void **state)
{
    uint8_t out[HS_WIRE_HEADER_MAX];
    hs_wire_path first = {.indexes = {0}, .count = 1};
    assert_int_equal(hs_wire_header(out, 1, &first), 6);
    assert_memory_equal(out, ((uint8_t[]){0x00, 0x00, 0x00, 0x00, 0x01, 0x00}), 6);

    hs_wire_path g = {.indexes = {0, 2, 1}, .count = 3};
    assert_int_equal(hs_wire_header(out, 0x01020304, &g), 9);
    assert_memory_equal(out, ((uint8_t[]){0x00, 0x01, 0x02, 0x03, 0x04, 0x06, 0x00, 0x04, 0x02}), 9);

    hs_wire_path i = {.indexes = {1, 0}, .count = 2};
    assert_int_equal(hs_wire_header(out, 100000, &i), 8);
    assert_memory_equal(out, ((uint8_t[]){0x00, 0x00, 0x01, 0x86, 0xa0, 0x04, 0x02, 0x00}), 8);

    hs_wire_path second = {.indexes = {1}, .count = 1};
    assert_int_equal(hs_wire_header(out, 7, &second), 7);
    assert_memory_equal(out, ((uint8_t[]){0x00, 0x00, 0x00, 0x00, 0x07, 0x02, 0x02}), 7);
}

static void assert_varint(int32_t value, size_t len, const uint8_t *want)
{
    uint8_t out[5];
    assert_int_equal(hs_wire_put_varint(out, value), len);
    assert_memory_equal(out, want, len);
    /* and back, through a header of one index */
    uint8_t frame[16] = {0, 0, 0, 0, 9, 0x02};
    memcpy(frame + 6, out, len);
    hs_wire_frame parsed;
    hs_error error = {0};
    if (value >= 0) {
        assert_int_equal(hs_wire_parse(frame, 6 + len, &parsed, &error), HS_OK);
        assert_int_equal(parsed.path.indexes[0], value);
        assert_int_equal(parsed.header_len, 6 + len);
    } else {
        assert_int_equal(hs_wire_parse(frame, 6 + len, &parsed, &error), HS_ERR_DECODE);
        assert_non_null(strstr(error.message, "negative"));
    }
}

static void test_zigzag_varints(void **state)
{
    assert_varint(0, 1, (uint8_t[]){0x00});
    assert_varint(-1, 1, (uint8_t[]){0x01});
    assert_varint(1, 1, (uint8_t[]){0x02});
    assert_varint(-2, 1, (uint8_t[]){0x03});
    assert_varint(63, 1, (uint8_t[]){0x7e});
    assert_varint(-64, 1, (uint8_t[]){0x7f});
    assert_varint(64, 2, (uint8_t[]){0x80, 0x01});
    assert_varint(-65, 2, (uint8_t[]){0x81, 0x01});
    assert_varint(INT32_MAX, 5, (uint8_t[]){0xfe, 0xff, 0xff, 0xff, 0x0f});
    assert_varint(INT32_MIN, 5, (uint8_t[]){0xff, 0xff, 0xff, 0xff, 0x0f});
}

static void test_malformed_headers_are_refused(void **state)
{
    hs_wire_frame f;
    hs_error error = {0};
    assert_int_equal(hs_wire_parse((uint8_t[]){0x00, 0x00, 0x00}, 3, &f, &error), HS_ERR_DECODE);
    assert_int_equal(hs_wire_parse((uint8_t[]){0x08, 0x01}, 2, &f, &error), HS_ERR_DECODE); /* bare */
    /* a count varint that runs out of the value, and one of six bytes */
    assert_int_equal(hs_wire_parse((uint8_t[]){0, 0, 0, 0, 1, 0x80}, 6, &f, &error), HS_ERR_DECODE);
    assert_int_equal(
        hs_wire_parse((uint8_t[]){0, 0, 0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 11, &f, &error),
        HS_ERR_DECODE);
    /* a negative count (-1), and more indexes than the value holds */
    assert_int_equal(hs_wire_parse((uint8_t[]){0, 0, 0, 0, 1, 0x01}, 6, &f, &error), HS_ERR_DECODE);
    assert_int_equal(hs_wire_parse((uint8_t[]){0, 0, 0, 0, 1, 0x06, 0x00}, 7, &f, &error), HS_ERR_DECODE);
    /* more indexes than a reader follows */
    assert_int_equal(hs_wire_parse((uint8_t[]){0, 0, 0, 0, 1, 2 * (HS_WIRE_MAX_INDEXES + 1)}, 6, &f, &error),
                     HS_ERR_DECODE);
    assert_non_null(strstr(error.message, "outside"));
    /* the shortcut and its long form say the same */
    assert_int_equal(hs_wire_parse((uint8_t[]){0, 0, 0, 0, 5, 0x00, 0x08}, 7, &f, &error), HS_OK);
    assert_int_equal(f.schema_id, 5);
    assert_int_equal(f.path.count, 1);
    assert_int_equal(f.path.indexes[0], 0);
    assert_int_equal(f.header_len, 6);
    assert_int_equal(hs_wire_parse((uint8_t[]){0, 0x80, 0, 0, 5, 0x02, 0x00, 0x08}, 8, &f, &error), HS_OK);
    assert_int_equal(f.schema_id, (int32_t)0x80000005u);
    assert_int_equal(f.path.count, 1);
    assert_int_equal(f.header_len, 7);
}

static void test_embedded_sources_and_their_imports(void **state)
{
    size_t count;
    const hs_proto_source *all = hs_proto_sources(&count);
    assert_true(count >= 10);
    const hs_proto_source *common = hs_proto_source_find("healthsignals/v1/common.proto");
    assert_non_null(common);
    assert_non_null(strstr(common->text, "package healthsignals.v1;"));
    assert_non_null(strstr(common->text, "message Scope {"));
    assert_null(hs_proto_source_find("healthsignals/v1/nothing.proto"));
    (void)all;

    const hs_proto_source *file;
    hs_wire_path path;
    hs_error error = {0};
    assert_int_equal(hs_wire_locate(&healthsignals__v1__regional_variation__descriptor, &file, &path, &error),
                     HS_OK);
    assert_string_equal(file->path, "healthsignals/v1/regional_variation.proto");
    assert_path(path, 1, (int32_t[]){1}); /* after RegionValue */
    assert_int_equal(hs_wire_locate(&healthsignals__v1__region_value__descriptor, &file, &path, &error),
                     HS_OK);
    assert_path(path, 1, (int32_t[]){0});
}

typedef struct imports {
    char paths[4][64];
    size_t count;
} imports;

static hs_err collect(void *ctx, const char *path, size_t len, hs_error *error)
{
    imports *im = ctx;
    if (im->count < 4 && len < 64) {
        memcpy(im->paths[im->count], path, len);
        im->paths[im->count++][len] = '\0';
    }
    return HS_OK;
}

static void test_imports(void **state)
{
    imports im = {0};
    hs_error error = {0};
    const hs_proto_source *variation = hs_proto_source_find("healthsignals/v1/regional_variation.proto");
    assert_int_equal(hs_wire_imports(variation->text, collect, &im, &error), HS_OK);
    assert_int_equal(im.count, 2);
    assert_string_equal(im.paths[0], "healthsignals/v1/common.proto");
    assert_string_equal(im.paths[1], "healthsignals/v1/rule.proto");
    im.count = 0;
    assert_int_equal(
        hs_wire_imports("// import \"x.proto\";\nimport public \"a/b.proto\";", collect, &im, &error), HS_OK);
    assert_int_equal(im.count, 1);
    assert_string_equal(im.paths[0], "a/b.proto");
}

/* A topic's values framed once its schema id is set, read back through the same code the services use,
 * and a framing that names another message refused with the reason. */
static void test_values_of_a_topic_framed_and_read(void **state)
{
    const hs_topic *variation = hs_topic_find(HS_TOPIC_VARIATION);
    const hs_topic *rules = hs_topic_find(HS_TOPIC_RULES);
    Healthsignals__V1__RegionalVariation v = HEALTHSIGNALS__V1__REGIONAL_VARIATION__INIT;
    v.indicator = "kraeft.standardforloeb.compliance";
    v.period = "2023Q2";
    uint8_t packed[256];
    size_t len = protobuf_c_message_pack(&v.base, packed);

    uint8_t small[512];
    size_t out_len;
    assert_int_equal(hs_wire_schema_id(variation), -1);
    assert_ptr_equal(hs_wire_frame_value(variation, packed, len, small, sizeof small, &out_len), packed);
    assert_int_equal(out_len, len);

    hs_error error = {0};
    assert_int_equal(hs_wire_enable(variation, 42, &error), HS_OK);
    assert_int_equal(hs_wire_schema_id(variation), 42);
    assert_int_equal(hs_wire_schema_id(rules), -1);
    const uint8_t *framed = hs_wire_frame_value(variation, packed, len, small, sizeof small, &out_len);
    assert_ptr_equal(framed, small);
    assert_int_equal(out_len, len + 7);
    assert_memory_equal(framed, ((uint8_t[]){0x00, 0x00, 0x00, 0x00, 42, 0x02, 0x02}), 7);
    assert_memory_equal(framed + 7, packed, len);
    /* too large for `small`: a buffer of its own */
    const uint8_t *heap = hs_wire_frame_value(variation, packed, len, small, 8, &out_len);
    assert_true(heap != small && heap != packed);
    assert_memory_equal(heap, small, out_len);
    free((void *)heap);

    Healthsignals__V1__RegionalVariation *back = (Healthsignals__V1__RegionalVariation *)hs_wire_unpack(
        &healthsignals__v1__regional_variation__descriptor, NULL, out_len, framed);
    assert_non_null(back);
    assert_string_equal(back->indicator, "kraeft.standardforloeb.compliance");
    protobuf_c_message_free_unpacked(&back->base, NULL);
    /* bare values read as before */
    back = (Healthsignals__V1__RegionalVariation *)hs_wire_unpack(
        &healthsignals__v1__regional_variation__descriptor, NULL, len, packed);
    assert_non_null(back);
    protobuf_c_message_free_unpacked(&back->base, NULL);

    /* [0] of regional_variation.proto is RegionValue, not RegionalVariation */
    uint8_t wrong[300] = {0x00, 0x00, 0x00, 0x00, 42, 0x00};
    memcpy(wrong + 6, packed, len);
    const uint8_t *payload;
    size_t payload_len;
    assert_int_equal(hs_wire_payload(&healthsignals__v1__regional_variation__descriptor, wrong, len + 6,
                                     &payload, &payload_len, &error),
                     HS_ERR_DECODE);
    assert_string_equal(error.message, "framed value (schema id 42) names message [0] of its schema, not "
                                       "healthsignals.v1.RegionalVariation ([1] in "
                                       "healthsignals/v1/regional_variation.proto)");
    assert_null(hs_wire_unpack(&healthsignals__v1__regional_variation__descriptor, NULL, len + 6, wrong));
    /* the first message of rule.proto is Rule: the shortcut */
    Healthsignals__V1__Rule rule = HEALTHSIGNALS__V1__RULE__INIT;
    rule.id = "r1";
    len = protobuf_c_message_pack(&rule.base, packed);
    uint8_t rule_framed[300] = {0x00, 0x00, 0x00, 0x00, 3, 0x00};
    memcpy(rule_framed + 6, packed, len);
    Healthsignals__V1__Rule *r = (Healthsignals__V1__Rule *)hs_wire_unpack(
        &healthsignals__v1__rule__descriptor, NULL, len + 6, rule_framed);
    assert_non_null(r);
    assert_string_equal(r->id, "r1");
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_paths_of_nested_messages),
        cmocka_unit_test(test_header_layouts_of_the_documentation),
        cmocka_unit_test(test_zigzag_varints),
        cmocka_unit_test(test_malformed_headers_are_refused),
        cmocka_unit_test(test_embedded_sources_and_their_imports),
        cmocka_unit_test(test_imports),
        cmocka_unit_test(test_values_of_a_topic_framed_and_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
