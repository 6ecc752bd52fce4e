#include "autoscaler/ecs_client.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

enum {
    MAX_ANSWER = 4 * 1024 * 1024, /* a DescribeServices of one service is a few KiB */
    ATTEMPTS = 4,
    FIRST_BACKOFF_MS = 100,
    CALL_BUDGET_MS = 2500, /* a call and its retries: the daemon's loop waits for them */
    MIN_ATTEMPT_MS = 200,
};

struct answer {
    char *data;
    size_t len;
    bool too_large;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct answer *a = userdata;
    size_t n = size * nmemb;
    if (a->len + n > MAX_ANSWER) {
        a->too_large = true;
        return 0;
    }
    char *grown = realloc(a->data, a->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + a->len, ptr, n);
    a->data = grown;
    a->len += n;
    a->data[a->len] = '\0';
    return n;
}

int ecs_client_init(struct ecs_client *c, const char *endpoint, const char *region, bool sigv4)
{
    memset(c, 0, sizeof *c);
    snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint);
    snprintf(c->region, sizeof c->region, "%s", region);
    c->sigv4 = sigv4;
    c->curl = curl_easy_init();
    return c->curl ? 0 : -1;
}

void ecs_client_free(struct ecs_client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    c->curl = NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int set_signing(struct ecs_client *c, struct curl_slist **headers)
{
    const char *key = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    const char *token = getenv("AWS_SESSION_TOKEN");
    if (!key || !secret || !*key || !*secret) {
        snprintf(c->error, sizeof c->error,
                 "sigv4: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
        return -1;
    }
    char provider[128], userpwd[512];
    snprintf(provider, sizeof provider, "aws:amz:%s:ecs", c->region);
    snprintf(userpwd, sizeof userpwd, "%s:%s", key, secret);
    curl_easy_setopt(c->curl, CURLOPT_AWS_SIGV4, provider);
    curl_easy_setopt(c->curl, CURLOPT_USERPWD, userpwd);
    if (token && *token) {
        char header[2048];
        snprintf(header, sizeof header, "X-Amz-Security-Token: %s", token);
        *headers = curl_slist_append(*headers, header);
    }
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One attempt within timeout_ms: the HTTP status (0: no answer; *timed_out when the time ran
 * out) and the body in *a. */
static long attempt(struct ecs_client *c, const char *action, const char *body, long timeout_ms,
                    bool *timed_out, struct answer *a)
{
    CURL *curl = c->curl;
    curl_easy_reset(curl);
    struct curl_slist *headers = NULL;
    char target[160];
    snprintf(target, sizeof target, "X-Amz-Target: AmazonEC2ContainerServiceV20141113.%s", action);
    headers = curl_slist_append(headers, target);
    headers = curl_slist_append(headers, "Content-Type: application/x-amz-json-1.1");
    headers = curl_slist_append(headers, "Expect:");
    if (c->sigv4 && set_signing(c, &headers) < 0) {
        curl_slist_free_all(headers);
        return 0;
    }
    curl_easy_setopt(curl, CURLOPT_URL, c->endpoint);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 1000 ? timeout_ms : 1000L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "gantry-autoscaler");
    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    long status = 0;
    *timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    if (rc != CURLE_OK) {
        snprintf(c->error, sizeof c->error, "%s %.400s: %s", action, c->endpoint,
                 a->too_large ? "answer too large" : curl_easy_strerror(rc));
        return 0;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

/* ECS's error type: "__type" ("ServerException", or a shape id ending in "#ServerException"). */
static const char *error_type(const json_t *doc)
{
    const char *type = json_string_value(json_object_get(doc, "__type"));
    if (!type)
        return "UnknownError";
    const char *hash = strrchr(type, '#');
    return hash ? hash + 1 : type;
}

static bool retryable(long status, const char *type)
{
    return status == 0 || status >= 500 || strcmp(type, "ServerException") == 0 ||
           strcmp(type, "ThrottlingException") == 0;
}

/* Calls action with body; the parsed answer (a new reference) or NULL with c->error. */
static json_t *call(struct ecs_client *c, const char *action, json_t *request)
{
    char *body = json_dumps(request, JSON_COMPACT);
    if (!body) {
        snprintf(c->error, sizeof c->error, "%s: out of memory", action);
        return NULL;
    }
    json_t *result = NULL;
    long backoff = FIRST_BACKOFF_MS;
    int64_t deadline = mono_ms() + CALL_BUDGET_MS;
    for (int i = 0; i < ATTEMPTS; i++) {
        if (i)
            sleep_ms(backoff), backoff *= 2;
        int64_t left = deadline - mono_ms();
        if (left < MIN_ATTEMPT_MS)
            break; /* the next period tries again */
        struct answer a = {0};
        bool timed_out = false;
        long status = attempt(c, action, body, (long)left, &timed_out, &a);
        json_t *doc = a.data ? json_loads(a.data, 0, NULL) : NULL;
        free(a.data);
        if (status == 200 && doc) {
            result = doc;
            break;
        }
        const char *type = status ? error_type(doc) : "";
        if (status) {
            const char *message = json_string_value(json_object_get(doc, "message"));
            if (!message)
                message = json_string_value(json_object_get(doc, "Message"));
            snprintf(c->error, sizeof c->error, "%s: %s: %s (HTTP %ld)", action, type,
                     message ? message : "(no message)", status);
        }
        bool again = retryable(status, type) && !timed_out; /* a hung API gets no second wait */
        json_decref(doc);
        if (!again)
            break;
    }
    free(body);
    return result;
}

int ecs_describe_service(struct ecs_client *c, const char *cluster, const char *service,
                         struct ecs_service_state *out)
{
    json_t *request = json_pack("{s:s, s:[s]}", "cluster", cluster, "services", service);
    json_t *doc = request ? call(c, "DescribeServices", request) : NULL;
    json_decref(request);
    if (!doc)
        return -1;
    json_t *svc = json_array_get(json_object_get(doc, "services"), 0);
    if (!json_is_object(svc)) {
        snprintf(c->error, sizeof c->error, "DescribeServices: service %s/%s: MISSING", cluster,
                 service);
        json_decref(doc);
        return -1;
    }
    json_t *desired = json_object_get(svc, "desiredCount");
    if (!json_is_integer(desired) || json_integer_value(desired) < 0 ||
        json_integer_value(desired) > 100000) {
        snprintf(c->error, sizeof c->error,
                 "DescribeServices: service %s/%s: no usable desiredCount in the answer", cluster,
                 service);
        json_decref(doc);
        return -1;
    }
    out->desired = (int)json_integer_value(desired);
    out->running = (int)json_integer_value(json_object_get(svc, "runningCount"));
    out->pending = (int)json_integer_value(json_object_get(svc, "pendingCount"));
    const char *status = json_string_value(json_object_get(svc, "status"));
    out->active = status && strcmp(status, "ACTIVE") == 0;
    json_t *deployments = json_object_get(svc, "deployments");
    const char *rollout =
        json_string_value(json_object_get(json_array_get(deployments, 0), "rolloutState"));
    out->deployment_in_progress =
        json_array_size(deployments) > 1 || (rollout && strcmp(rollout, "IN_PROGRESS") == 0);
    json_decref(doc);
    return 0;
}

int ecs_update_desired(struct ecs_client *c, const char *cluster, const char *service, int desired)
{
    json_t *request = json_pack("{s:s, s:s, s:i}", "cluster", cluster, "service", service,
                                "desiredCount", desired);
    json_t *doc = request ? call(c, "UpdateService", request) : NULL;
    json_decref(request);
    if (!doc)
        return -1;
    json_decref(doc);
    return 0;
}
