#ifndef PINGLASS_CSHAREDCOUNTERS_H
#define PINGLASS_CSHAREDCOUNTERS_H
#include <stddef.h>
#include <stdint.h>

/* The counter table SharedCounters shares across fork (`shared_counters_`): libc only, so
   the domain, which counts through SharedCounters, links no libcurl. */

/* A table of 64-bit counters in an anonymous MAP_SHARED mapping, zero-filled. Made by a
   pre-fork master before it forks, it is the same memory in every worker, so a count added
   by one worker is read by all. NULL when the mapping cannot be made (errno says why). */
uint64_t *shared_counters_create(size_t count);
/* Atomic add and load: workers count concurrently, readers never see a torn value. */
void shared_counters_add(uint64_t *table, size_t index, uint64_t n);
uint64_t shared_counters_load(const uint64_t *table, size_t index);
#endif
