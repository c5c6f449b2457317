#include "CShims.h"
#include <sys/mman.h>

CURLcode pg_curl_setopt_long(CURL *h, CURLoption opt, long v) { return curl_easy_setopt(h, opt, v); }
CURLcode pg_curl_setopt_string(CURL *h, CURLoption opt, const char *v) { return curl_easy_setopt(h, opt, v); }
CURLcode pg_curl_setopt_ptr(CURL *h, CURLoption opt, void *v) { return curl_easy_setopt(h, opt, v); }
CURLcode pg_curl_setopt_writefn(CURL *h, size_t (*fn)(char *, size_t, size_t, void *)) { return curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fn); }
CURLcode pg_curl_setopt_headerfn(CURL *h, size_t (*fn)(char *, size_t, size_t, void *)) { return curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, fn); }
CURLcode pg_curl_getinfo_long(CURL *h, CURLINFO info, long *out) { return curl_easy_getinfo(h, info, out); }
CURLcode pg_curl_getinfo_double(CURL *h, CURLINFO info, double *out) { return curl_easy_getinfo(h, info, out); }
CURLMcode pg_curl_multi_setopt_long(CURLM *m, CURLMoption opt, long v) { return curl_multi_setopt(m, opt, v); }

uint64_t *pg_shared_counters_create(size_t count) {
    void *p = mmap(NULL, count * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : (uint64_t *)p;
}
void pg_shared_counters_add(uint64_t *table, size_t index, uint64_t n) { __atomic_fetch_add(&table[index], n, __ATOMIC_RELAXED); }
uint64_t pg_shared_counters_load(const uint64_t *table, size_t index) { return __atomic_load_n(&table[index], __ATOMIC_RELAXED); }
