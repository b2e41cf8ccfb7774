#ifndef HARK_GOERTZEL_H
#define HARK_GOERTZEL_H

#include <stdbool.h>
#include <stdint.h>

/// Whether this CPU runs hark_goertzel_avx (it has AVX, and the OS saves its registers).
bool hark_goertzel_avx_available(void);

/// Eight Goertzel recurrences over `count` samples, two samples a step, exactly as
/// DTMFDetector.accumulate computes them with SIMD8<Float> (same operations in the same order,
/// no fused multiply-add), in one 256-bit register each instead of two 128-bit halves.
/// `s1`, `s2` (8 floats each) and `energy` are read and updated. Call it only when
/// hark_goertzel_avx_available() is true.
void hark_goertzel_avx(const int16_t *samples, long count, const float *coefficients,
                       const float *two_step_coefficients, float *s1, float *s2, float *energy);

/// The recurrences of two whole blocks of `count` samples each (`first` and `second`), from a
/// zero state, at once: the two chains of dependent operations overlap, where one alone waits on
/// each result. Each block's results are those of hark_goertzel_avx bit for bit. `states` is 17
/// floats per block, s1 (8), s2 (8) and the energy, first block first.
void hark_goertzel_avx_two_blocks(const int16_t *first, const int16_t *second, long count,
                                  const float *coefficients, const float *two_step_coefficients,
                                  float *states);

#endif
