/* Moving a message body from one side's input buffer to the other side's endpoint.
 * Content-Length and close-delimited bodies pass through untouched (staged as the endpoint's
 * `pass`, consumed from the source once written). Chunked bodies are decoded and re-encoded into
 * `out`: extensions and trailers are dropped (common/http1.h), so what the far side parses is
 * exactly what Gantry parsed — no smuggling through framing it would read differently. For an
 * HTTP/1.0 client the chunks are decoded without re-encoding and the connection closes after. */
#ifndef GANTRY_LB_BODY_H
#define GANTRY_LB_BODY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/http1.h"
#include "lb/io.h"

struct lb_body {
    enum http1_body mode;
    int64_t left;  /* HTTP1_BODY_LENGTH */
    int64_t limit; /* HTTP1_BODY_CHUNKED: most decoded bytes; 0: none */
    int64_t total; /* HTTP1_BODY_CHUNKED: decoded bytes so far */
    bool too_large;
    bool rechunk; /* HTTP1_BODY_CHUNKED: re-encode (false: de-chunk for HTTP/1.0) */
    bool done;
    struct http1_chunked chunked;
};

void lb_body_init(struct lb_body *b, enum http1_body mode, int64_t length, bool rechunk);

enum lb_body_stage { LB_BODY_OK, LB_BODY_ERROR };
/* A Content-Length above a limit is refused from the head; a chunked body only shows its size as
 * it comes, so staging fails (too_large set) once it passes limit. */
void lb_body_limit(struct lb_body *b, int64_t limit);
/* Stages what `src` holds for `dst`; call only when dst has nothing staged in pass. Sets *error
 * to the parse error for a bad chunk. out_limit bounds dst->out for chunked bodies. */
enum lb_body_stage lb_body_stage(struct lb_body *b, struct buf *src, struct lb_endpoint *dst,
                                 size_t out_limit, const char **error);
/* The source closed: the end of a close-delimited body, an error for any other. */
bool lb_body_eof(struct lb_body *b);

#endif
