/* Builders for the records the tests encode, admit and publish: an observation together with the scope it
 * points to, so that one call makes a whole record. The observation points into its own struct: build it in
 * place and do not copy it.
 */
#ifndef HS_TEST_RECORDS_H
#define HS_TEST_RECORDS_H

#include "healthsignals/v1/capacity.pb-c.h"
#include "healthsignals/v1/common.pb-c.h"
#include "healthsignals/v1/indicator.pb-c.h"

typedef struct test_indicator {
    Healthsignals__V1__Scope scope;
    Healthsignals__V1__IndicatorObservation obs;
} test_indicator;

typedef struct test_capacity {
    Healthsignals__V1__Scope scope;
    Healthsignals__V1__CapacityObservation obs;
} test_capacity;

/* Sets `scope` to (kind, code) and returns it. */
static inline Healthsignals__V1__Scope *test_scope(Healthsignals__V1__Scope *scope,
                                                   Healthsignals__V1__ScopeKind kind, const char *code)
{
    *scope = (Healthsignals__V1__Scope)HEALTHSIGNALS__V1__SCOPE__INIT;
    scope->kind = kind;
    scope->code = (char *)code;
    return scope;
}

/* `indicator` for the scope (kind, code) in `period`: value in unit; the other fields are left unset. */
static inline void test_indicator_init(test_indicator *r, Healthsignals__V1__ScopeKind kind, const char *code,
                                       const char *indicator, const char *period, double value,
                                       Healthsignals__V1__Unit unit)
{
    *r = (test_indicator){.obs = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION__INIT};
    r->obs.indicator = (char *)indicator;
    r->obs.scope = test_scope(&r->scope, kind, code);
    r->obs.period = (char *)period;
    r->obs.value = value;
    r->obs.unit = unit;
}

/* `resource` for the scope (kind, code) in `period`; occupied, available and the rest are left unset. */
static inline void test_capacity_init(test_capacity *r, Healthsignals__V1__ScopeKind kind, const char *code,
                                      const char *resource, const char *period)
{
    *r = (test_capacity){.obs = HEALTHSIGNALS__V1__CAPACITY_OBSERVATION__INIT};
    r->obs.resource = (char *)resource;
    r->obs.scope = test_scope(&r->scope, kind, code);
    r->obs.period = (char *)period;
}

#endif
