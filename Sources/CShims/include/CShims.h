#ifndef PINGLASS_CSHIMS_H
#define PINGLASS_CSHIMS_H
#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

/* curl_easy_setopt / curl_easy_getinfo / curl_multi_setopt are variadic: Swift cannot call
   them, so each argument type gets a typed wrapper. */
CURLcode pg_curl_setopt_long(CURL *h, CURLoption opt, long v);
CURLcode pg_curl_setopt_string(CURL *h, CURLoption opt, const char *v);
CURLcode pg_curl_setopt_ptr(CURL *h, CURLoption opt, void *v);
CURLcode pg_curl_setopt_writefn(CURL *h, size_t (*fn)(char *, size_t, size_t, void *));
CURLcode pg_curl_setopt_headerfn(CURL *h, size_t (*fn)(char *, size_t, size_t, void *));
CURLcode pg_curl_getinfo_long(CURL *h, CURLINFO info, long *out);
CURLcode pg_curl_getinfo_double(CURL *h, CURLINFO info, double *out);
CURLMcode pg_curl_multi_setopt_long(CURLM *m, CURLMoption opt, long v);

/* A table of 64-bit counters in an anonymous MAP_SHARED mapping, zero-filled. Made by a
   pre-fork master before it forks, it is the same memory in every worker, so a count added
   by one worker is read by all. NULL when the mapping cannot be made (errno says why). */
uint64_t *pg_shared_counters_create(size_t count);
/* Atomic add and load: workers count concurrently, readers never see a torn value. */
void pg_shared_counters_add(uint64_t *table, size_t index, uint64_t n);
uint64_t pg_shared_counters_load(const uint64_t *table, size_t index);
#endif
