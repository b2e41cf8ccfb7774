#include "hark_goertzel.h"

// Bit for bit the Swift code's arithmetic: never fuse a multiply and an add.
#pragma clang fp contract(off)

#if defined(__x86_64__)
#include <immintrin.h>

bool hark_goertzel_avx_available(void) { return __builtin_cpu_supports("avx"); }

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
  // s[n]   = c·s[n-1] − s[n-2] + x[n]
  // s[n+1] = (c² − 1)·s[n-1] − c·s[n-2] + c·x[n] + x[n+1]
  for (; index + 1 < count; index += 2) {
    const float x0 = (float)samples[index];
    const float x1 = (float)samples[index + 1];
    const __m256 vx0 = _mm256_set1_ps(x0);
    const __m256 vx1 = _mm256_set1_ps(x1);
    const __m256 next = _mm256_add_ps(_mm256_mul_ps(c, s1), _mm256_sub_ps(vx0, s2));
    const __m256 after_next =
        _mm256_add_ps(_mm256_mul_ps(c2, s1),
                      _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(c, vx0), vx1), _mm256_mul_ps(c, s2)));
    s2 = next;
    s1 = after_next;
    energy += x0 * x0 + x1 * x1;
  }
  if (index < count) {
    const float x = (float)samples[index];
    const __m256 s0 = _mm256_add_ps(_mm256_mul_ps(c, s1), _mm256_sub_ps(_mm256_set1_ps(x), s2));
    s2 = s1;
    s1 = s0;
    energy += x * x;
  }
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
  for (; index + 1 < count; index += 2) {
    const float x0 = (float)first[index], x1 = (float)first[index + 1];
    const float y0 = (float)second[index], y1 = (float)second[index + 1];
    const __m256 vx0 = _mm256_set1_ps(x0), vx1 = _mm256_set1_ps(x1);
    const __m256 vy0 = _mm256_set1_ps(y0), vy1 = _mm256_set1_ps(y1);
    const __m256 next_a = _mm256_add_ps(_mm256_mul_ps(c, a1), _mm256_sub_ps(vx0, a2));
    const __m256 next_b = _mm256_add_ps(_mm256_mul_ps(c, b1), _mm256_sub_ps(vy0, b2));
    const __m256 after_a =
        _mm256_add_ps(_mm256_mul_ps(c2, a1),
                      _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(c, vx0), vx1), _mm256_mul_ps(c, a2)));
    const __m256 after_b =
        _mm256_add_ps(_mm256_mul_ps(c2, b1),
                      _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(c, vy0), vy1), _mm256_mul_ps(c, b2)));
    a2 = next_a;
    a1 = after_a;
    b2 = next_b;
    b1 = after_b;
    energy_a += x0 * x0 + x1 * x1;
    energy_b += y0 * y0 + y1 * y1;
  }
  if (index < count) {
    const float x = (float)first[index], y = (float)second[index];
    const __m256 a0 = _mm256_add_ps(_mm256_mul_ps(c, a1), _mm256_sub_ps(_mm256_set1_ps(x), a2));
    const __m256 b0 = _mm256_add_ps(_mm256_mul_ps(c, b1), _mm256_sub_ps(_mm256_set1_ps(y), b2));
    a2 = a1;
    a1 = a0;
    b2 = b1;
    b1 = b0;
    energy_a += x * x;
    energy_b += y * y;
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
