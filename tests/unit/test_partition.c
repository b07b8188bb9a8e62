/* Partition choice must agree with Kafka's Java client bit for bit: a record a Java producer publishes and
 * one healthsignals publishes for the same grouping key have to land in the same partition, or a service
 * would see half of an indicator's facts. The vectors are those of Kafka's own UtilsTest.testMurmur2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hs/partition.h"

static int32_t murmur2_of(const char *text)
{
    return hs_partition_murmur2(text, strlen(text));
}

static void test_murmur2_matches_kafka_utils_test_vectors(void **state)
{
    assert_int_equal(murmur2_of("21"), -973932308);
    assert_int_equal(murmur2_of("foobar"), -790332482);
    assert_int_equal(murmur2_of("a-little-bit-long-string"), -985981536);
    assert_int_equal(murmur2_of("a-little-bit-longer-string"), -1486304829);
    assert_int_equal(murmur2_of("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
    assert_int_equal(murmur2_of("abc"), 479470107);
}

static void test_murmur2_of_empty_key_is_the_seeded_constant(void **state)
{
    /* Java: Utils.murmur2(new byte[0]) == 275646681. */
    assert_int_equal(hs_partition_murmur2(NULL, 0), 275646681);
}

static void test_partition_is_positive_hash_modulo_count(void **state)
{
    /* toPositive(-790332482) = 1357151166; 1357151166 % 50 = 16. */
    assert_int_equal(hs_partition_for_key("foobar", 6, 50), 16);
    assert_int_equal(hs_partition_for_key("foobar", 6, 1), 0);
}

static void test_partition_depends_only_on_the_grouping_key(void **state)
{
    /* Every fact of one indicator shares its grouping key, so every fact lands in one partition. */
    const char *indicator = "udredningsret.somatik.compliance";
    int32_t first = hs_partition_for_key(indicator, strlen(indicator), 8);
    assert_in_range(first, 0, 7);
    for (int i = 0; i < 100; i++)
        assert_int_equal(hs_partition_for_key(indicator, strlen(indicator), 8), first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur2_matches_kafka_utils_test_vectors),
        cmocka_unit_test(test_murmur2_of_empty_key_is_the_seeded_constant),
        cmocka_unit_test(test_partition_is_positive_hash_modulo_count),
        cmocka_unit_test(test_partition_depends_only_on_the_grouping_key),
    };
    return cmocka_run_group_tests_name("partition", tests, NULL, NULL);
}
