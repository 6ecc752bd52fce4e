/* HTTP/1.1 message heads (RFC 9112), parsed strictly enough that Gantry and any server behind it
 * can never disagree about where a message ends (request smuggling).
 * - The caller owns the bytes: it passes everything received so far for the current message head,
 *   and every slice in the result points into that buffer (the only exception: the path of an
 *   absolute-form target without one is the static "/"). Nothing is allocated or copied.
 * - A parse returns HTTP1_NEED_MORE until the whole head is there (the end is found first, so
 *   re-running on a longer buffer is cheap; prev_len makes that scan incremental), then
 *   HTTP1_DONE with head_len, or HTTP1_ERROR with the status to answer and a short reason.
 * - Requests fail with 400, 414 (request line), 431 (head or header count), 501 (unknown transfer
 *   coding) or 505 (version); a response that fails is a bad gateway: always 502.
 * - Bodies are the caller's: the result says how they are framed, and http1_chunked decodes the
 *   chunked coding incrementally. Trailers are validated and dropped, never passed on.
 * Decisions: repeated Content-Length is refused even with equal values; Transfer-Encoding in an
 * HTTP/1.0 request is refused (RFC 9112 6.1 calls its framing faulty); absolute-form targets are
 * accepted (RFC 9112 3.2.2: servers must) and their authority becomes the host, Host is still
 * required in HTTP/1.1; leading empty lines before a request line are skipped (RFC 9112 2.2). */
#ifndef GANTRY_COMMON_HTTP1_H
#define GANTRY_COMMON_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A run of bytes inside the caller's buffer; not NUL-terminated. */
struct http1_slice {
    const char *p;
    size_t len;
};

struct http1_header {
    struct http1_slice name;
    struct http1_slice value; /* leading and trailing whitespace removed */
};

/* The hard ceiling on http1_limits.max_headers: the header array lives in the message. */
enum { HTTP1_MAX_HEADERS = 128 };

struct http1_limits {
    size_t max_head;    /* request or status line + header lines + blank line; beyond: 431 */
    size_t max_line;    /* request line, without its CRLF; beyond: 414 */
    size_t max_headers; /* header lines; beyond: 431 (clamped to HTTP1_MAX_HEADERS) */
};

/* 16 KiB of head, 8 KiB of request line, 100 headers. */
extern const struct http1_limits http1_default_limits;

enum http1_result { HTTP1_NEED_MORE, HTTP1_DONE, HTTP1_ERROR };

enum http1_method {
    HTTP1_METHOD_OTHER, /* any other token: valid, the caller decides */
    HTTP1_METHOD_GET,
    HTTP1_METHOD_HEAD,
    HTTP1_METHOD_POST,
    HTTP1_METHOD_PUT,
    HTTP1_METHOD_DELETE,
    HTTP1_METHOD_CONNECT,
    HTTP1_METHOD_OPTIONS,
    HTTP1_METHOD_TRACE,
    HTTP1_METHOD_PATCH,
};

enum http1_target_form {
    HTTP1_FORM_ORIGIN,    /* /path?query */
    HTTP1_FORM_ABSOLUTE,  /* http://authority/path?query (http and https only, no userinfo) */
    HTTP1_FORM_AUTHORITY, /* host:port, CONNECT only; path is empty */
    HTTP1_FORM_ASTERISK,  /* *, OPTIONS only; path is "*" */
};

enum http1_body {
    HTTP1_BODY_NONE,    /* no body: nothing to read after the head */
    HTTP1_BODY_LENGTH,  /* content_length bytes (possibly 0) */
    HTTP1_BODY_CHUNKED, /* decode with http1_chunked */
    HTTP1_BODY_CLOSE,   /* responses only: the body runs until the connection closes */
};

struct http1_msg {
    /* Requests. */
    enum http1_method method_id;
    struct http1_slice method;
    struct http1_slice target; /* as received */
    enum http1_target_form form;
    struct http1_slice path;  /* target up to '?' */
    struct http1_slice query; /* after '?'; p is NULL when there is no '?' */
    struct http1_slice host;  /* Host, or the authority of an absolute-form target */
    bool has_host;

    /* Responses. */
    int status;
    struct http1_slice reason;

    int minor; /* HTTP/1.<minor>: 0 or 1 */
    struct http1_header headers[HTTP1_MAX_HEADERS];
    size_t n_headers;

    /* Framing and connection semantics. */
    enum http1_body body;
    int64_t content_length; /* -1: no Content-Length */
    bool chunked;           /* Transfer-Encoding ends with chunked */
    bool keep_alive;        /* 1.1 unless "Connection: close", 1.0 only with keep-alive */
    bool expect_continue;   /* HTTP/1.1 request with "Expect: 100-continue" */
    bool upgrade;           /* request: Upgrade + "Connection: upgrade"; response: 101 */

    size_t head_len;  /* HTTP1_DONE: bytes of the head, leading empty lines included */
    int error_status; /* HTTP1_ERROR: the status to answer with */
    const char *error;
};

/* buf/len: every byte received so far for this message; prev_len: len at the previous call on
 * the same bytes (0 the first time), so the search for the end of the head resumes there. */
enum http1_result http1_parse_request(const char *buf, size_t len, size_t prev_len,
                                      const struct http1_limits *limits, struct http1_msg *msg);
/* request_method says whether the response can have a body (HEAD, CONNECT). */
enum http1_result http1_parse_response(const char *buf, size_t len, size_t prev_len,
                                       const struct http1_limits *limits,
                                       enum http1_method request_method, struct http1_msg *msg);

/* The first header of that name (case-insensitive), or NULL. */
const struct http1_header *http1_header_find(const struct http1_msg *msg, const char *name);
/* Whether a proxy must not forward the field (RFC 9110 7.6.1): the fixed connection-specific
 * names and any name listed in the message's Connection headers. */
bool http1_is_hop_by_hop(const struct http1_msg *msg, struct http1_slice name);
/* Case-insensitive comparison of a slice with a NUL-terminated string. */
bool http1_slice_eq(struct http1_slice s, const char *text);
/* "OK", "Not Found", ...; "Unknown" for codes without one. */
const char *http1_reason(int status);

/* The chunked transfer coding, decoded incrementally: feed it bytes as they arrive. Chunk
 * extensions are checked for stray control characters and ignored; trailer fields are checked
 * like header fields and dropped (a proxy re-sends the last chunk without them). */
enum {
    HTTP1_CHUNK_LINE_MAX = 4096, /* a chunk-size line, extensions included */
    HTTP1_TRAILERS_MAX = 8192,   /* the whole trailer section */
};

struct http1_chunked {
    int state;
    uint64_t size; /* of the chunk being announced, then what is left of it */
    unsigned digits;
    size_t line;     /* bytes of the current size line */
    size_t trailers; /* bytes of trailer section so far */
    int error_status;
    const char *error;
};

void http1_chunked_init(struct http1_chunked *c);
/* Consumes bytes from buf and sets *consumed. It stops right after a data slice (set in *data,
 * pointing into buf; data->len is 0 when there is none) so the caller can use it, at the end of the
 * body (HTTP1_DONE: bytes after *consumed belong to the next message), at the end of buf
 * (HTTP1_NEED_MORE), or at an error (HTTP1_ERROR, error_status and error set). Call again with the
 * rest of buf while it returns HTTP1_NEED_MORE and *consumed < len. */
enum http1_result http1_chunked_feed(struct http1_chunked *c, const char *buf, size_t len,
                                     size_t *consumed, struct http1_slice *data);

#endif
