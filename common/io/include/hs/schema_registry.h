/* A client of a Confluent-compatible schema registry (Confluent Schema Registry, Apicurio Registry's
 * /apis/ccompat/v7, Karapace, Redpanda): registers the contracts' .proto files so that values can be
 * written in Confluent's wire format (hs/wire.h), as Confluent's serializers would register them:
 *
 *   - the value schema of topic T under the subject "T-value" (TopicNameStrategy), its text the .proto file
 *     that declares T's message type, as in proto/ (embedded at build time);
 *   - every file it imports, transitively, under the subject named by its import path
 *     ("healthsignals/v1/common.proto"), referenced from the importing schema by that name, subject and
 *     the version the registry gave it.
 *
 * Registering a schema the subject already has returns its id and creates no version, so every instance
 * of every service registers at start-up. Requests are blocking (libcurl) and bounded by the timeout: call
 * this from a thread that may wait (the runtime's connect thread, hsctl), never from an event loop.
 */
#ifndef HS_SCHEMA_REGISTRY_H
#define HS_SCHEMA_REGISTRY_H

#include <stddef.h>

#include "hs/err.h"
#include "hs/topic.h"

typedef struct hs_schema_registry_options {
    const char *url; /* base URL: "http://host:8081", or Apicurio's "http://host:8080/apis/ccompat/v7" */
    const char *user_info;    /* Confluent's basic.auth.user.info, "user:password"; NULL or "" for none */
    const char *bearer_token; /* Confluent's bearer.auth.token; NULL or "" for none */
    const char *ca_location;  /* ssl.ca.location: a PEM file of CAs for https; NULL or "" for the system's */
    long timeout_ms;          /* for each request, connection included; 0: 10 s */
} hs_schema_registry_options;

/* Registers (or finds) the value schema of each of `topics` (`count` of them) and enables Confluent framing
 * of their values in this process (hs_wire_enable) with the ids the registry returns. A topic without a
 * value type (raw bytes of the runtime's own, hs.applied-rules.v1) is passed over: its values stay bare.
 * On error nothing further is enabled and the reason says which subject:
 *   HS_ERR_IO      the registry cannot be reached, timed out, or answered 5xx or 408/429: try again later;
 *   HS_ERR_CONFIG  the registry refused the request (401/403: credentials; 409: the schema is incompatible
 *                  with the subject's versions; 422: invalid; 404: not a schema registry at this URL), or
 *                  an invalid URL: trying again will not help;
 *   HS_ERR_INTERNAL a topic's type is in none of the embedded .proto files. */
hs_err hs_schema_registry_register(const hs_schema_registry_options *options, const hs_topic *const *topics,
                                   size_t count, hs_error *error);

#endif
