#ifndef HARK_PREFETCH_H
#define HARK_PREFETCH_H

/// Asks the CPU to bring the cache line at `address` in, without waiting for it (x86 PREFETCHT0;
/// a no-op where the architecture has none). Never faults, whatever the address: a prefetch of
/// memory that is not mapped is dropped.
///
/// At thousands of sessions a loop's per-session objects are not in cache when their turn
/// comes, and each first touch waits for memory in turn. Prefetching the objects of the sessions
/// a few turns ahead lets those waits overlap.
static inline __attribute__((always_inline)) void hark_prefetch(const void *address) {
  __builtin_prefetch(address, 0, 3);
}

/// hark_prefetch of the `lines` 64-byte lines from `address` on.
static inline __attribute__((always_inline)) void hark_prefetch_lines(const void *address,
                                                                      int lines) {
  for (int line = 0; line < lines; line++) {
    __builtin_prefetch((const char *)address + 64 * line, 0, 3);
  }
}

#endif
