/* common/http1: valid requests and responses, the smuggling corpus (each case with the exact status
 * it must get), limits, incremental feeding, and the chunked decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/http1.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static struct http1_msg msg; /* large: one for all tests */

static enum http1_result parse_req(const char *raw, size_t len)
{
    return http1_parse_request(raw, len, 0, NULL, &msg);
}

static bool slice_is(struct http1_slice s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

/* Reports which table row failed before failing. */
#define CHECK(name, cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error("case '%s': %s\n", (name), #cond);                                         \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- valid requests ---- */

struct valid_case {
    const char *name;
    const char *raw;
    enum http1_method method;
    const char *path;
    const char *query; /* NULL: no '?' */
    const char *host;  /* NULL: no host */
    int minor;
    enum http1_body body;
    int64_t content_length;
    bool keep_alive, expect_continue, upgrade;
    size_t body_bytes; /* bytes after the head in raw */
};

static const struct valid_case valid_cases[] = {
    {"simple GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_METHOD_GET, "/", NULL, "a", 1,
     HTTP1_BODY_NONE, -1, true},
    {"query", "GET /p/q?x=1&y=2 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", HTTP1_METHOD_GET,
     "/p/q", "x=1&y=2", "example.com:8080", 1, HTTP1_BODY_NONE, -1, true},
    {"empty query", "GET /p? HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_METHOD_GET, "/p", "", "a", 1,
     HTTP1_BODY_NONE, -1, true},
    {"POST with Content-Length",
     "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", HTTP1_METHOD_POST,
     "/submit", NULL, "a", 1, HTTP1_BODY_LENGTH, 5, true, .body_bytes = 5},
    {"Content-Length 0", "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
     HTTP1_METHOD_PUT, "/x", NULL, "a", 1, HTTP1_BODY_LENGTH, 0, true},
    {"Content-Length leading zeros", "POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 007\r\n\r\n",
     HTTP1_METHOD_POST, "/", NULL, "a", 1, HTTP1_BODY_LENGTH, 7, true},
    {"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
     HTTP1_METHOD_POST, "/", NULL, "a", 1, HTTP1_BODY_CHUNKED, -1, true},
    {"chunked any case", "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: ChUnKeD\r\n\r\n",
     HTTP1_METHOD_POST, "/", NULL, "a", 1, HTTP1_BODY_CHUNKED, -1, true},
    {"gzip then chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     HTTP1_METHOD_POST, "/", NULL, "a", 1, HTTP1_BODY_CHUNKED, -1, true},
    {"codings on two lines",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
     HTTP1_METHOD_POST, "/", NULL, "a", 1, HTTP1_BODY_CHUNKED, -1, true},
    {"empty list elements", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked,\r\n\r\n",
     HTTP1_METHOD_POST, "/", NULL, "a", 1, HTTP1_BODY_CHUNKED, -1, true},
    {"HTTP/1.0 closes", "GET /old HTTP/1.0\r\n\r\n", HTTP1_METHOD_GET, "/old", NULL, NULL, 0,
     HTTP1_BODY_NONE, -1, false},
    {"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", HTTP1_METHOD_GET,
     "/", NULL, NULL, 0, HTTP1_BODY_NONE, -1, true},
    {"Connection: close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
     HTTP1_METHOD_GET, "/", NULL, "a", 1, HTTP1_BODY_NONE, -1, false},
    {"close among tokens", "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n",
     HTTP1_METHOD_GET, "/", NULL, "a", 1, HTTP1_BODY_NONE, -1, false},
    {"Expect 100-continue",
     "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
     HTTP1_METHOD_PUT, "/f", NULL, "a", 1, HTTP1_BODY_LENGTH, 3, true, true},
    {"Expect ignored in 1.0",
     "PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", HTTP1_METHOD_PUT, "/f",
     NULL, NULL, 0, HTTP1_BODY_LENGTH, 3, false, false},
    {"upgrade",
     "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n",
     HTTP1_METHOD_GET, "/ws", NULL, "a", 1, HTTP1_BODY_NONE, -1, true, false, true},
    {"Upgrade without Connection token",
     "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", HTTP1_METHOD_GET, "/ws", NULL,
     "a", 1, HTTP1_BODY_NONE, -1, true, false, false},
    {"absolute-form", "GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: other\r\n\r\n",
     HTTP1_METHOD_GET, "/a/b", "c=d", "example.com:8080", 1, HTTP1_BODY_NONE, -1, true},
    {"absolute-form without path", "GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
     HTTP1_METHOD_GET, "/", NULL, "example.com", 1, HTTP1_BODY_NONE, -1, true},
    {"absolute-form query only", "GET http://h?x HTTP/1.1\r\nHost: h\r\n\r\n", HTTP1_METHOD_GET,
     "/", "x", "h", 1, HTTP1_BODY_NONE, -1, true},
    {"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_METHOD_OPTIONS, "*", NULL, "a", 1,
     HTTP1_BODY_NONE, -1, true},
    {"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
     HTTP1_METHOD_CONNECT, "", NULL, "example.com:443", 1, HTTP1_BODY_NONE, -1, true},
    {"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_METHOD_GET, "/",
     NULL, "a", 1, HTTP1_BODY_NONE, -1, true},
    {"other method", "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_METHOD_OTHER, "/x", NULL, "a", 1,
     HTTP1_BODY_NONE, -1, true},
    {"methods are case-sensitive", "get / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_METHOD_OTHER, "/",
     NULL, "a", 1, HTTP1_BODY_NONE, -1, true},
    {"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", HTTP1_METHOD_GET, "/", NULL, "", 1,
     HTTP1_BODY_NONE, -1, true},
    {"IPv6 Host", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", HTTP1_METHOD_GET, "/", NULL,
     "[::1]:80", 1, HTTP1_BODY_NONE, -1, true},
    {"OWS around values", "GET / HTTP/1.1\r\nHost: \t a \t\r\nX-Empty: \r\n\r\n", HTTP1_METHOD_GET,
     "/", NULL, "a", 1, HTTP1_BODY_NONE, -1, true},
    {"target characters", "GET /a-b_c.d~e/%20/!$&'()*+,;=:@/x?q=/?:@[] HTTP/1.1\r\nHost: a\r\n\r\n",
     HTTP1_METHOD_GET, "/a-b_c.d~e/%20/!$&'()*+,;=:@/x", "q=/?:@[]", "a", 1, HTTP1_BODY_NONE, -1,
     true},
};

static void check_valid(const struct valid_case *c, size_t len)
{
    CHECK(c->name, msg.method_id == c->method);
    CHECK(c->name, slice_is(msg.path, c->path));
    if (c->query)
        CHECK(c->name, msg.query.p && slice_is(msg.query, c->query));
    else
        CHECK(c->name, msg.query.p == NULL);
    if (c->host)
        CHECK(c->name, msg.has_host && slice_is(msg.host, c->host));
    else
        CHECK(c->name, !msg.has_host);
    CHECK(c->name, msg.minor == c->minor);
    CHECK(c->name, msg.body == c->body);
    CHECK(c->name, msg.content_length == c->content_length);
    CHECK(c->name, msg.chunked == (c->body == HTTP1_BODY_CHUNKED));
    CHECK(c->name, msg.keep_alive == c->keep_alive);
    CHECK(c->name, msg.expect_continue == c->expect_continue);
    CHECK(c->name, msg.upgrade == c->upgrade);
    CHECK(c->name, msg.head_len == len - c->body_bytes);
}

static void test_valid_requests(void **state)
{
    (void)state;
    for (size_t i = 0; i < LEN(valid_cases); i++) {
        const struct valid_case *c = &valid_cases[i];
        size_t len = strlen(c->raw);
        enum http1_result r = parse_req(c->raw, len);
        if (r != HTTP1_DONE)
            print_error("case '%s': %d %s\n", c->name, msg.error_status, msg.error);
        CHECK(c->name, r == HTTP1_DONE);
        check_valid(c, len);
    }
}

static void test_fields_are_slices(void **state)
{
    (void)state;
    const char raw[] = "GET /x?y HTTP/1.1\r\nHost: h\r\nX-A:  one two \r\nx-b:3\r\n\r\n";
    assert_int_equal(parse_req(raw, strlen(raw)), HTTP1_DONE);
    assert_true(slice_is(msg.method, "GET"));
    assert_ptr_equal(msg.method.p, raw);
    assert_true(slice_is(msg.target, "/x?y"));
    assert_ptr_equal(msg.target.p, raw + 4);
    assert_int_equal(msg.n_headers, 3);
    assert_true(slice_is(msg.headers[1].name, "X-A"));
    assert_true(slice_is(msg.headers[1].value, "one two"));
    assert_true(slice_is(msg.headers[2].value, "3"));
    assert_ptr_equal(msg.headers[2].value.p, strstr(raw, "3\r\n"));
}

static void test_obs_text_in_value(void **state)
{
    (void)state;
    const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9\t!\r\n\r\n";
    assert_int_equal(parse_req(raw, strlen(raw)), HTTP1_DONE);
    assert_true(slice_is(msg.headers[1].value, "caf\xc3\xa9\t!"));
}

/* ---- the smuggling and validity corpus ---- */

struct error_case {
    const char *name;
    const char *raw;
    size_t len; /* 0: strlen(raw) */
    int status;
};

#define REQ(headers) "POST / HTTP/1.1\r\nHost: a\r\n" headers "\r\n"

static const struct error_case error_cases[] = {
    /* framing */
    {"CL and TE", REQ("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 0, 400},
    {"TE and CL", REQ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), 0, 400},
    {"CL, CL different", REQ("Content-Length: 5\r\nContent-Length: 6\r\n"), 0, 400},
    {"CL, CL equal", REQ("Content-Length: 5\r\nContent-Length: 5\r\n"), 0, 400},
    {"CL list", REQ("Content-Length: 5, 5\r\n"), 0, 400},
    {"CL plus sign", REQ("Content-Length: +5\r\n"), 0, 400},
    {"CL negative", REQ("Content-Length: -1\r\n"), 0, 400},
    {"CL space inside", REQ("Content-Length: 5 0\r\n"), 0, 400},
    {"CL hex", REQ("Content-Length: 0x10\r\n"), 0, 400},
    {"CL letters", REQ("Content-Length: abc\r\n"), 0, 400},
    {"CL empty", REQ("Content-Length:\r\n"), 0, 400},
    {"CL overflow", REQ("Content-Length: 9223372036854775808\r\n"), 0, 400},
    {"CL huge", REQ("Content-Length: 99999999999999999999999\r\n"), 0, 400},
    {"TE chunked, identity", REQ("Transfer-Encoding: chunked, identity\r\n"), 0, 400},
    {"TE identity", REQ("Transfer-Encoding: identity\r\n"), 0, 400},
    {"TE gzip alone", REQ("Transfer-Encoding: gzip\r\n"), 0, 400},
    {"TE unknown before chunked", REQ("Transfer-Encoding: foo, chunked\r\n"), 0, 501},
    {"TE chunked twice", REQ("Transfer-Encoding: chunked, chunked\r\n"), 0, 400},
    {"TE chunked on two lines", REQ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
     0, 400},
    {"TE chunked then gzip", REQ("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"), 0,
     400},
    {"TE chunked with parameter", REQ("Transfer-Encoding: chunked;q=1\r\n"), 0, 400},
    {"TE empty", REQ("Transfer-Encoding:\r\n"), 0, 400},
    {"TE not a token", REQ("Transfer-Encoding: chun ked\r\n"), 0, 400},
    {"TE quoted", REQ("Transfer-Encoding: \"chunked\"\r\n"), 0, 400},
    {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 400},
    {"space before colon (TE)", REQ("Transfer-Encoding : chunked\r\n"), 0, 400},
    {"space before colon (CL)", REQ("Content-Length : 5\r\n"), 0, 400},
    {"tab before colon", REQ("Content-Length\t: 5\r\n"), 0, 400},
    /* line syntax */
    {"obs-fold", REQ("X-A: b\r\n c\r\n"), 0, 400},
    {"obs-fold with tab", REQ("X-A: b\r\n\tc\r\n"), 0, 400},
    {"space before first header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 0, 400},
    {"bare LF everywhere", "GET / HTTP/1.1\nHost: a\n\n", 0, 400},
    {"bare LF in one header", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 0, 400},
    {"bare LF as last line", "GET / HTTP/1.1\r\nHost: a\r\n\n", 0, 400},
    {"bare CR in value", REQ("X-A: b\rc\r\n"), 0, 400},
    {"bare CR after request line", "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", 0, 400},
    {"bare CR in name", REQ("X\r-A: b\r\n"), 0, 400},
    {"NUL in value", REQ("X-A: b\0c\r\n"), sizeof(REQ("X-A: b\0c\r\n")) - 1, 400},
    {"NUL in name", REQ("X\0A: b\r\n"), sizeof(REQ("X\0A: b\r\n")) - 1, 400},
    {"control char in value", REQ("X-A: b\x01\r\n"), 0, 400},
    {"DEL in value", REQ("X-A: b\x7f\r\n"), 0, 400},
    {"header without colon", REQ("X-A\r\n"), 0, 400},
    {"empty header name", REQ(": b\r\n"), 0, 400},
    {"invalid name character", REQ("X(A): b\r\n"), 0, 400},
    {"non-ASCII name", REQ("X\xc3\xa9: b\r\n"), 0, 400},
    /* request line */
    {"invalid method character", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
    {"empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
    {"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
    {"tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
    {"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
    {"quote in target", "GET /a\"b HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
    {"angle bracket in target", "GET /<script> HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
    {"fragment in target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
    {"backslash in target", "GET /a\\b HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
    {"non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
    {"control char in target", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
    {"relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
    {"userinfo in absolute-form", "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
    {"other scheme", "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
    {"empty authority", "GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
    {"CONNECT origin-form", "CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
    {"CONNECT without port", "CONNECT h HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
    {"asterisk for GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
    {"no version", "GET /\r\nHost: a\r\n\r\n", 0, 400},
    {"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 0, 400},
    {"version junk", "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 0, 400},
    {"version without dot", "GET / HTTP/11\r\nHost: a\r\n\r\n", 0, 400},
    {"trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 0, 400},
    {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 0, 505},
    {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 0, 505},
    {"HTTP/0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 0, 505},
    /* Host */
    {"missing Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 0, 400},
    {"missing Host with absolute-form", "GET http://h/ HTTP/1.1\r\n\r\n", 0, 400},
    {"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 0, 400},
    {"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 0, 400},
    {"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@evil\r\n\r\n", 0, 400},
    {"Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 0, 400},
};

static void test_error_corpus(void **state)
{
    (void)state;
    for (size_t i = 0; i < LEN(error_cases); i++) {
        const struct error_case *c = &error_cases[i];
        size_t len = c->len ? c->len : strlen(c->raw);
        enum http1_result r = parse_req(c->raw, len);
        if (r != HTTP1_ERROR || msg.error_status != c->status)
            print_error("case '%s': result %d, status %d (%s), expected %d\n", c->name, r,
                        msg.error_status, msg.error ? msg.error : "-", c->status);
        CHECK(c->name, r == HTTP1_ERROR);
        CHECK(c->name, msg.error_status == c->status);
        CHECK(c->name, msg.error && *msg.error);
    }
}

/* ---- limits ---- */

static void test_limits(void **state)
{
    (void)state;
    const struct http1_limits small = {.max_head = 128, .max_line = 32, .max_headers = 3};
    char raw[512];

    /* The request line limit holds exactly; one more byte is a 414. */
    snprintf(raw, sizeof raw, "GET /%s HTTP/1.1\r\nHost: a\r\n\r\n", "aaaaaaaaaaaaaaaaaa");
    assert_int_equal(strlen("GET /aaaaaaaaaaaaaaaaaa HTTP/1.1"), 32);
    assert_int_equal(http1_parse_request(raw, strlen(raw), 0, &small, &msg), HTTP1_DONE);
    snprintf(raw, sizeof raw, "GET /%s HTTP/1.1\r\nHost: a\r\n\r\n", "aaaaaaaaaaaaaaaaaaa");
    assert_int_equal(http1_parse_request(raw, strlen(raw), 0, &small, &msg), HTTP1_ERROR);
    assert_int_equal(msg.error_status, 414);

    /* An endless request line is refused before its end arrives. */
    memset(raw, 'a', 40);
    memcpy(raw, "GET /", 5);
    assert_int_equal(http1_parse_request(raw, 33, 0, &small, &msg), HTTP1_NEED_MORE);
    assert_int_equal(http1_parse_request(raw, 34, 0, &small, &msg), HTTP1_ERROR);
    assert_int_equal(msg.error_status, 414);

    /* Too many headers. */
    snprintf(raw, sizeof raw, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n");
    assert_int_equal(http1_parse_request(raw, strlen(raw), 0, &small, &msg), HTTP1_DONE);
    snprintf(raw, sizeof raw, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
    assert_int_equal(http1_parse_request(raw, strlen(raw), 0, &small, &msg), HTTP1_ERROR);
    assert_int_equal(msg.error_status, 431);

    /* A head over max_head: 431 whether complete or not. */
    snprintf(raw, sizeof raw, "GET / HTTP/1.1\r\nHost: a\r\nX: %0120d\r\n\r\n", 0);
    assert_int_equal(http1_parse_request(raw, strlen(raw), 0, &small, &msg), HTTP1_ERROR);
    assert_int_equal(msg.error_status, 431);
    assert_int_equal(http1_parse_request(raw, 128, 0, &small, &msg), HTTP1_ERROR);
    assert_int_equal(msg.error_status, 431);
    assert_int_equal(http1_parse_request(raw, 127, 0, &small, &msg), HTTP1_NEED_MORE);

    /* Leading empty lines count towards the head. */
    memset(raw, 0, sizeof raw);
    for (int i = 0; i < 64; i++)
        memcpy(raw + 2 * i, "\r\n", 2);
    assert_int_equal(http1_parse_request(raw, 128, 0, &small, &msg), HTTP1_ERROR);
    assert_int_equal(msg.error_status, 431);

    /* max_headers is clamped to the array. */
    const struct http1_limits many = {.max_head = 65536, .max_line = 1024, .max_headers = 1000};
    size_t n = (size_t)snprintf(raw, sizeof raw, "GET / HTTP/1.1\r\n");
    static char big[8192];
    memcpy(big, raw, n);
    for (int i = 0; i < HTTP1_MAX_HEADERS + 1; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "Host%d: a\r\n", i);
    n += (size_t)snprintf(big + n, sizeof big - n, "\r\n");
    assert_int_equal(http1_parse_request(big, n, 0, &many, &msg), HTTP1_ERROR);
    assert_int_equal(msg.error_status, 431);
}

static void test_default_limits(void **state)
{
    (void)state;
    static char raw[20000];
    memcpy(raw, "GET /", 5);
    memset(raw + 5, 'a', sizeof raw - 5);
    assert_int_equal(parse_req(raw, 8000), HTTP1_NEED_MORE);
    assert_int_equal(parse_req(raw, 9000), HTTP1_ERROR);
    assert_int_equal(msg.error_status, 414);

    int n = snprintf(raw, sizeof raw, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(raw + n, 'b', sizeof raw - (size_t)n);
    assert_int_equal(parse_req(raw, 16000), HTTP1_NEED_MORE);
    assert_int_equal(parse_req(raw, 16384), HTTP1_ERROR);
    assert_int_equal(msg.error_status, 431);
}

/* ---- incremental feeding ---- */

static void test_byte_by_byte(void **state)
{
    (void)state;
    for (size_t i = 0; i < LEN(valid_cases); i++) {
        const struct valid_case *c = &valid_cases[i];
        size_t len = strlen(c->raw), head = len - c->body_bytes;
        for (size_t k = 0; k < head; k++) {
            enum http1_result r = http1_parse_request(c->raw, k, k ? k - 1 : 0, NULL, &msg);
            if (r != HTTP1_NEED_MORE)
                print_error("case '%s': prefix %zu gave %d\n", c->name, k, r);
            CHECK(c->name, r == HTTP1_NEED_MORE);
        }
        /* prev_len resumes the scan; the result is the one-shot result. */
        CHECK(c->name, http1_parse_request(c->raw, len, head - 1, NULL, &msg) == HTTP1_DONE);
        check_valid(c, len);
    }
}

static void test_bare_lf_refused_early(void **state)
{
    (void)state;
    const char raw[] = "GET / HTTP/1.1\nHo";
    assert_int_equal(parse_req(raw, strlen(raw)), HTTP1_ERROR);
    assert_int_equal(msg.error_status, 400);
}

static void test_pipelined(void **state)
{
    (void)state;
    const char raw[] = "POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                       "GET /two?x HTTP/1.1\r\nHost: b\r\n\r\n";
    size_t len = strlen(raw);
    assert_int_equal(parse_req(raw, len), HTTP1_DONE);
    assert_true(slice_is(msg.path, "/one"));
    assert_int_equal(msg.content_length, 3);
    size_t next = msg.head_len + 3;
    assert_int_equal(parse_req(raw + next, len - next), HTTP1_DONE);
    assert_true(slice_is(msg.path, "/two"));
    assert_true(slice_is(msg.query, "x"));
    assert_true(slice_is(msg.host, "b"));
    assert_int_equal(next + msg.head_len, len);
}

/* ---- responses ---- */

struct response_case {
    const char *name;
    const char *raw;
    enum http1_method request;
    int status;
    enum http1_body body;
    int64_t content_length;
    bool keep_alive, upgrade;
};

static const struct response_case response_cases[] = {
    {"200 with length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", HTTP1_METHOD_GET, 200,
     HTTP1_BODY_LENGTH, 5, true},
    {"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP1_METHOD_GET, 200,
     HTTP1_BODY_CHUNKED, -1, true},
    {"close-delimited", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", HTTP1_METHOD_GET,
     200, HTTP1_BODY_CLOSE, -1, false},
    {"final coding not chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
     HTTP1_METHOD_GET, 200, HTTP1_BODY_CLOSE, -1, false},
    {"204", "HTTP/1.1 204 No Content\r\n\r\n", HTTP1_METHOD_DELETE, 204, HTTP1_BODY_NONE, -1, true},
    {"304 with length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
     HTTP1_METHOD_GET, 304, HTTP1_BODY_NONE, 100, true},
    {"100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", HTTP1_METHOD_PUT, 100, HTTP1_BODY_NONE, -1,
     true},
    {"HEAD response", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", HTTP1_METHOD_HEAD, 200,
     HTTP1_BODY_NONE, 100, true},
    {"HEAD chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP1_METHOD_HEAD,
     200, HTTP1_BODY_NONE, -1, true},
    {"CONNECT 200", "HTTP/1.1 200 Connection Established\r\n\r\n", HTTP1_METHOD_CONNECT, 200,
     HTTP1_BODY_NONE, -1, true},
    {"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", HTTP1_METHOD_GET, 200,
     HTTP1_BODY_LENGTH, 2, false},
    {"HTTP/1.0 keep-alive",
     "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", HTTP1_METHOD_GET,
     200, HTTP1_BODY_LENGTH, 2, true},
    {"Connection: close",
     "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", HTTP1_METHOD_GET,
     404, HTTP1_BODY_LENGTH, 0, false},
    {"no reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", HTTP1_METHOD_GET, 200,
     HTTP1_BODY_LENGTH, 0, true},
    {"empty reason", "HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n", HTTP1_METHOD_GET, 503,
     HTTP1_BODY_LENGTH, 0, true},
    {"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
     HTTP1_METHOD_GET, 101, HTTP1_BODY_NONE, -1, true, true},
};

static void test_responses(void **state)
{
    (void)state;
    for (size_t i = 0; i < LEN(response_cases); i++) {
        const struct response_case *c = &response_cases[i];
        size_t len = strlen(c->raw);
        enum http1_result r = http1_parse_response(c->raw, len, 0, NULL, c->request, &msg);
        if (r != HTTP1_DONE)
            print_error("case '%s': %s\n", c->name, msg.error);
        CHECK(c->name, r == HTTP1_DONE);
        CHECK(c->name, msg.status == c->status);
        CHECK(c->name, msg.body == c->body);
        CHECK(c->name, msg.content_length == c->content_length);
        CHECK(c->name, msg.keep_alive == c->keep_alive);
        CHECK(c->name, msg.upgrade == c->upgrade);
        CHECK(c->name, msg.head_len == (size_t)(strstr(c->raw, "\r\n\r\n") + 4 - c->raw));
    }
    const char raw[] = "HTTP/1.1 404 Not Found\r\n\r\n";
    assert_int_equal(http1_parse_response(raw, strlen(raw), 0, NULL, HTTP1_METHOD_GET, &msg),
                     HTTP1_DONE);
    assert_true(slice_is(msg.reason, "Not Found"));
}

static const struct error_case response_errors[] = {
    {"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"},
    {"CL, CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"},
    {"chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"},
    {"TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"},
    {"status 99", "HTTP/1.1 099 Odd\r\n\r\n"},
    {"status 600", "HTTP/1.1 600 Odd\r\n\r\n"},
    {"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n"},
    {"HTTP/2", "HTTP/2 200 OK\r\n\r\n"},
    {"HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n"},
    {"not HTTP", "ICY 200 OK\r\n\r\n"},
    {"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n"},
    {"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"},
    {"control char in reason", "HTTP/1.1 200 O\x01K\r\n\r\n"},
    {"leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n"},
};

static void test_response_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < LEN(response_errors); i++) {
        const struct error_case *c = &response_errors[i];
        enum http1_result r =
            http1_parse_response(c->raw, strlen(c->raw), 0, NULL, HTTP1_METHOD_GET, &msg);
        CHECK(c->name, r == HTTP1_ERROR);
        CHECK(c->name, msg.error_status == 502);
    }
}

/* ---- chunked bodies ---- */

struct chunk_case {
    const char *name;
    const char *raw;
    const char *data;  /* decoded */
    size_t body_bytes; /* bytes of raw that belong to the body */
};

static const struct chunk_case chunk_cases[] = {
    {"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"},
    {"several chunks", "3\r\nabc\r\n4\r\ndefg\r\n1\r\nh\r\n0\r\n\r\n", "abcdefgh"},
    {"hex digits", "A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij"},
    {"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello"},
    {"extensions", "5;name=value;flag\r\nhello\r\n0;last=\"yes\"\r\n\r\n", "hello"},
    {"whitespace before extension", "5 \t;a=b\r\nhello\r\n0\r\n\r\n", "hello"},
    {"trailers dropped", "2\r\nhi\r\n0\r\nX-Checksum: 42\r\nY:\r\n\r\n", "hi"},
    {"empty body", "0\r\n\r\n", ""},
    {"next message follows", "2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "hi", 12},
    {"CRLF inside data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n"},
};

/* Feeds raw in pieces of `step` bytes (0: all at once); returns the bytes decoded into out. */
static enum http1_result feed_all(const char *raw, size_t len, size_t step, char *out,
                                  size_t *out_len, size_t *used)
{
    struct http1_chunked c;
    http1_chunked_init(&c);
    size_t off = 0, avail = step ? 0 : len;
    *out_len = 0;
    for (;;) {
        size_t n;
        struct http1_slice data;
        enum http1_result r = http1_chunked_feed(&c, raw + off, avail - off, &n, &data);
        memcpy(out + *out_len, data.p, data.len);
        *out_len += data.len;
        off += n;
        if (r != HTTP1_NEED_MORE) {
            *used = off;
            return r;
        }
        if (off < avail)
            continue;
        if (avail == len) {
            *used = off;
            return r;
        }
        avail = avail + step > len ? len : avail + step;
    }
}

static void test_chunked(void **state)
{
    (void)state;
    char out[256];
    for (size_t i = 0; i < LEN(chunk_cases); i++) {
        const struct chunk_case *c = &chunk_cases[i];
        size_t len = strlen(c->raw), body = c->body_bytes ? c->body_bytes : len;
        for (size_t step = 0; step <= len; step++) {
            size_t out_len, used;
            enum http1_result r = feed_all(c->raw, len, step, out, &out_len, &used);
            if (r != HTTP1_DONE)
                print_error("case '%s' step %zu: result %d\n", c->name, step, r);
            CHECK(c->name, r == HTTP1_DONE);
            CHECK(c->name, used == body);
            CHECK(c->name, out_len == strlen(c->data) && memcmp(out, c->data, out_len) == 0);
        }
    }
}

static void test_chunked_data_slices_point_into_buffer(void **state)
{
    (void)state;
    const char raw[] = "5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n";
    struct http1_chunked c;
    http1_chunked_init(&c);
    size_t n;
    struct http1_slice data;
    assert_int_equal(http1_chunked_feed(&c, raw, strlen(raw), &n, &data), HTTP1_NEED_MORE);
    assert_ptr_equal(data.p, raw + 3);
    assert_int_equal(data.len, 5);
    assert_int_equal(n, 8);
    assert_int_equal(http1_chunked_feed(&c, raw + n, strlen(raw) - n, &n, &data), HTTP1_NEED_MORE);
    assert_ptr_equal(data.p, raw + 13);
    assert_int_equal(data.len, 3);
    /* A finished decoder stays finished. */
    size_t off = 16;
    assert_int_equal(http1_chunked_feed(&c, raw + off, strlen(raw) - off, &n, &data), HTTP1_DONE);
    assert_int_equal(off + n, strlen(raw));
    assert_int_equal(http1_chunked_feed(&c, "x", 1, &n, &data), HTTP1_DONE);
    assert_int_equal(n, 0);
}

static void test_chunked_largest_size(void **state)
{
    (void)state;
    const char raw[] = "7fffffffffffffff\r\nabc";
    struct http1_chunked c;
    http1_chunked_init(&c);
    size_t n;
    struct http1_slice data;
    assert_int_equal(http1_chunked_feed(&c, raw, strlen(raw), &n, &data), HTTP1_NEED_MORE);
    assert_int_equal(data.len, 3);
    assert_int_equal(c.size, (uint64_t)INT64_MAX - 3);
}

static const struct error_case chunk_errors[] = {
    {"non-hex size", "x\r\nhello\r\n0\r\n\r\n"},
    {"empty size", "\r\nhello\r\n0\r\n\r\n"},
    {"empty size with extension", ";a=b\r\nhello\r\n0\r\n\r\n"},
    {"negative size", "-5\r\nhello\r\n0\r\n\r\n"},
    {"plus sign", "+5\r\nhello\r\n0\r\n\r\n"},
    {"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"},
    {"size 2^63", "8000000000000000\r\n"},
    {"size overflows 64 bits", "10000000000000005\r\nhello\r\n0\r\n\r\n"},
    {"whitespace after size", "5 \r\nhello\r\n0\r\n\r\n"},
    {"whitespace before size", " 5\r\nhello\r\n0\r\n\r\n"},
    {"bare LF after size", "5\nhello\r\n0\r\n\r\n"},
    {"bare CR after size", "5\rhello\r\n0\r\n\r\n"},
    {"data longer than size", "5\r\nhelloX\r\n0\r\n\r\n"},
    {"bare LF after data", "5\r\nhello\n0\r\n\r\n"},
    {"control char in extension", "5;a\x01\r\nhello\r\n0\r\n\r\n"},
    {"obs-fold in trailers", "0\r\nA: b\r\n c\r\n\r\n"},
    {"trailer without colon", "0\r\nA b\r\n\r\n"},
    {"control char in trailer", "0\r\nA: b\x01\r\n\r\n"},
    {"bare LF in trailers", "0\r\nA: b\n\r\n"},
    {"last chunk without CRLF", "0\r\n\rX"},
    {"last chunk bare LF", "0\r\n\n"},
};

static void test_chunked_errors(void **state)
{
    (void)state;
    char out[256];
    for (size_t i = 0; i < LEN(chunk_errors); i++) {
        const struct error_case *c = &chunk_errors[i];
        size_t len = strlen(c->raw);
        for (size_t step = 0; step <= 1; step++) {
            size_t out_len, used;
            CHECK(c->name, feed_all(c->raw, len, step, out, &out_len, &used) == HTTP1_ERROR);
        }
    }
    /* A size line with endless extensions is cut off. */
    static char raw[HTTP1_CHUNK_LINE_MAX + 16];
    memset(raw, 'a', sizeof raw);
    memcpy(raw, "1;", 2);
    struct http1_chunked c;
    http1_chunked_init(&c);
    size_t n;
    struct http1_slice data;
    assert_int_equal(http1_chunked_feed(&c, raw, sizeof raw, &n, &data), HTTP1_ERROR);
    assert_int_equal(c.error_status, 400);
    assert_non_null(c.error);
    /* Endless trailers too. */
    http1_chunked_init(&c);
    assert_int_equal(http1_chunked_feed(&c, "0\r\n", 3, &n, &data), HTTP1_NEED_MORE);
    enum http1_result r = HTTP1_NEED_MORE;
    for (int i = 0; i < 2000 && r == HTTP1_NEED_MORE; i++)
        r = http1_chunked_feed(&c, "X-Pad: 1234\r\n", 13, &n, &data);
    assert_int_equal(r, HTTP1_ERROR);
}

/* ---- helpers ---- */

static void test_header_find(void **state)
{
    (void)state;
    const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nx-one: 2\r\n\r\n";
    assert_int_equal(parse_req(raw, strlen(raw)), HTTP1_DONE);
    const struct http1_header *h = http1_header_find(&msg, "x-ONE");
    assert_non_null(h);
    assert_true(slice_is(h->value, "1"));
    assert_null(http1_header_find(&msg, "X-Two"));
    assert_null(http1_header_find(&msg, "X-On"));
}

static void test_hop_by_hop(void **state)
{
    (void)state;
    const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Private\r\n"
                       "Connection: x-other\r\nX-Private: 1\r\n\r\n";
    assert_int_equal(parse_req(raw, strlen(raw)), HTTP1_DONE);
    static const char *const hop[] = {
        "Connection",        "keep-alive", "Proxy-Connection", "TE",
        "Transfer-Encoding", "upgrade",    "x-private",        "X-Other"};
    static const char *const end_to_end[] = {"Host", "Content-Length", "X-Privat", "Trailer"};
    for (size_t i = 0; i < LEN(hop); i++)
        CHECK(hop[i], http1_is_hop_by_hop(&msg, (struct http1_slice){hop[i], strlen(hop[i])}));
    for (size_t i = 0; i < LEN(end_to_end); i++) {
        struct http1_slice s = {end_to_end[i], strlen(end_to_end[i])};
        CHECK(end_to_end[i], !http1_is_hop_by_hop(&msg, s));
    }
}

static void test_reason(void **state)
{
    (void)state;
    assert_string_equal(http1_reason(200), "OK");
    assert_string_equal(http1_reason(404), "Not Found");
    assert_string_equal(http1_reason(413), "Content Too Large");
    assert_string_equal(http1_reason(431), "Request Header Fields Too Large");
    assert_string_equal(http1_reason(505), "HTTP Version Not Supported");
    assert_string_equal(http1_reason(799), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_requests),
        cmocka_unit_test(test_fields_are_slices),
        cmocka_unit_test(test_obs_text_in_value),
        cmocka_unit_test(test_error_corpus),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_default_limits),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_bare_lf_refused_early),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_response_errors),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_chunked_data_slices_point_into_buffer),
        cmocka_unit_test(test_chunked_largest_size),
        cmocka_unit_test(test_chunked_errors),
        cmocka_unit_test(test_header_find),
        cmocka_unit_test(test_hop_by_hop),
        cmocka_unit_test(test_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
