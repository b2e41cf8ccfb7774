#include "hark_goertzel.h"

// Bit for bit the Swift code's arithmetic: never fuse a multiply and an add.
#pragma clang fp contract(off)

#if defined(__x86_64__)
#include <immintrin.h>

bool hark_goertzel_avx_available(void) { return __builtin_cpu_supports("avx"); }

// s[n]   = c·s[n-1] − s[n-2] + x[n]
// s[n+1] = (c² − 1)·s[n-1] − c·s[n-2] + c·x[n] + x[n+1]
// Two samples a step: the terms of the samples are off the chain of dependent operations.
__attribute__((target("avx"), always_inline)) static inline void step_pair(
    __m256 c, __m256 c2, __m256 *s1, __m256 *s2, float *energy, float x0, float x1) {
  const __m256 vx0 = _mm256_set1_ps(x0), vx1 = _mm256_set1_ps(x1);
  const __m256 next = _mm256_add_ps(_mm256_mul_ps(c, *s1), _mm256_sub_ps(vx0, *s2));
  const __m256 after_next = _mm256_add_ps(
      _mm256_mul_ps(c2, *s1),
      _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(c, vx0), vx1), _mm256_mul_ps(c, *s2)));
  *s2 = next;
  *s1 = after_next;
  *energy += x0 * x0 + x1 * x1;
}

/// One sample: the last of an odd count.
__attribute__((target("avx"), always_inline)) static inline void step_one(
    __m256 c, __m256 *s1, __m256 *s2, float *energy, float x) {
  const __m256 s0 = _mm256_add_ps(_mm256_mul_ps(c, *s1), _mm256_sub_ps(_mm256_set1_ps(x), *s2));
  *s2 = *s1;
  *s1 = s0;
  *energy += x * x;
}

__attribute__((target("avx"))) void hark_goertzel_avx(const int16_t *samples, long count,
                                                      const float *coefficients,
                                                      const float *two_step_coefficients,
                                                      float *s1_state, float *s2_state,
                                                      float *energy_state) {
  const __m256 c = _mm256_loadu_ps(coefficients);
  const __m256 c2 = _mm256_loadu_ps(two_step_coefficients);
  __m256 s1 = _mm256_loadu_ps(s1_state);
  __m256 s2 = _mm256_loadu_ps(s2_state);
  float energy = *energy_state;
  long index = 0;
  for (; index + 1 < count; index += 2) {
    step_pair(c, c2, &s1, &s2, &energy, (float)samples[index], (float)samples[index + 1]);
  }
  if (index < count) step_one(c, &s1, &s2, &energy, (float)samples[index]);
  _mm256_storeu_ps(s1_state, s1);
  _mm256_storeu_ps(s2_state, s2);
  *energy_state = energy;
}

__attribute__((target("avx"))) void hark_goertzel_avx_two_blocks(
    const int16_t *first, const int16_t *second, long count, const float *coefficients,
    const float *two_step_coefficients, float *states) {
  const __m256 c = _mm256_loadu_ps(coefficients);
  const __m256 c2 = _mm256_loadu_ps(two_step_coefficients);
  __m256 a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps();
  __m256 b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps();
  float energy_a = 0, energy_b = 0;
  long index = 0;
  // The two blocks' steps interleaved: neither chain waits on the other.
  for (; index + 1 < count; index += 2) {
    step_pair(c, c2, &a1, &a2, &energy_a, (float)first[index], (float)first[index + 1]);
    step_pair(c, c2, &b1, &b2, &energy_b, (float)second[index], (float)second[index + 1]);
  }
  if (index < count) {
    step_one(c, &a1, &a2, &energy_a, (float)first[index]);
    step_one(c, &b1, &b2, &energy_b, (float)second[index]);
  }
  _mm256_storeu_ps(states, a1);
  _mm256_storeu_ps(states + 8, a2);
  states[16] = energy_a;
  _mm256_storeu_ps(states + 17, b1);
  _mm256_storeu_ps(states + 25, b2);
  states[33] = energy_b;
}

#else

bool hark_goertzel_avx_available(void) { return false; }

void hark_goertzel_avx(const int16_t *samples, long count, const float *coefficients,
                       const float *two_step_coefficients, float *s1, float *s2, float *energy) {
  (void)samples, (void)count, (void)coefficients, (void)two_step_coefficients;
  (void)s1, (void)s2, (void)energy;
}

void hark_goertzel_avx_two_blocks(const int16_t *first, const int16_t *second, long count,
                                  const float *coefficients, const float *two_step_coefficients,
                                  float *states) {
  (void)first, (void)second, (void)count, (void)coefficients, (void)two_step_coefficients;
  (void)states;
}

#endif
