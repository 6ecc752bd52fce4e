/* libFuzzer target for common/http1: requests, responses and chunked bodies, with invariants:
 * every slice lies inside the input, a complete head's prefixes need more and resuming with
 * prev_len gives the same result, errors carry a 4xx/5xx status and a reason, and the chunked
 * decoder gives the same bytes and outcome fed all at once or one byte at a time. The first input
 * byte picks which. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/http1.h"

static struct http1_msg a, b;

static void check_slice(struct http1_slice s, const uint8_t *buf, size_t len)
{
    if (s.p == NULL || s.len == 0 ||
        (s.len == 1 && s.p[0] == '/' &&
         !(s.p >= (const char *)buf && s.p < (const char *)buf + len)))
        return;
    if (s.p < (const char *)buf || s.p + s.len > (const char *)buf + len)
        abort();
}

static void check_request(const uint8_t *d, size_t n)
{
    enum http1_result r = http1_parse_request((const char *)d, n, 0, NULL, &a);
    if (r == HTTP1_DONE) {
        if (a.head_len > n || a.n_headers > HTTP1_MAX_HEADERS)
            abort();
        check_slice(a.method, d, n);
        check_slice(a.target, d, n);
        check_slice(a.path, d, n);
        check_slice(a.query, d, n);
        check_slice(a.host, d, n);
        for (size_t i = 0; i < a.n_headers; i++) {
            check_slice(a.headers[i].name, d, n);
            check_slice(a.headers[i].value, d, n);
        }
        if (a.body == HTTP1_BODY_LENGTH && a.content_length < 0)
            abort();
        if (a.body == HTTP1_BODY_CLOSE)
            abort();
        /* Every prefix of a complete head needs more; resuming gives the same answer. */
        size_t k = a.head_len ? (size_t)(d[0] * 131u) % a.head_len : 0;
        if (http1_parse_request((const char *)d, k, 0, NULL, &b) != HTTP1_NEED_MORE)
            abort();
        if (http1_parse_request((const char *)d, n, k, NULL, &b) != HTTP1_DONE ||
            b.head_len != a.head_len)
            abort();
    } else if (r == HTTP1_ERROR) {
        if (!a.error || a.error_status < 400)
            abort();
    }
}

static void check_chunked(const uint8_t *d, size_t n)
{
    struct http1_chunked c1, c2;
    http1_chunked_init(&c1);
    http1_chunked_init(&c2);
    static uint8_t out1[1 << 16], out2[1 << 16];
    size_t o1 = 0, o2 = 0, off = 0, used;
    struct http1_slice data;
    enum http1_result r1 = HTTP1_NEED_MORE, r2 = HTTP1_NEED_MORE;
    while (off < n) {
        r1 = http1_chunked_feed(&c1, (const char *)d + off, n - off, &used, &data);
        memcpy(out1 + o1, data.p, data.len);
        o1 += data.len;
        off += used;
        if (r1 != HTTP1_NEED_MORE)
            break;
    }
    size_t end1 = off;
    for (off = 0; off < n;) {
        r2 = http1_chunked_feed(&c2, (const char *)d + off, 1, &used, &data);
        memcpy(out2 + o2, data.p, data.len);
        o2 += data.len;
        off += used;
        if (r2 != HTTP1_NEED_MORE)
            break;
    }
    if (r1 != r2 || o1 != o2 || memcmp(out1, out2, o1) != 0)
        abort();
    if (r1 == HTTP1_DONE && end1 != off)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n == 0 || n > 60000)
        return 0;
    switch (d[0] % 3) {
    case 0:
        check_request(d + 1, n - 1);
        break;
    case 1:
        http1_parse_response((const char *)d + 1, n - 1, 0, NULL, (enum http1_method)(d[0] % 10),
                             &a);
        break;
    default:
        check_chunked(d + 1, n - 1);
    }
    return 0;
}
