#include "common/docker.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"

/* The API version every call names: Docker 20.10's, which later daemons still serve. */
#define API_PREFIX "/v1.41"

enum {
    BACKOFF_MIN_MS = 250,
    BACKOFF_MAX_MS = 8000,
    ERROR_MAX = 512,
    URL_MAX = 4096,
    LOG_FRAME_HEADER = 8,
};

struct docker {
    CURL *curl;
    char *socket_path;
    char error[ERROR_MAX];
    char curl_error[CURL_ERROR_SIZE];
    bool reachable; /* the last call was answered */
    bool unreachable_logged;
    int64_t backoff_ms;  /* the next wait after a call that got no answer */
    int64_t retry_at_ms; /* monotonic: before it, calls fail at once */
};

/* Where an answer's body goes: a bounded buffer, optionally through the demultiplexer of the logs
 * stream (frames of an 8-byte header, [stream, 0, 0, 0, size as 4 bytes big-endian], then the
 * payload), keeping only the last `keep` bytes of the payloads. */
struct sink {
    CURL *curl;
    struct buf body;
    bool overflow;
    bool logs;    /* a logs stream: demultiplexed unless raw */
    bool raw;     /* a terminal's stream: no frames */
    bool checked; /* the status was looked at (an error answer is JSON, not a stream) */
    size_t keep;  /* logs: the tail kept */
    unsigned char head[LOG_FRAME_HEADER];
    size_t head_have;
    size_t frame_left; /* payload bytes of the current frame still to come */
};

struct docker *docker_open(const char *socket_path)
{
    struct docker *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    /* libcurl counts its initialisations: each client holds one, given back in docker_close */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(d);
        return NULL;
    }
    d->curl = curl_easy_init();
    d->socket_path = strdup(socket_path);
    d->backoff_ms = BACKOFF_MIN_MS;
    d->reachable = true; /* until a call says otherwise: the first failure is logged */
    if (!d->curl || !d->socket_path) {
        docker_close(d);
        return NULL;
    }
    return d;
}

void docker_close(struct docker *d)
{
    if (!d)
        return;
    if (d->curl)
        curl_easy_cleanup(d->curl);
    free(d->socket_path);
    free(d);
    curl_global_cleanup();
}

const char *docker_socket_path(const struct docker *d)
{
    return d->socket_path;
}

const char *docker_error(const struct docker *d)
{
    return d->error;
}

bool docker_reachable(const struct docker *d)
{
    return d->reachable;
}

/* --- answers --- */

/* Appends to the kept tail of a logs stream: past `keep` bytes the oldest go. Once full, the
 * buffer keeps `keep` bytes of room beyond the tail, so the kept bytes move to the front once per
 * `keep` bytes written, not once per frame (a frame is often one short line). */
static int keep_tail(struct sink *s, const char *bytes, size_t n)
{
    struct buf *b = &s->body;
    if (n >= s->keep) {
        buf_reset(b);
        return buf_append(b, bytes + (n - s->keep), s->keep);
    }
    size_t have = buf_unread(b);
    if (have + n > s->keep)
        buf_consume(b, have + n - s->keep);
    if (buf_room(b) < n && buf_reserve(b, s->keep) < 0)
        return -1;
    return buf_append(b, bytes, n);
}

static int demux(struct sink *s, const char *bytes, size_t n)
{
    while (n) {
        if (s->frame_left == 0) {
            size_t take = LOG_FRAME_HEADER - s->head_have;
            take = take < n ? take : n;
            memcpy(s->head + s->head_have, bytes, take);
            s->head_have += take;
            bytes += take;
            n -= take;
            if (s->head_have < LOG_FRAME_HEADER)
                return 0;
            s->head_have = 0;
            s->frame_left = (size_t)s->head[4] << 24 | (size_t)s->head[5] << 16 |
                            (size_t)s->head[6] << 8 | (size_t)s->head[7];
            continue;
        }
        size_t take = s->frame_left < n ? s->frame_left : n;
        if (keep_tail(s, bytes, take) < 0)
            return -1;
        s->frame_left -= take;
        bytes += take;
        n -= take;
    }
    return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct sink *s = arg;
    size_t n = size * nmemb;
    if (s->logs && !s->checked) {
        long status = 0;
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
        s->logs = status >= 200 && status < 300; /* an error's body is dockerd's JSON */
        s->checked = true;
    }
    int rc = !s->logs ? buf_append(&s->body, data, n)
             : s->raw ? keep_tail(s, data, n)
                      : demux(s, data, n);
    if (rc < 0) {
        s->overflow = true;
        return 0; /* aborts the transfer */
    }
    return n;
}

/* --- requests --- */

static void set_error(struct docker *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct docker *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->error, sizeof d->error, fmt, ap);
    va_end(ap);
}

/* The daemon answered, or did not: backoff, and one log line per change either way. */
static void note_answer(struct docker *d, bool answered)
{
    if (answered) {
        if (d->unreachable_logged)
            log_info("dockerd at %s answers again", d->socket_path);
        d->unreachable_logged = false;
        d->reachable = true;
        d->backoff_ms = BACKOFF_MIN_MS;
        d->retry_at_ms = 0;
        return;
    }
    d->reachable = false;
    d->retry_at_ms = clock_mono_ms() + d->backoff_ms;
    d->backoff_ms = d->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d->backoff_ms * 2;
    if (!d->unreachable_logged)
        log_warn("%s (calls are retried after a backoff of up to %d s)", d->error,
                 BACKOFF_MAX_MS / 1000);
    d->unreachable_logged = true;
}

static void transport_error(struct docker *d, CURLcode rc)
{
    long os_errno = 0;
    curl_easy_getinfo(d->curl, CURLINFO_OS_ERRNO, &os_errno);
    if (rc == CURLE_COULDNT_CONNECT && os_errno)
        set_error(d, "cannot reach dockerd at %s: connect: %s", d->socket_path,
                  strerror((int)os_errno));
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        set_error(d, "cannot reach dockerd at %s: no answer within %d ms", d->socket_path,
                  DOCKER_TIMEOUT_MS);
    else
        set_error(d, "cannot reach dockerd at %s: %s", d->socket_path,
                  d->curl_error[0] ? d->curl_error : curl_easy_strerror(rc));
}

/* "METHOD PATH: STATUS dockerd's message" for an error status (the query string left out). */
static int status_error(struct docker *d, const char *method, const char *path, long status,
                        const struct sink *s)
{
    json_t *doc = json_loadb(buf_head(&s->body), buf_unread(&s->body), 0, NULL);
    const char *message = json_string_value(json_object_get(doc, "message"));
    int path_len = (int)strcspn(path, "?");
    set_error(d, "%s %.*s: %ld %.300s", method, path_len, path, status,
              message ? message : "(no message)");
    json_decref(doc);
    return status == 404 ? DOCKER_NOT_FOUND : status == 409 ? DOCKER_CONFLICT : DOCKER_FAILED;
}

static void set_options(struct docker *d, const char *method, const char *url, const char *body,
                        struct curl_slist *headers, struct sink *s)
{
    CURL *c = d->curl;
    curl_easy_reset(c); /* the options go; the connection to dockerd stays for the next call */
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, d->socket_path);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)DOCKER_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)DOCKER_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, d->curl_error);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
}

/* One call: DOCKER_OK with the answer in s->body, or an error with its text in d->error. */
static int perform(struct docker *d, const char *method, const char *path, const char *body,
                   struct sink *s)
{
    if (clock_mono_ms() < d->retry_at_ms)
        return DOCKER_UNREACHABLE; /* backing off: d->error still says why */
    char url[URL_MAX];
    if ((size_t)snprintf(url, sizeof url, "http://docker" API_PREFIX "%s", path) >= sizeof url) {
        set_error(d, "%s %.100s...: the request is too long", method, path);
        return DOCKER_FAILED;
    }
    struct curl_slist *headers = NULL, *more;
    /* no "Expect: 100-continue" round trip for a large create body */
    headers = curl_slist_append(headers, "Expect:");
    more = headers ? curl_slist_append(headers, "Content-Type: application/json") : NULL;
    if (!more) {
        curl_slist_free_all(headers);
        set_error(d, "%s %s: out of memory", method, path);
        return DOCKER_FAILED;
    }
    headers = more;
    s->curl = d->curl;
    d->curl_error[0] = '\0';
    set_options(d, method, url, body, headers, s);
    CURLcode rc = curl_easy_perform(d->curl);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK && s->overflow) {
        note_answer(d, true);
        set_error(d, "%s %.*s: the answer is larger than %zu bytes (or memory ran out)", method,
                  (int)strcspn(path, "?"), path, s->body.max);
        return DOCKER_FAILED;
    }
    if (rc != CURLE_OK) {
        transport_error(d, rc);
        note_answer(d, false);
        return DOCKER_UNREACHABLE;
    }
    note_answer(d, true);
    long status = 0;
    curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &status);
    if ((status >= 200 && status < 300) || status == 304) /* 304: already started */
        return DOCKER_OK;
    return status_error(d, method, path, status, s);
}

int docker_request(struct docker *d, const char *method, const char *path, const json_t *body,
                   json_t **out)
{
    if (out)
        *out = NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && !text) {
        set_error(d, "%s %s: the body cannot be written as JSON", method, path);
        return DOCKER_FAILED;
    }
    struct sink s = {0};
    buf_init(&s.body, DOCKER_MAX_ANSWER);
    int rc = perform(d, method, path, text, &s);
    free(text);
    if (rc == DOCKER_OK && out && buf_unread(&s.body)) {
        json_error_t err;
        *out = json_loadb(buf_head(&s.body), buf_unread(&s.body), 0, &err);
        if (!*out) {
            set_error(d, "%s %.*s: the answer is not JSON: %s", method, (int)strcspn(path, "?"),
                      path, err.text);
            rc = DOCKER_FAILED;
        }
    }
    buf_free(&s.body);
    return rc;
}

/* --- operations --- */

/* A call on PREFIX ID SUFFIX, the id (or name, or filter) escaped. */
static int request_on(struct docker *d, const char *method, const char *prefix, const char *id,
                      const char *suffix, const json_t *body, json_t **out)
{
    char *escaped = curl_easy_escape(d->curl, id, 0);
    if (!escaped) {
        set_error(d, "%s: out of memory", method);
        return DOCKER_FAILED;
    }
    char path[URL_MAX];
    snprintf(path, sizeof path, "%s%s%s", prefix, escaped, suffix);
    curl_free(escaped);
    return docker_request(d, method, path, body, out);
}

int docker_ping(struct docker *d)
{
    struct sink s = {0};
    buf_init(&s.body, 4096);
    int rc = perform(d, "GET", "/_ping", NULL, &s);
    buf_free(&s.body);
    return rc;
}

int docker_create(struct docker *d, const char *name, const json_t *config, char id[DOCKER_ID_MAX])
{
    json_t *answer = NULL;
    int rc = name ? request_on(d, "POST", "/containers/create?name=", name, "", config, &answer)
                  : docker_request(d, "POST", "/containers/create", config, &answer);
    if (rc != DOCKER_OK)
        return rc;
    const char *got = json_string_value(json_object_get(answer, "Id"));
    if (!got || strlen(got) >= DOCKER_ID_MAX) {
        set_error(d, "POST /containers/create: the answer has no container id");
        json_decref(answer);
        return DOCKER_FAILED;
    }
    snprintf(id, DOCKER_ID_MAX, "%s", got);
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(answer, "Warnings"), i, w)
    {
        log_debug("dockerd: container %.12s: %s", id, json_string_value(w));
    }
    json_decref(answer);
    return DOCKER_OK;
}

int docker_start(struct docker *d, const char *id)
{
    return request_on(d, "POST", "/containers/", id, "/start", NULL, NULL);
}

int docker_inspect(struct docker *d, const char *id, json_t **out)
{
    int rc = request_on(d, "GET", "/containers/", id, "/json", NULL, out);
    if (rc == DOCKER_OK && !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        set_error(d, "GET /containers/%.80s/json: the answer is not an object", id);
        return DOCKER_FAILED;
    }
    return rc;
}

int docker_kill(struct docker *d, const char *id, int sig)
{
    char suffix[64];
    snprintf(suffix, sizeof suffix, "/kill?signal=%d", sig);
    return request_on(d, "POST", "/containers/", id, suffix, NULL, NULL);
}

int docker_remove(struct docker *d, const char *id, bool force)
{
    return request_on(d, "DELETE", "/containers/", id, force ? "?force=1&v=1" : "?v=1", NULL, NULL);
}

int docker_list(struct docker *d, const char *label, json_t **out)
{
    json_t *filter = json_pack("{s:[s]}", "label", label);
    char *text = filter ? json_dumps(filter, JSON_COMPACT) : NULL;
    json_decref(filter);
    if (!text) {
        set_error(d, "GET /containers/json: out of memory");
        return DOCKER_FAILED;
    }
    int rc = request_on(d, "GET", "/containers/json?all=1&filters=", text, "", NULL, out);
    free(text);
    if (rc == DOCKER_OK && !json_is_array(*out)) {
        json_decref(*out);
        *out = NULL;
        set_error(d, "GET /containers/json: the answer is not an array");
        return DOCKER_FAILED;
    }
    return rc;
}

int docker_logs(struct docker *d, const char *id, bool tty, int tail_lines, size_t max_bytes,
                char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    char *escaped = curl_easy_escape(d->curl, id, 0);
    if (!escaped || max_bytes == 0 || max_bytes > SIZE_MAX / 2 - 1) {
        curl_free(escaped);
        set_error(d, "GET /containers/%.80s/logs: out of memory", id);
        return DOCKER_FAILED;
    }
    char path[URL_MAX];
    snprintf(path, sizeof path, "/containers/%s/logs?stdout=1&stderr=1&tail=%d", escaped,
             tail_lines);
    curl_free(escaped);
    /* room for twice the tail (see keep_tail), and for an error's JSON */
    struct sink s = {.logs = true, .raw = tty, .keep = max_bytes};
    buf_init(&s.body, 2 * max_bytes + 1);
    int rc = perform(d, "GET", path, NULL, &s);
    if (rc == DOCKER_OK && buf_append(&s.body, "", 1) == 0) {
        *len = buf_unread(&s.body) - 1;
        *out = malloc(*len + 1);
        if (*out)
            memcpy(*out, buf_head(&s.body), *len + 1);
    }
    if (rc == DOCKER_OK && !*out) {
        *len = 0;
        set_error(d, "GET /containers/%.80s/logs: out of memory", id);
        rc = DOCKER_FAILED;
    }
    buf_free(&s.body);
    return rc;
}
