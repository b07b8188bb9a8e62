/* The one entry point calculations emit through; each driver supplies its own `put` (see hs/calc.h). */
#include "hs/calc.h"

hs_err hs_emit_put(hs_emit *emit, const hs_topic *topic, const char *key, const ProtobufCMessage *value)
{
    return emit->put(emit, topic, key, value);
}

hs_err hs_emit_put_packed(hs_emit *emit, const hs_topic *topic, const char *key,
                          const ProtobufCMessage *value, const uint8_t *bytes, size_t len)
{
    return emit->put_packed ? emit->put_packed(emit, topic, key, bytes, len)
                            : emit->put(emit, topic, key, value);
}
