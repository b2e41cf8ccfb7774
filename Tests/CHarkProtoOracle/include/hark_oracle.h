// The libprotobuf-c oracle: C code that protoc-c generated from proto/ (see
// tools/generate-protobuf-c), plus timing helpers for the codec benchmark.
#ifndef C_HARK_PROTO_ORACLE_H
#define C_HARK_PROTO_ORACLE_H

#include <protobuf-c/protobuf-c.h>
#include "nuance/rpc/error_details.pb-c.h"
#include "nuance/asr/v1/resource.pb-c.h"
#include "nuance/asr/v1/result.pb-c.h"
#include "nuance/asr/v1/recognizer.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/// Nanoseconds per `protobuf_c_message_pack` of `message` into `out`, over `iterations` runs.
double hark_oracle_ns_per_pack(const ProtobufCMessage *message, uint8_t *out, size_t iterations);

/// Nanoseconds per `protobuf_c_message_unpack` + `protobuf_c_message_free_unpacked` of `data`.
double hark_oracle_ns_per_unpack(const ProtobufCMessageDescriptor *descriptor,
                                 const uint8_t *data, size_t length, size_t iterations);

/// `protobuf_c_message_unpack` with the default allocator; NULL when the bytes do not decode.
ProtobufCMessage *hark_oracle_unpack(const ProtobufCMessageDescriptor *descriptor,
                                     const uint8_t *data, size_t length);

/// The descriptors of the two top-level messages (Swift cannot take the address of a C constant).
const ProtobufCMessageDescriptor *hark_oracle_request_descriptor(void);
const ProtobufCMessageDescriptor *hark_oracle_response_descriptor(void);

#endif
