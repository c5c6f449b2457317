#include "CSharedCounters.h"
#include <sys/mman.h>

uint64_t *shared_counters_create(size_t count) {
    void *p = mmap(NULL, count * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : (uint64_t *)p;
}
void shared_counters_add(uint64_t *table, size_t index, uint64_t n) { __atomic_fetch_add(&table[index], n, __ATOMIC_RELAXED); }
uint64_t shared_counters_load(const uint64_t *table, size_t index) { return __atomic_load_n(&table[index], __ATOMIC_RELAXED); }
