#include "CCurlShims.h"
#include <sys/socket.h>
#include <netinet/in.h>
#include <string.h>

CURLcode curlshim_setopt_long(CURL *h, CURLoption opt, long v) { return curl_easy_setopt(h, opt, v); }
CURLcode curlshim_setopt_string(CURL *h, CURLoption opt, const char *v) { return curl_easy_setopt(h, opt, v); }
CURLcode curlshim_setopt_ptr(CURL *h, CURLoption opt, void *v) { return curl_easy_setopt(h, opt, v); }
CURLcode curlshim_setopt_writefn(CURL *h, size_t (*fn)(char *, size_t, size_t, void *)) { return curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fn); }
CURLcode curlshim_setopt_headerfn(CURL *h, size_t (*fn)(char *, size_t, size_t, void *)) { return curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, fn); }
CURLcode curlshim_getinfo_long(CURL *h, CURLINFO info, long *out) { return curl_easy_getinfo(h, info, out); }
CURLcode curlshim_getinfo_double(CURL *h, CURLINFO info, double *out) { return curl_easy_getinfo(h, info, out); }
CURLMcode curlshim_multi_setopt_long(CURLM *m, CURLMoption opt, long v) { return curl_multi_setopt(m, opt, v); }

static int ipv4_is_internal(const unsigned char *a) {
    if (a[0] == 0 || a[0] == 10 || a[0] == 127) return 1;                 /* this network, private, loopback */
    if (a[0] == 100 && (a[1] & 0xC0) == 64) return 1;                      /* 100.64/10 shared (CGNAT) */
    if (a[0] == 169 && a[1] == 254) return 1;                              /* link-local */
    if (a[0] == 172 && (a[1] & 0xF0) == 16) return 1;                      /* 172.16/12 */
    if (a[0] == 192 && a[1] == 168) return 1;                              /* 192.168/16 */
    if (a[0] == 192 && a[1] == 0 && a[2] == 0) return 1;                   /* 192.0.0/24 protocol assignments */
    if (a[0] == 198 && (a[1] & 0xFE) == 18) return 1;                      /* 198.18/15 benchmarking */
    if (a[0] >= 224) return 1;                                             /* multicast, reserved, broadcast */
    return 0;
}

int curlshim_ip_is_internal(int family, const unsigned char *b) {
    if (family == AF_INET) return ipv4_is_internal(b);
    if (family != AF_INET6) return 1;
    static const unsigned char zeros[12] = {0};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    static const unsigned char nat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
    /* ::, ::1 and ::a.b.c.d (deprecated IPv4-compatible) all fall under the IPv4 rules:
       0.0.0.0 and 0.0.0.1 are "this network", so both are internal. */
    if (memcmp(b, zeros, 12) == 0 || memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0) return ipv4_is_internal(b + 12);
    if ((b[0] & 0xFE) == 0xFC) return 1;                                   /* fc00::/7 unique-local */
    if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) return 1;                   /* fe80::/10 link-local */
    if (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0) return 1;                   /* fec0::/10 site-local (deprecated) */
    if (b[0] == 0xFF) return 1;                                            /* multicast */
    return 0;
}

static curl_socket_t refuse_internal(void *clientp, curlsocktype purpose, struct curl_sockaddr *address) {
    (void)purpose;
    int internal = 1;
    if (address->family == AF_INET && address->addrlen >= sizeof(struct sockaddr_in)) {
        internal = curlshim_ip_is_internal(AF_INET, (const unsigned char *)&((struct sockaddr_in *)&address->addr)->sin_addr);
    } else if (address->family == AF_INET6 && address->addrlen >= sizeof(struct sockaddr_in6)) {
        internal = curlshim_ip_is_internal(AF_INET6, ((struct sockaddr_in6 *)&address->addr)->sin6_addr.s6_addr);
    }
    if (internal) {
        *(int *)clientp = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype, address->protocol);
}

CURLcode curlshim_refuse_internal_addresses(CURL *h, int *refused) {
    CURLcode rc = curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, refuse_internal);
    if (rc == CURLE_OK) rc = curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, (void *)refused);
    if (rc == CURLE_OK) rc = curl_easy_setopt(h, CURLOPT_PROXY, "");
    if (rc == CURLE_OK) rc = curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
    return rc;
}
