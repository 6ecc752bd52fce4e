#include "metrics/docker_stats.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/docker.h"
#include "common/log.h"

/* The API version common/docker.c names too. */
#define API_PREFIX "/v1.41"

enum {
    DOC_MAX = 1 << 20,     /* a document: ~2 KiB, more with many CPUs' counters */
    ERROR_BODY_MAX = 2048, /* what is kept of an error answer (dockerd's JSON message) */
    BACKOFF_MIN_MS = 250,
    BACKOFF_MAX_MS = 8000,
    STALL_S = 10,     /* a stream without a byte that long is dead (dockerd hung) */
    FD_RESERVE = 128, /* descriptors left to the rest of the daemon when streams are capped */
    STREAMS_MIN = 16,
    URL_MAX = 256,
};

/* A document older than this is not the container's current state. */
static const int64_t FRESH_NS = 3000000000;

struct stream {
    char id[DOCKER_STATS_ID_MAX + 1];
    struct docker_stats *ds;
    CURL *curl;
    bool active; /* in the multi handle */
    bool wanted; /* taken in this pass */
    long status; /* the answer's HTTP status once it is known, else 0 */
    bool overflow;
    /* The answer: the last complete document (line_len bytes and its '\n') when have_line, then
     * the start of the next one. Documents are one per line (Go's json.Encoder). */
    struct buf in;
    bool have_line;
    size_t line_len;
    bool has_frame;
    struct docker_frame frame;
    int64_t frame_mono_ns; /* when the pass that parsed it began */
    bool has_taken;
    struct docker_frame taken; /* what the last take gave */
    int64_t retry_at_ms;
    int64_t backoff_ms;
    char error[CURL_ERROR_SIZE];
};

struct docker_stats {
    CURLM *multi;
    char *socket_path;
    struct stream **streams; /* sorted by id */
    size_t n, cap;
    size_t max_streams;
    bool unreachable_logged;
    bool over_limit_logged;
};

/* --- documents --- */

bool docker_stats_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n < DOCKER_STATS_ID_MIN || n > DOCKER_STATS_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

/* n decimal digits at s, else -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* ".123456789" (0 to 9 digits, the separator included): *ns, and where it ends. */
static const char *fraction(const char *s, int64_t *ns)
{
    *ns = 0;
    if (*s != '.')
        return s;
    int64_t scale = 100000000;
    s++;
    if (*s < '0' || *s > '9')
        return NULL;
    for (; *s >= '0' && *s <= '9'; s++, scale /= 10) {
        if (!scale)
            return NULL; /* more than nanoseconds: dockerd never writes it */
        *ns += (*s - '0') * scale;
    }
    return s;
}

/* "Z", "+hh:mm" or "-hh:mm" ending the text: seconds east of UTC, or -1 when it does not read. */
static int zone_offset(const char *s, long *east)
{
    if (strcmp(s, "Z") == 0) {
        *east = 0;
        return 0;
    }
    if ((s[0] != '+' && s[0] != '-') || s[3] != ':' || s[6] != '\0')
        return -1;
    int h = digits(s + 1, 2), m = digits(s + 4, 2);
    if (h < 0 || h > 23 || m < 0 || m > 59)
        return -1;
    *east = (s[0] == '-' ? -1 : 1) * (h * 3600L + m * 60L);
    return 0;
}

int docker_time_parse(const char *text, int64_t *unix_ns)
{
    static const char seps[] = "--T::";
    static const int at[] = {4, 7, 10, 13, 16};
    if (strnlen(text, 20) < 19)
        return -1;
    for (int i = 0; i < 5; i++)
        if (text[at[i]] != seps[i])
            return -1;
    struct tm tm = {0};
    int year = digits(text, 4), month = digits(text + 5, 2), day = digits(text + 8, 2);
    tm.tm_hour = digits(text + 11, 2);
    tm.tm_min = digits(text + 14, 2);
    tm.tm_sec = digits(text + 17, 2);
    int64_t frac;
    long east;
    const char *zone = fraction(text + 19, &frac);
    if (year < 0 || month < 1 || month > 12 || day < 1 || day > 31 || tm.tm_hour < 0 ||
        tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60 ||
        !zone || zone_offset(zone, &east) < 0)
        return -1;
    if (year < 1970)
        return 1;
    if (year > 2261)
        return -1; /* past what int64 nanoseconds hold */
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    time_t t = timegm(&tm);
    *unix_ns = ((int64_t)t - east) * 1000000000 + frac;
    return 0;
}

/* A counter of the document: a non-negative integer. */
static bool counter(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* The docker CLI's memory in use (calculateMemUsageUnixNoCache): the page cache the kernel drops
 * first is not the container's working set. */
static uint64_t memory_in_use(uint64_t usage, const json_t *stats)
{
    uint64_t v;
    if (counter(json_object_get(stats, "total_inactive_file"), &v) && v < usage)
        return usage - v; /* cgroup v1 */
    if (!counter(json_object_get(stats, "inactive_file"), &v))
        v = 0;
    return v < usage ? usage - v : usage; /* cgroup v2 */
}

static enum docker_frame_result frame_of(const json_t *doc, struct docker_frame *out)
{
    const char *read = json_string_value(json_object_get(doc, "read"));
    const json_t *cpu = json_object_get(doc, "cpu_stats");
    const json_t *memory = json_object_get(doc, "memory_stats");
    const json_t *usage = json_object_get(memory, "usage");
    if (!read)
        return DOCKER_FRAME_DAMAGED;
    int when = docker_time_parse(read, &out->read_ns);
    if (when != 0)
        return when > 0 ? DOCKER_FRAME_NOT_RUNNING : DOCKER_FRAME_DAMAGED;
    if (!counter(json_object_get(json_object_get(cpu, "cpu_usage"), "total_usage"), &out->cpu_ns))
        return DOCKER_FRAME_DAMAGED;
    out->has_memory = usage != NULL;
    if (usage && !counter(usage, &out->memory_b))
        return DOCKER_FRAME_DAMAGED;
    if (usage)
        out->memory_b = memory_in_use(out->memory_b, json_object_get(memory, "stats"));
    return DOCKER_FRAME_OK;
}

enum docker_frame_result docker_frame_parse(const char *text, size_t len, struct docker_frame *out)
{
    memset(out, 0, sizeof *out);
    json_t *doc = json_loadb(text, len, 0, NULL);
    enum docker_frame_result rc = json_is_object(doc) ? frame_of(doc, out) : DOCKER_FRAME_DAMAGED;
    json_decref(doc);
    if (rc != DOCKER_FRAME_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

/* --- the daemon answering, or not --- */

static void note_answered(struct docker_stats *ds)
{
    if (ds->unreachable_logged)
        log_info("dockerd at %s answers again: DOCKER tasks are sampled", ds->socket_path);
    ds->unreachable_logged = false;
}

static void note_unreachable(struct docker_stats *ds, const struct stream *st, CURLcode rc)
{
    if (ds->unreachable_logged)
        return;
    ds->unreachable_logged = true;
    long os_errno = 0;
    curl_easy_getinfo(st->curl, CURLINFO_OS_ERRNO, &os_errno);
    char why[CURL_ERROR_SIZE + 64];
    if (rc == CURLE_COULDNT_CONNECT && os_errno)
        snprintf(why, sizeof why, "connect: %s", strerror((int)os_errno));
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        snprintf(why, sizeof why, "no answer within %d s", STALL_S);
    else
        snprintf(why, sizeof why, "%s", st->error[0] ? st->error : curl_easy_strerror(rc));
    log_warn("cannot reach dockerd at %s: %s; DOCKER tasks get no datapoints until it answers "
             "(retried after up to %d s)",
             ds->socket_path, why, BACKOFF_MAX_MS / 1000);
}

/* --- a stream's answer --- */

/* After bytes ending in [0, n) of the unread ones were appended: when they complete a line, only
 * the last complete line is kept (a pass wants the latest document, not every one since). */
static void keep_last_line(struct stream *st, size_t n)
{
    char *head = buf_head(&st->in);
    size_t len = buf_unread(&st->in);
    char *nl = memrchr(head + (len - n), '\n', n);
    if (!nl)
        return;
    char *prev = nl > head ? memrchr(head, '\n', (size_t)(nl - head)) : NULL;
    size_t start = prev ? (size_t)(prev - head) + 1 : 0;
    buf_consume(&st->in, start);
    st->have_line = true;
    st->line_len = (size_t)(nl - head) - start;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
    struct stream *st = arg;
    size_t n = size * nmemb;
    if (!st->status) {
        curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &st->status);
        note_answered(st->ds);
    }
    if (st->status != 200) { /* an error's JSON: the start is enough to say why */
        size_t room = ERROR_BODY_MAX - buf_unread(&st->in);
        buf_append(&st->in, data, n < room ? n : room);
        return n;
    }
    if (buf_append(&st->in, data, n) < 0) {
        st->overflow = true;
        return 0; /* aborts the transfer */
    }
    keep_last_line(st, n);
    return n;
}

/* dockerd's message in an error answer, else "". */
static void error_message(const struct stream *st, char *out, size_t size)
{
    json_t *doc = json_loadb(buf_head(&st->in), buf_unread(&st->in), 0, NULL);
    const char *message = json_string_value(json_object_get(doc, "message"));
    snprintf(out, size, "%s", message ? message : "");
    json_decref(doc);
}

static void stream_ended(struct docker_stats *ds, struct stream *st, CURLcode rc)
{
    char message[256];
    if (st->overflow) {
        log_warn("container %.12s: a stats document over %d bytes; its stream is opened again",
                 st->id, DOC_MAX);
    } else if (rc != CURLE_OK && !st->status) {
        note_unreachable(ds, st, rc);
    } else if (st->status != 200) {
        /* 404: the container is gone, its task is stopping; gantry-core notices it */
        error_message(st, message, sizeof message);
        log_debug("GET /containers/%.12s/stats: %ld %s", st->id, st->status, message);
    } else {
        log_debug("container %.12s: stats stream ended (%s)", st->id,
                  rc == CURLE_OK ? "it stopped" : curl_easy_strerror(rc));
    }
    st->retry_at_ms = clock_mono_ms() + st->backoff_ms;
    st->backoff_ms = st->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : st->backoff_ms * 2;
}

/* Streams whose transfer ended (the answer complete, or failed). */
static void collect_ended(struct docker_stats *ds)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(ds->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result; /* m is invalid once the handle is removed */
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        struct stream *st = (struct stream *)priv;
        curl_multi_remove_handle(ds->multi, easy);
        st->active = false;
        stream_ended(ds, st, rc);
    }
}

static void start_stream(struct docker_stats *ds, struct stream *st)
{
    char url[URL_MAX];
    snprintf(url, sizeof url, "http://docker" API_PREFIX "/containers/%s/stats?stream=true",
             st->id);
    CURL *c = st->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, ds->socket_path);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)DOCKER_CONNECT_TIMEOUT_MS);
    /* no overall timeout: the answer never ends while the container runs; a stall ends it */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)STALL_S);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, st->error);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, st);
    curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)st);
    buf_reset(&st->in);
    st->status = 0;
    st->overflow = false;
    st->have_line = false;
    st->error[0] = '\0';
    if (curl_multi_add_handle(ds->multi, c) != CURLM_OK) {
        st->retry_at_ms = clock_mono_ms() + BACKOFF_MAX_MS;
        return;
    }
    st->active = true;
}

/* The latest complete document of the stream, if one came since the last pass. */
static void parse_latest(struct stream *st, int64_t now_ns)
{
    if (!st->have_line)
        return;
    struct docker_frame f;
    enum docker_frame_result rc = docker_frame_parse(buf_head(&st->in), st->line_len, &f);
    buf_consume(&st->in, st->line_len + 1);
    st->have_line = false;
    st->has_frame = rc == DOCKER_FRAME_OK;
    if (rc == DOCKER_FRAME_DAMAGED)
        log_debug("container %.12s: a stats document that does not read", st->id);
    if (rc != DOCKER_FRAME_OK)
        return;
    st->frame = f;
    st->frame_mono_ns = now_ns;
    st->backoff_ms = BACKOFF_MIN_MS;
}

/* --- the streams --- */

static void stream_free(struct docker_stats *ds, struct stream *st)
{
    if (st->active)
        curl_multi_remove_handle(ds->multi, st->curl);
    curl_easy_cleanup(st->curl);
    buf_free(&st->in);
    free(st);
}

/* Where id is, or would be inserted, in the sorted streams. */
static size_t stream_slot(const struct docker_stats *ds, const char *id, bool *found)
{
    size_t lo = 0, hi = ds->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ds->streams[mid]->id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static struct stream *stream_new(struct docker_stats *ds, const char *id)
{
    struct stream *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->curl = curl_easy_init();
    if (!st->curl) {
        free(st);
        return NULL;
    }
    snprintf(st->id, sizeof st->id, "%s", id);
    st->ds = ds;
    st->backoff_ms = BACKOFF_MIN_MS;
    buf_init(&st->in, 2 * (size_t)DOC_MAX); /* a document and the start of the next */
    return st;
}

/* The stream of id, added when there is none; NULL when out of memory or past the cap. */
static struct stream *stream_of(struct docker_stats *ds, const char *id)
{
    bool found;
    size_t at = stream_slot(ds, id, &found);
    if (found)
        return ds->streams[at];
    if (ds->n >= ds->max_streams) {
        if (!ds->over_limit_logged)
            log_warn("more than %zu DOCKER containers: the file descriptor limit leaves no room "
                     "for more stats streams; the tasks of the others get no datapoints",
                     ds->max_streams);
        ds->over_limit_logged = true;
        return NULL;
    }
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 16;
        struct stream **a = realloc(ds->streams, cap * sizeof *a);
        if (!a)
            return NULL;
        ds->streams = a;
        ds->cap = cap;
    }
    struct stream *st = stream_new(ds, id);
    if (!st)
        return NULL;
    memmove(&ds->streams[at + 1], &ds->streams[at], (ds->n - at) * sizeof *ds->streams);
    ds->streams[at] = st;
    ds->n++;
    return st;
}

/* One stream per container, each a connection: the soft descriptor limit, less some for the
 * rest of the daemon, bounds them. */
static size_t streams_allowed(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return 65536;
    return rl.rlim_cur > FD_RESERVE + STREAMS_MIN ? (size_t)rl.rlim_cur - FD_RESERVE : STREAMS_MIN;
}

struct docker_stats *docker_stats_open(const char *socket_path)
{
    struct docker_stats *ds = calloc(1, sizeof *ds);
    if (!ds)
        return NULL;
    /* libcurl counts its initialisations: given back in docker_stats_close */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(ds);
        return NULL;
    }
    ds->multi = curl_multi_init();
    ds->socket_path = strdup(socket_path);
    ds->max_streams = streams_allowed();
    if (!ds->multi || !ds->socket_path) {
        docker_stats_close(ds);
        return NULL;
    }
    return ds;
}

void docker_stats_close(struct docker_stats *ds)
{
    if (!ds)
        return;
    for (size_t i = 0; i < ds->n; i++)
        stream_free(ds, ds->streams[i]);
    free(ds->streams);
    if (ds->multi)
        curl_multi_cleanup(ds->multi);
    free(ds->socket_path);
    free(ds);
    curl_global_cleanup();
}

const char *docker_stats_socket(const struct docker_stats *ds)
{
    return ds->socket_path;
}

size_t docker_stats_streams(const struct docker_stats *ds)
{
    return ds->n;
}

/* Whatever the sockets hold, without waiting; then the transfers that ended. */
static void advance(struct docker_stats *ds)
{
    int running;
    curl_multi_perform(ds->multi, &running);
    collect_ended(ds);
}

void docker_stats_begin(struct docker_stats *ds)
{
    if (!ds->n)
        return;
    advance(ds);
    int64_t now = clock_mono_ns();
    for (size_t i = 0; i < ds->n; i++) {
        ds->streams[i]->wanted = false;
        parse_latest(ds->streams[i], now);
    }
}

bool docker_stats_take(struct docker_stats *ds, const char *id, struct container_sample *out)
{
    struct stream *st = docker_stats_id_valid(id) ? stream_of(ds, id) : NULL;
    if (!st)
        return false;
    st->wanted = true;
    if (!st->active && clock_mono_ms() >= st->retry_at_ms)
        start_stream(ds, st);
    if (!st->has_frame || clock_mono_ns() - st->frame_mono_ns > FRESH_NS) {
        st->has_taken = false; /* a delta over the gap would not be this pass's */
        return false;
    }
    out->now = st->frame;
    out->has_prev = st->has_taken;
    out->prev = st->taken;
    st->taken = st->frame;
    st->has_taken = true;
    return true;
}

void docker_stats_end(struct docker_stats *ds)
{
    size_t kept = 0;
    for (size_t i = 0; i < ds->n; i++) {
        if (ds->streams[i]->wanted)
            ds->streams[kept++] = ds->streams[i];
        else
            stream_free(ds, ds->streams[i]);
    }
    ds->n = kept;
    if (ds->n < ds->max_streams)
        ds->over_limit_logged = false;
    if (ds->n)
        advance(ds); /* the requests of streams opened by this pass go out now */
}
