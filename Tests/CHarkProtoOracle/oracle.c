#include "hark_oracle.h"

#include <time.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Keeps the compiler from discarding work whose result is otherwise unused. */
static volatile size_t hark_oracle_sink;

double hark_oracle_ns_per_pack(const ProtobufCMessage *message, uint8_t *out, size_t iterations) {
  double start = now_ns();
  size_t total = 0;
  for (size_t i = 0; i < iterations; i++) {
    total += protobuf_c_message_pack(message, out);
  }
  double elapsed = now_ns() - start;
  hark_oracle_sink = total;
  return elapsed / (double)iterations;
}

double hark_oracle_ns_per_unpack(const ProtobufCMessageDescriptor *descriptor,
                                 const uint8_t *data, size_t length, size_t iterations) {
  double start = now_ns();
  size_t total = 0;
  for (size_t i = 0; i < iterations; i++) {
    ProtobufCMessage *message = protobuf_c_message_unpack(descriptor, NULL, length, data);
    total += (size_t)message;
    protobuf_c_message_free_unpacked(message, NULL);
  }
  double elapsed = now_ns() - start;
  hark_oracle_sink = total;
  return elapsed / (double)iterations;
}

ProtobufCMessage *hark_oracle_unpack(const ProtobufCMessageDescriptor *descriptor,
                                     const uint8_t *data, size_t length) {
  return protobuf_c_message_unpack(descriptor, NULL, length, data);
}

const ProtobufCMessageDescriptor *hark_oracle_request_descriptor(void) {
  return &nuance__asr__v1__recognition_request__descriptor;
}

const ProtobufCMessageDescriptor *hark_oracle_response_descriptor(void) {
  return &nuance__asr__v1__recognition_response__descriptor;
}
