#include "common/http1.h"

#include <string.h>

const struct http1_limits http1_default_limits = {
    .max_head = 16384,
    .max_line = 8192,
    .max_headers = 100,
};

/* Character classes, one table so that each byte of a head costs one load. */
enum {
    C_TCHAR = 1,  /* token (RFC 9110 5.6.2): methods, field names, codings */
    C_TARGET = 2, /* request-target (RFC 3986 characters, '#' excluded: fragments are not sent) */
    C_VALUE = 4,  /* field-value and reason-phrase: VCHAR, obs-text, SP, HTAB */
    C_HOST = 8,   /* Host and authority: reg-name, IP-literal, port */
};
#define ALL (C_TCHAR | C_TARGET | C_VALUE | C_HOST)
#define TGVH (C_TARGET | C_VALUE | C_HOST) /* URI delimiters that are not token characters */

static const unsigned char ctype[256] = {
    ['\t'] = C_VALUE,
    [' '] = C_VALUE,
    ['!'] = ALL,
    ['"'] = C_VALUE,
    ['#'] = C_TCHAR | C_VALUE,
    ['$'] = ALL,
    ['%'] = ALL,
    ['&'] = ALL,
    ['\''] = ALL,
    ['('] = TGVH,
    [')'] = TGVH,
    ['*'] = ALL,
    ['+'] = ALL,
    [','] = TGVH,
    ['-'] = ALL,
    ['.'] = ALL,
    ['/'] = C_TARGET | C_VALUE,
    ['0' ... '9'] = ALL,
    [':'] = TGVH,
    [';'] = TGVH,
    ['<'] = C_VALUE,
    ['='] = TGVH,
    ['>'] = C_VALUE,
    ['?'] = C_TARGET | C_VALUE,
    ['@'] = C_TARGET | C_VALUE,
    ['A' ... 'Z'] = ALL,
    ['['] = TGVH,
    ['\\'] = C_VALUE,
    [']'] = TGVH,
    ['^'] = C_TCHAR | C_VALUE,
    ['_'] = ALL,
    ['`'] = C_TCHAR | C_VALUE,
    ['a' ... 'z'] = ALL,
    ['{'] = C_VALUE,
    ['|'] = C_TCHAR | C_VALUE,
    ['}'] = C_VALUE,
    ['~'] = ALL,
    [0x80 ... 0xff] = C_VALUE,
};

static inline bool is(unsigned char c, unsigned cls)
{
    return (ctype[c] & cls) != 0;
}

static inline unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

static bool slices_eq(struct http1_slice a, struct http1_slice b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i]))
            return false;
    return true;
}

bool http1_slice_eq(struct http1_slice s, const char *text)
{
    return slices_eq(s, (struct http1_slice){text, strlen(text)});
}

static bool all_of(struct http1_slice s, unsigned cls)
{
    for (size_t i = 0; i < s.len; i++)
        if (!is((unsigned char)s.p[i], cls))
            return false;
    return true;
}

static struct http1_slice trim(struct http1_slice s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* Next element of a comma-separated list; empty elements are skipped, as RFC 9110 5.6.1 asks. */
static bool list_next(struct http1_slice *rest, struct http1_slice *item)
{
    while (rest->len) {
        const char *comma = memchr(rest->p, ',', rest->len);
        size_t n = comma ? (size_t)(comma - rest->p) : rest->len;
        size_t skip = comma ? n + 1 : n;
        *item = trim((struct http1_slice){rest->p, n});
        rest->p += skip;
        rest->len -= skip;
        if (item->len)
            return true;
    }
    return false;
}

/* ---- the head parser ---- */

struct parser {
    const char *buf;
    size_t pos, end; /* the head is buf[pos, end), end just after the blank line */
    const struct http1_limits *limits;
    struct http1_msg *m;
    bool response;
    enum http1_method request_method; /* responses: what they answer */
    unsigned n_cl, n_te, n_host;
    bool conn_close, conn_keep_alive, conn_upgrade, has_upgrade, expect_100;
};

static int fail(struct parser *p, int status, const char *why)
{
    /* Whatever is wrong with a response, the client is owed a 502. */
    p->m->error_status = p->response ? 502 : status;
    p->m->error = why;
    return -1;
}

static enum http1_result fail_msg(struct http1_msg *m, bool response, int status, const char *why)
{
    m->error_status = response ? 502 : status;
    m->error = why;
    return HTTP1_ERROR;
}

static void msg_clear(struct http1_msg *m)
{
    /* Not memset: the header array is large and n_headers says how much of it is meaningful. */
    m->method_id = HTTP1_METHOD_OTHER;
    m->method = m->target = m->path = m->query = m->host = m->reason = (struct http1_slice){0};
    m->form = HTTP1_FORM_ORIGIN;
    m->has_host = false;
    m->status = 0;
    m->minor = 1;
    m->n_headers = 0;
    m->body = HTTP1_BODY_NONE;
    m->content_length = -1;
    m->chunked = m->keep_alive = m->expect_continue = m->upgrade = false;
    m->head_len = 0;
    m->error_status = 0;
    m->error = NULL;
}

/* Finds the end of the head before anything is parsed, so that a partial head costs one memchr
 * pass over the new bytes. Every LF must follow a CR (bare LF is refused here, not waited on). The
 * first line is measured early so that an endless request line gets 414 as soon as it is too long,
 * not 431 later. */
static enum http1_result find_head(const char *buf, size_t len, size_t prev_len, size_t start,
                                   const struct http1_limits *lim, bool response,
                                   struct http1_msg *m, size_t *end)
{
    size_t window = len - start < lim->max_line + 2 ? len - start : lim->max_line + 2;
    if (!memchr(buf + start, '\n', window) && len - start > lim->max_line + 1)
        return fail_msg(m, response, 414,
                        response ? "status line too long" : "request line too long");

    size_t limit = len < lim->max_head ? len : lim->max_head;
    size_t from = prev_len > start ? prev_len : start;
    while (from < limit) {
        const char *nl = memchr(buf + from, '\n', limit - from);
        if (!nl)
            break;
        size_t i = (size_t)(nl - buf);
        if (i == start || buf[i - 1] != '\r')
            return fail_msg(m, response, 400, "bare LF in head (CRLF required)");
        if (i - start >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            *end = i + 1;
            return HTTP1_DONE;
        }
        from = i + 1;
    }
    if (len >= lim->max_head)
        return fail_msg(m, response, 431, "header section too large");
    return HTTP1_NEED_MORE;
}

/* The line at pos without its CRLF; moves pos past it. The head's end is known, so a LF exists. */
static int next_line(struct parser *p, struct http1_slice *line)
{
    const char *s = p->buf + p->pos;
    const char *lf = memchr(s, '\n', p->end - p->pos);
    if (!lf || lf == s || lf[-1] != '\r')
        return fail(p, 400, "bare LF in head (CRLF required)");
    *line = (struct http1_slice){s, (size_t)(lf - 1 - s)};
    p->pos = (size_t)(lf + 1 - p->buf);
    return 0;
}

static enum http1_method method_id(struct http1_slice m)
{
    static const struct {
        const char *name;
        enum http1_method id;
    } methods[] = {
        {"GET", HTTP1_METHOD_GET},         {"HEAD", HTTP1_METHOD_HEAD},
        {"POST", HTTP1_METHOD_POST},       {"PUT", HTTP1_METHOD_PUT},
        {"DELETE", HTTP1_METHOD_DELETE},   {"CONNECT", HTTP1_METHOD_CONNECT},
        {"OPTIONS", HTTP1_METHOD_OPTIONS}, {"TRACE", HTTP1_METHOD_TRACE},
        {"PATCH", HTTP1_METHOD_PATCH},
    };
    /* Methods are case-sensitive: "get" is some other method. */
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strlen(methods[i].name) == m.len && memcmp(methods[i].name, m.p, m.len) == 0)
            return methods[i].id;
    return HTTP1_METHOD_OTHER;
}

static int parse_version(struct parser *p, struct http1_slice v)
{
    const char *s = v.p;
    if (v.len != 8 || memcmp(s, "HTTP/", 5) != 0 || s[5] < '0' || s[5] > '9' || s[6] != '.' ||
        s[7] < '0' || s[7] > '9')
        return fail(p, 400, "invalid HTTP version");
    if (s[5] != '1' || (s[7] != '0' && s[7] != '1'))
        return fail(p, 505, "HTTP version not supported");
    p->m->minor = s[7] - '0';
    return 0;
}

static void split_path(struct http1_msg *m, struct http1_slice rest)
{
    const char *q = memchr(rest.p, '?', rest.len);
    if (!q) {
        m->path = rest;
        return;
    }
    m->path = (struct http1_slice){rest.p, (size_t)(q - rest.p)};
    m->query = (struct http1_slice){q + 1, rest.len - m->path.len - 1};
}

static int parse_absolute(struct parser *p, struct http1_slice t)
{
    size_t skip;
    if (t.len > 7 && slices_eq((struct http1_slice){t.p, 7}, (struct http1_slice){"http://", 7}))
        skip = 7;
    else if (t.len > 8 &&
             slices_eq((struct http1_slice){t.p, 8}, (struct http1_slice){"https://", 8}))
        skip = 8;
    else
        return fail(p, 400, "invalid request-target");
    struct http1_slice auth = {t.p + skip, 0};
    while (skip + auth.len < t.len && auth.p[auth.len] != '/' && auth.p[auth.len] != '?')
        auth.len++;
    if (auth.len == 0 || !all_of(auth, C_HOST))
        return fail(p, 400, "invalid authority in request-target");
    struct http1_msg *m = p->m;
    m->form = HTTP1_FORM_ABSOLUTE;
    m->host = auth;
    m->has_host = true;
    struct http1_slice rest = {auth.p + auth.len, t.len - skip - auth.len};
    if (rest.len && rest.p[0] == '/') {
        split_path(m, rest);
        return 0;
    }
    m->path = (struct http1_slice){"/", 1};
    if (rest.len) /* starts with '?' */
        m->query = (struct http1_slice){rest.p + 1, rest.len - 1};
    return 0;
}

static int parse_target(struct parser *p, struct http1_slice t)
{
    struct http1_msg *m = p->m;
    if (m->method_id == HTTP1_METHOD_CONNECT) {
        const char *colon = memrchr(t.p, ':', t.len);
        if (!colon || colon == t.p || colon + 1 == t.p + t.len || !all_of(t, C_HOST))
            return fail(p, 400, "CONNECT needs a host:port target");
        m->form = HTTP1_FORM_AUTHORITY;
        m->path = (struct http1_slice){t.p, 0};
        return 0;
    }
    if (t.p[0] == '/') {
        split_path(m, t);
        return 0;
    }
    if (t.len == 1 && t.p[0] == '*') {
        if (m->method_id != HTTP1_METHOD_OPTIONS)
            return fail(p, 400, "asterisk-form target is for OPTIONS only");
        m->form = HTTP1_FORM_ASTERISK;
        m->path = t;
        return 0;
    }
    return parse_absolute(p, t);
}

static int parse_request_line(struct parser *p, struct http1_slice line)
{
    const unsigned char *s = (const unsigned char *)line.p;
    size_t n = line.len, i = 0;
    while (i < n && is(s[i], C_TCHAR))
        i++;
    if (i == 0 || i == n || s[i] != ' ')
        return fail(p, 400, "invalid method");
    struct http1_msg *m = p->m;
    m->method = (struct http1_slice){line.p, i};
    m->method_id = method_id(m->method);

    size_t t = ++i;
    while (i < n && is(s[i], C_TARGET))
        i++;
    if (i == t || i == n || s[i] != ' ')
        return fail(p, 400, "invalid request-target");
    m->target = (struct http1_slice){line.p + t, i - t};
    if (parse_version(p, (struct http1_slice){line.p + i + 1, n - i - 1}) < 0)
        return -1;
    return parse_target(p, m->target);
}

static int parse_status_line(struct parser *p, struct http1_slice line)
{
    const char *s = line.p;
    if (line.len < 12 || s[8] != ' ')
        return fail(p, 502, "invalid status line");
    if (parse_version(p, (struct http1_slice){s, 8}) < 0)
        return -1;
    int status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9')
            return fail(p, 502, "invalid status code");
        status = status * 10 + (s[i] - '0');
    }
    if (status < 100 || status > 599)
        return fail(p, 502, "invalid status code");
    /* "HTTP/1.1 200" without SP and reason is common enough, and harmless, to accept. */
    if (line.len > 12 && s[12] != ' ')
        return fail(p, 502, "invalid status line");
    struct http1_slice reason = {s + 13, line.len > 13 ? line.len - 13 : 0};
    if (!all_of(reason, C_VALUE))
        return fail(p, 502, "control character in reason phrase");
    p->m->status = status;
    p->m->reason = reason;
    return 0;
}

static int parse_content_length(struct parser *p, struct http1_slice v)
{
    /* Refused even when equal: a repeat means some hop joined or split messages. */
    if (++p->n_cl > 1)
        return fail(p, 400, "repeated Content-Length");
    if (v.len == 0)
        return fail(p, 400, "invalid Content-Length");
    int64_t value = 0;
    for (size_t i = 0; i < v.len; i++) {
        int d = v.p[i] - '0';
        if (d < 0 || d > 9)
            return fail(p, 400, "invalid Content-Length");
        if (value > (INT64_MAX - d) / 10)
            return fail(p, 400, "Content-Length too large");
        value = value * 10 + d;
    }
    p->m->content_length = value;
    return 0;
}

static void parse_connection(struct parser *p, struct http1_slice v)
{
    struct http1_slice item;
    while (list_next(&v, &item)) {
        if (http1_slice_eq(item, "close"))
            p->conn_close = true;
        else if (http1_slice_eq(item, "keep-alive"))
            p->conn_keep_alive = true;
        else if (http1_slice_eq(item, "upgrade"))
            p->conn_upgrade = true;
    }
}

static int parse_host(struct parser *p, struct http1_slice v)
{
    if (++p->n_host > 1)
        return fail(p, 400, "multiple Host headers");
    if (!all_of(v, C_HOST))
        return fail(p, 400, "invalid Host header");
    /* An absolute-form target's authority wins over Host (RFC 9112 3.2.2). */
    if (p->m->form != HTTP1_FORM_ABSOLUTE) {
        p->m->host = v;
        p->m->has_host = true;
    }
    return 0;
}

/* The fields whose meaning the parser needs; the rest are only stored. */
static int field_semantics(struct parser *p, struct http1_slice name, struct http1_slice v)
{
    switch (name.len) {
    case 4:
        if (!p->response && http1_slice_eq(name, "host"))
            return parse_host(p, v);
        break;
    case 6:
        if (http1_slice_eq(name, "expect") && http1_slice_eq(v, "100-continue"))
            p->expect_100 = true;
        break;
    case 7:
        if (http1_slice_eq(name, "upgrade"))
            p->has_upgrade = true;
        break;
    case 10:
        if (http1_slice_eq(name, "connection"))
            parse_connection(p, v);
        break;
    case 14:
        if (http1_slice_eq(name, "content-length"))
            return parse_content_length(p, v);
        break;
    case 17:
        if (http1_slice_eq(name, "transfer-encoding"))
            p->n_te++;
        break;
    }
    return 0;
}

static int parse_field(struct parser *p, struct http1_slice line)
{
    const unsigned char *s = (const unsigned char *)line.p;
    size_t n = line.len, i = 0;
    if (n == 0)
        return fail(p, 400, "empty header line");
    if (s[0] == ' ' || s[0] == '\t')
        return fail(p, 400, "obs-fold (header line folding) is not allowed");
    while (i < n && is(s[i], C_TCHAR))
        i++;
    if (i == n)
        return fail(p, 400, "header line without colon");
    if (s[i] != ':') {
        if (s[i] == ' ' || s[i] == '\t')
            return fail(p, 400, "whitespace between header name and colon");
        return fail(p, 400, "invalid character in header name");
    }
    if (i == 0)
        return fail(p, 400, "empty header name");
    struct http1_slice name = {line.p, i};
    size_t v = ++i;
    while (i < n && is(s[i], C_VALUE))
        i++;
    if (i != n)
        return fail(p, 400, "control character in header value");
    struct http1_slice value = trim((struct http1_slice){line.p + v, n - v});

    struct http1_msg *m = p->m;
    size_t max =
        p->limits->max_headers < HTTP1_MAX_HEADERS ? p->limits->max_headers : HTTP1_MAX_HEADERS;
    if (m->n_headers >= max)
        return fail(p, 431, "too many header fields");
    m->headers[m->n_headers++] = (struct http1_header){name, value};
    return field_semantics(p, name, value);
}

static bool known_coding(struct http1_slice c)
{
    static const char *const codings[] = {"gzip", "x-gzip", "deflate", "compress", "x-compress"};
    for (size_t i = 0; i < sizeof codings / sizeof codings[0]; i++)
        if (http1_slice_eq(c, codings[i]))
            return true;
    return false;
}

/* Transfer-Encoding, every line of it in order. chunked must come last and once; in a request
 * anything else is refused, since the body's end could not be found (RFC 9112 6.3). */
static int parse_codings(struct parser *p)
{
    struct http1_msg *m = p->m;
    bool chunked = false, unknown = false;
    size_t count = 0;
    for (size_t h = 0; h < m->n_headers; h++) {
        if (!http1_slice_eq(m->headers[h].name, "transfer-encoding"))
            continue;
        struct http1_slice rest = m->headers[h].value, item;
        while (list_next(&rest, &item)) {
            const char *semi = memchr(item.p, ';', item.len);
            struct http1_slice name =
                trim((struct http1_slice){item.p, semi ? (size_t)(semi - item.p) : item.len});
            if (name.len == 0 || !all_of(name, C_TCHAR))
                return fail(p, 400, "invalid Transfer-Encoding");
            bool is_chunked = http1_slice_eq(name, "chunked");
            if (chunked)
                return fail(p, 400,
                            is_chunked ? "chunked applied more than once"
                                       : "chunked is not the final transfer coding");
            if (is_chunked && semi)
                return fail(p, 400, "chunked takes no parameters");
            chunked = is_chunked;
            unknown |= !is_chunked && !known_coding(name);
            count++;
        }
    }
    if (count == 0)
        return fail(p, 400, "empty Transfer-Encoding");
    if (!p->response && !chunked)
        return fail(p, 400, "final transfer coding is not chunked");
    if (!p->response && unknown)
        return fail(p, 501, "unknown transfer coding");
    m->chunked = chunked;
    return 0;
}

static bool keep_alive(const struct parser *p)
{
    if (p->conn_close)
        return false;
    return p->m->minor == 1 || p->conn_keep_alive;
}

static int finish_request(struct parser *p)
{
    struct http1_msg *m = p->m;
    if (m->minor == 1 && p->n_host == 0)
        return fail(p, 400, "missing Host header");
    if (p->n_te) {
        if (m->minor == 0)
            return fail(p, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (p->n_cl)
            return fail(p, 400, "both Content-Length and Transfer-Encoding");
        if (parse_codings(p) < 0)
            return -1;
    }
    m->body = m->chunked ? HTTP1_BODY_CHUNKED : p->n_cl ? HTTP1_BODY_LENGTH : HTTP1_BODY_NONE;
    m->keep_alive = keep_alive(p);
    /* HTTP/1.0 requests have neither (RFC 9110 10.1.1 and 7.8). */
    m->expect_continue = m->minor == 1 && p->expect_100;
    m->upgrade = m->minor == 1 && p->has_upgrade && p->conn_upgrade;
    return 0;
}

static bool response_has_body(const struct parser *p)
{
    int status = p->m->status;
    if (p->request_method == HTTP1_METHOD_HEAD || status < 200 || status == 204 || status == 304)
        return false;
    /* A 2xx to CONNECT turns the connection into a tunnel. */
    return !(p->request_method == HTTP1_METHOD_CONNECT && status < 300);
}

static int finish_response(struct parser *p)
{
    struct http1_msg *m = p->m;
    if (p->n_te) {
        if (m->minor == 0)
            return fail(p, 502, "Transfer-Encoding in an HTTP/1.0 response");
        if (p->n_cl)
            return fail(p, 502, "both Content-Length and Transfer-Encoding");
        if (parse_codings(p) < 0)
            return -1;
    }
    if (!response_has_body(p))
        m->body = HTTP1_BODY_NONE;
    else if (m->chunked)
        m->body = HTTP1_BODY_CHUNKED;
    else if (p->n_te)
        m->body = HTTP1_BODY_CLOSE;
    else if (p->n_cl)
        m->body = HTTP1_BODY_LENGTH;
    else
        m->body = HTTP1_BODY_CLOSE;
    m->keep_alive = keep_alive(p) && m->body != HTTP1_BODY_CLOSE;
    m->upgrade = m->status == 101;
    return 0;
}

static enum http1_result parse_head(struct parser *p)
{
    struct http1_slice line;
    if (next_line(p, &line) < 0)
        return HTTP1_ERROR;
    int r = p->response ? parse_status_line(p, line) : parse_request_line(p, line);
    if (r < 0)
        return HTTP1_ERROR;
    while (p->pos < p->end - 2) {
        if (next_line(p, &line) < 0 || parse_field(p, line) < 0)
            return HTTP1_ERROR;
    }
    r = p->response ? finish_response(p) : finish_request(p);
    if (r < 0)
        return HTTP1_ERROR;
    p->m->head_len = p->end;
    return HTTP1_DONE;
}

/* RFC 9112 2.2: a server should ignore empty lines before a request line (old clients send a
 * CRLF after a POST body). They count towards the head's size. */
static size_t skip_empty_lines(const char *buf, size_t len, size_t max)
{
    size_t s = 0;
    while (s + 2 <= len && s + 2 <= max && buf[s] == '\r' && buf[s + 1] == '\n')
        s += 2;
    return s;
}

static enum http1_result parse(const char *buf, size_t len, size_t prev_len,
                               const struct http1_limits *limits, struct parser *p)
{
    const struct http1_limits *lim = limits ? limits : &http1_default_limits;
    msg_clear(p->m);
    size_t start = p->response ? 0 : skip_empty_lines(buf, len, lim->max_head);
    size_t end;
    enum http1_result r = find_head(buf, len, prev_len, start, lim, p->response, p->m, &end);
    if (r != HTTP1_DONE)
        return r;
    p->buf = buf;
    p->pos = start;
    p->end = end;
    p->limits = lim;
    return parse_head(p);
}

enum http1_result http1_parse_request(const char *buf, size_t len, size_t prev_len,
                                      const struct http1_limits *limits, struct http1_msg *msg)
{
    struct parser p = {.m = msg};
    return parse(buf, len, prev_len, limits, &p);
}

enum http1_result http1_parse_response(const char *buf, size_t len, size_t prev_len,
                                       const struct http1_limits *limits,
                                       enum http1_method request_method, struct http1_msg *msg)
{
    struct parser p = {.m = msg, .response = true, .request_method = request_method};
    return parse(buf, len, prev_len, limits, &p);
}

/* ---- helpers ---- */

const struct http1_header *http1_header_find(const struct http1_msg *msg, const char *name)
{
    struct http1_slice want = {name, strlen(name)};
    for (size_t i = 0; i < msg->n_headers; i++)
        if (slices_eq(msg->headers[i].name, want))
            return &msg->headers[i];
    return NULL;
}

bool http1_is_hop_by_hop(const struct http1_msg *msg, struct http1_slice name)
{
    static const char *const fixed[] = {"connection", "keep-alive",        "proxy-connection",
                                        "te",         "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (http1_slice_eq(name, fixed[i]))
            return true;
    for (size_t h = 0; h < msg->n_headers; h++) {
        if (!http1_slice_eq(msg->headers[h].name, "connection"))
            continue;
        struct http1_slice rest = msg->headers[h].value, item;
        while (list_next(&rest, &item))
            if (slices_eq(item, name))
                return true;
    }
    return false;
}

const char *http1_reason(int status)
{
    static const struct {
        int status;
        const char *text;
    } reasons[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {411, "Length Required"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {417, "Expectation Failed"},
        {421, "Misdirected Request"},
        {426, "Upgrade Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].status == status)
            return reasons[i].text;
    return "Unknown";
}

/* ---- chunked bodies ---- */

enum chunk_state {
    CH_SIZE,
    CH_SIZE_WS, /* whitespace after the size, allowed only before an extension */
    CH_EXT,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER_START,
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_END_LF,
    CH_DONE,
    CH_ERROR,
};

void http1_chunked_init(struct http1_chunked *c)
{
    *c = (struct http1_chunked){.state = CH_SIZE};
}

static int chunk_fail(struct http1_chunked *c, const char *why)
{
    c->state = CH_ERROR;
    c->error_status = 400;
    c->error = why;
    return -1;
}

static int hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = lower(ch);
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

static int size_digit(struct http1_chunked *c, unsigned char ch)
{
    int d = hex_value(ch);
    if (d >= 0) {
        if (c->size > (uint64_t)(INT64_MAX >> 4))
            return chunk_fail(c, "chunk size too large");
        c->size = c->size << 4 | (uint64_t)d;
        c->digits++;
        return 0;
    }
    if (c->digits == 0)
        return chunk_fail(c, ch == ';' || ch == '\r' ? "empty chunk size" : "invalid chunk size");
    if (ch == ';')
        c->state = CH_EXT;
    else if (ch == ' ' || ch == '\t')
        c->state = CH_SIZE_WS;
    else if (ch == '\r')
        c->state = CH_SIZE_LF;
    else
        return chunk_fail(c, "invalid chunk size");
    return 0;
}

static int size_line(struct http1_chunked *c, unsigned char ch)
{
    if (++c->line > HTTP1_CHUNK_LINE_MAX)
        return chunk_fail(c, "chunk size line too long");
    switch (c->state) {
    case CH_SIZE:
        return size_digit(c, ch);
    case CH_SIZE_WS:
        if (ch == ';')
            c->state = CH_EXT;
        else if (ch != ' ' && ch != '\t')
            return chunk_fail(c, "invalid chunk size");
        return 0;
    case CH_EXT:
        if (ch == '\r')
            c->state = CH_SIZE_LF;
        else if (!is(ch, C_VALUE))
            return chunk_fail(c, "control character in chunk extension");
        return 0;
    default: /* CH_SIZE_LF */
        if (ch != '\n')
            return chunk_fail(c, "missing LF after chunk size");
        c->state = c->size ? CH_DATA : CH_TRAILER_START;
        return 0;
    }
}

static int trailer_byte(struct http1_chunked *c, unsigned char ch)
{
    if (++c->trailers > HTTP1_TRAILERS_MAX)
        return chunk_fail(c, "trailer section too large");
    switch (c->state) {
    case CH_TRAILER_START:
        if (ch == '\r')
            c->state = CH_END_LF;
        else if (is(ch, C_TCHAR))
            c->state = CH_TRAILER_NAME;
        else
            return chunk_fail(c, ch == ' ' || ch == '\t' ? "obs-fold in trailer section"
                                                         : "invalid trailer field");
        return 0;
    case CH_TRAILER_NAME:
        if (ch == ':')
            c->state = CH_TRAILER_VALUE;
        else if (!is(ch, C_TCHAR))
            return chunk_fail(c, "invalid trailer field name");
        return 0;
    case CH_TRAILER_VALUE:
        if (ch == '\r')
            c->state = CH_TRAILER_LF;
        else if (!is(ch, C_VALUE))
            return chunk_fail(c, "control character in trailer field");
        return 0;
    case CH_TRAILER_LF:
        if (ch != '\n')
            return chunk_fail(c, "bare CR in trailer section");
        c->state = CH_TRAILER_START;
        return 0;
    default: /* CH_END_LF */
        if (ch != '\n')
            return chunk_fail(c, "missing CRLF after last chunk");
        c->state = CH_DONE;
        return 0;
    }
}

static int chunk_byte(struct http1_chunked *c, unsigned char ch)
{
    switch (c->state) {
    case CH_SIZE:
    case CH_SIZE_WS:
    case CH_EXT:
    case CH_SIZE_LF:
        return size_line(c, ch);
    case CH_DATA_CR:
        if (ch != '\r')
            return chunk_fail(c, "missing CRLF after chunk data");
        c->state = CH_DATA_LF;
        return 0;
    case CH_DATA_LF:
        if (ch != '\n')
            return chunk_fail(c, "missing CRLF after chunk data");
        c->state = CH_SIZE;
        c->size = 0;
        c->digits = 0;
        c->line = 0;
        return 0;
    default:
        return trailer_byte(c, ch);
    }
}

enum http1_result http1_chunked_feed(struct http1_chunked *c, const char *buf, size_t len,
                                     size_t *consumed, struct http1_slice *data)
{
    *data = (struct http1_slice){buf, 0};
    size_t i = 0;
    while (i < len && c->state != CH_DONE && c->state != CH_ERROR) {
        if (c->state == CH_DATA) {
            size_t n = (uint64_t)(len - i) < c->size ? len - i : (size_t)c->size;
            *data = (struct http1_slice){buf + i, n};
            c->size -= n;
            if (c->size == 0)
                c->state = CH_DATA_CR;
            *consumed = i + n;
            return HTTP1_NEED_MORE;
        }
        if (chunk_byte(c, (unsigned char)buf[i++]) < 0)
            break;
    }
    *consumed = i;
    if (c->state == CH_ERROR)
        return HTTP1_ERROR;
    return c->state == CH_DONE ? HTTP1_DONE : HTTP1_NEED_MORE;
}
