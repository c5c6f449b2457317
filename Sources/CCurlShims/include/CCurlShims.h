#ifndef PINGLASS_CCURLSHIMS_H
#define PINGLASS_CCURLSHIMS_H
#include <curl/curl.h>
#include <stddef.h>

/* The libcurl shims HTTPClient needs (`curlshim_`). Only HTTPClient (and what links it)
   pulls this target, and with it libcurl. */

/* curl_easy_setopt / curl_easy_getinfo / curl_multi_setopt are variadic: Swift cannot call
   them, so each argument type gets a typed wrapper. */
CURLcode curlshim_setopt_long(CURL *h, CURLoption opt, long v);
CURLcode curlshim_setopt_string(CURL *h, CURLoption opt, const char *v);
CURLcode curlshim_setopt_ptr(CURL *h, CURLoption opt, void *v);
CURLcode curlshim_setopt_writefn(CURL *h, size_t (*fn)(char *, size_t, size_t, void *));
CURLcode curlshim_setopt_headerfn(CURL *h, size_t (*fn)(char *, size_t, size_t, void *));
CURLcode curlshim_getinfo_long(CURL *h, CURLINFO info, long *out);
CURLcode curlshim_getinfo_double(CURL *h, CURLINFO info, double *out);
CURLMcode curlshim_multi_setopt_long(CURLM *m, CURLMoption opt, long v);

/* 1 when an IPv4 (4 bytes) or IPv6 (16 bytes) address is not on the public internet:
   unspecified, loopback, private (10/8, 172.16/12, 192.168/16), shared CGNAT (100.64/10),
   link-local (169.254/16, fe80::/10), unique-local (fc00::/7), multicast, reserved, and the
   IPv4 inside IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96) and NAT64 (64:ff9b::/96)
   IPv6 addresses judged as IPv4. 0 for a public address. */
int curlshim_ip_is_internal(int family, const unsigned char *bytes);
/* Makes `h` refuse, at connect time, every address curlshim_ip_is_internal calls internal: the
   check runs on the address curl is about to connect to (after DNS, so a name that
   resolves or rebinds to an internal address is refused too). When a connection is
   refused, *refused is set to 1 (it must outlive the transfer). The transfer also goes
   direct (no proxy from the environment, whose address is not the server's) and on a fresh
   connection (never one opened without this check). */
CURLcode curlshim_refuse_internal_addresses(CURL *h, int *refused);

#endif
