#include "lb/body.h"

void lb_body_init(struct lb_body *b, enum http1_body mode, int64_t length, bool rechunk)
{
    b->mode = mode;
    b->left = mode == HTTP1_BODY_LENGTH ? length : 0;
    b->rechunk = rechunk;
    b->limit = 0;
    b->total = 0;
    b->too_large = false;
    b->done = mode == HTTP1_BODY_NONE || (mode == HTTP1_BODY_LENGTH && length == 0);
    if (mode == HTTP1_BODY_CHUNKED)
        http1_chunked_init(&b->chunked);
}

void lb_body_limit(struct lb_body *b, int64_t limit)
{
    b->limit = limit;
}

static void stage_pass(struct buf *src, struct lb_endpoint *dst, size_t n)
{
    dst->pass = buf_head(src);
    dst->pass_len = n;
}

static enum lb_body_stage stage_chunked(struct lb_body *b, struct buf *src, struct lb_endpoint *dst,
                                        size_t out_limit, const char **error)
{
    while (!b->done && buf_unread(src) && buf_unread(&dst->out) < out_limit) {
        size_t consumed;
        struct http1_slice data;
        enum http1_result r =
            http1_chunked_feed(&b->chunked, buf_head(src), buf_unread(src), &consumed, &data);
        if (r == HTTP1_ERROR) {
            *error = b->chunked.error;
            return LB_BODY_ERROR;
        }
        b->total += (int64_t)data.len;
        if (b->limit > 0 && b->total > b->limit) {
            b->too_large = true;
            *error = "the body exceeds max_body_size";
            return LB_BODY_ERROR;
        }
        int failed = 0;
        if (data.len && b->rechunk)
            failed |= buf_printf(&dst->out, "%zx\r\n", data.len);
        if (data.len)
            failed |= buf_append(&dst->out, data.p, data.len);
        if (data.len && b->rechunk)
            failed |= buf_append(&dst->out, "\r\n", 2);
        if (r == HTTP1_DONE) {
            b->done = true;
            if (b->rechunk)
                failed |= buf_append(&dst->out, "0\r\n\r\n", 5);
        }
        if (failed) {
            *error = "out of buffer memory";
            return LB_BODY_ERROR;
        }
        buf_consume(src, consumed);
        if (r == HTTP1_NEED_MORE && consumed == 0)
            break;
    }
    return LB_BODY_OK;
}

enum lb_body_stage lb_body_stage(struct lb_body *b, struct buf *src, struct lb_endpoint *dst,
                                 size_t out_limit, const char **error)
{
    size_t avail = buf_unread(src);
    if (b->done || avail == 0)
        return LB_BODY_OK;
    switch (b->mode) {
    case HTTP1_BODY_LENGTH: {
        size_t n = (int64_t)avail < b->left ? avail : (size_t)b->left;
        stage_pass(src, dst, n);
        b->left -= (int64_t)n;
        b->done = b->left == 0;
        return LB_BODY_OK;
    }
    case HTTP1_BODY_CLOSE:
        stage_pass(src, dst, avail);
        return LB_BODY_OK;
    case HTTP1_BODY_CHUNKED:
        return stage_chunked(b, src, dst, out_limit, error);
    case HTTP1_BODY_NONE:
        break;
    }
    return LB_BODY_OK;
}

bool lb_body_eof(struct lb_body *b)
{
    if (b->mode == HTTP1_BODY_CLOSE) {
        b->done = true;
        return true;
    }
    return b->done;
}
