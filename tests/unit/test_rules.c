/* hs/rules.h: the rules a calculation holds — kept sorted by id, replaced and deleted by id, the replaced
 * rule handed back, and a rule put back after a replacement or deletion without growing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hs/rules.h"

typedef Healthsignals__V1__Rule rule_msg;

static rule_msg *rule(const char *id, const char *subject)
{
    rule_msg r = HEALTHSIGNALS__V1__RULE__INIT;
    r.id = (char *)id;
    r.subject = (char *)subject;
    rule_msg *copy = hs_rule_copy(&r);
    assert_non_null(copy);
    assert_string_equal(copy->id, id);
    return copy;
}

static void test_sorted_replaced_deleted(void **unused)
{
    hs_rule_set set = {0};
    rule_msg *old;
    hs_error error = {0};
    static const char *const ids[] = {"m", "c", "x", "a", "k"};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(hs_rule_set_put(&set, ids[i], rule(ids[i], "one"), &old, &error), HS_OK);
        assert_null(old);
    }
    assert_int_equal(set.count, 5);
    static const char *const sorted[] = {"a", "c", "k", "m", "x"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(set.items[i]->id, sorted[i]);
    /* Replaced: the old one handed back. */
    assert_int_equal(hs_rule_set_put(&set, "k", rule("k", "two"), &old, &error), HS_OK);
    assert_non_null(old);
    assert_string_equal(old->subject, "one");
    assert_string_equal(set.items[2]->subject, "two");
    protobuf_c_message_free_unpacked(&old->base, NULL);
    /* Deleted, then put back: no growth needed, order kept. */
    size_t cap = set.cap;
    assert_int_equal(hs_rule_set_put(&set, "c", NULL, &old, &error), HS_OK);
    assert_int_equal(set.count, 4);
    rule_msg *back;
    assert_int_equal(hs_rule_set_put(&set, "c", old, &back, NULL), HS_OK);
    assert_null(back);
    assert_int_equal(set.cap, cap);
    assert_string_equal(set.items[1]->id, "c");
    /* Deleting what is not there changes nothing. */
    assert_int_equal(hs_rule_set_put(&set, "zz", NULL, &old, &error), HS_OK);
    assert_null(old);
    assert_int_equal(set.count, 5);
    hs_rule_set_free(&set);
    assert_int_equal(set.count, 0);
    assert_null(set.items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sorted_replaced_deleted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
