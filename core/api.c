/* The ECS API over HTTP: JSON 1.1 (`POST /`, `X-Amz-Target: AmazonEC2ContainerServiceV20141113.
 * <Action>`), answers in application/x-amz-json-1.1, errors as 400 {"__type", "message"}. Request
 * signatures are not checked: the API listens on loopback (docs/core.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "core/core.h"

#define TARGET_PREFIX "AmazonEC2ContainerServiceV20141113."
#define JSON_TYPE "application/x-amz-json-1.1"

static const struct api_action actions[] = {
    {"CreateCluster", act_create_cluster, true},
    {"DeleteCluster", act_delete_cluster, true},
    {"ListClusters", act_list_clusters, false},
    {"DescribeClusters", act_describe_clusters, false},
    {"ListContainerInstances", act_list_container_instances, false},
    {"DescribeContainerInstances", act_describe_container_instances, false},
    {"RegisterTaskDefinition", act_register_task_definition, true},
    {"DeregisterTaskDefinition", act_deregister_task_definition, true},
    {"DescribeTaskDefinition", act_describe_task_definition, false},
    {"ListTaskDefinitions", act_list_task_definitions, false},
    {"ListTaskDefinitionFamilies", act_list_task_definition_families, false},
    {"CreateService", act_create_service, true},
    {"UpdateService", act_update_service, true},
    {"DeleteService", act_delete_service, true},
    {"ListServices", act_list_services, false},
    {"DescribeServices", act_describe_services, false},
    {"RunTask", act_run_task, true},
    {"StopTask", act_stop_task, true},
    {"ListTasks", act_list_tasks, false},
    {"DescribeTasks", act_describe_tasks, false},
};

static const struct api_action *find_action(struct http1_slice name)
{
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (strlen(actions[i].name) == name.len && memcmp(actions[i].name, name.p, name.len) == 0)
            return &actions[i];
    return NULL;
}

static void respond_json(struct http_response *resp, int status, json_t *doc)
{
    resp->status = status;
    resp->content_type = JSON_TYPE;
    resp->body = json_dumps(doc, JSON_COMPACT);
    resp->body_len = resp->body ? strlen(resp->body) : 0;
}

static void respond_error(struct http_response *resp, const struct api_error *err)
{
    json_t *doc = json_pack("{s:s, s:s}", "__type", err->type, "message", err->message);
    respond_json(resp, err->status, doc);
    json_decref(doc);
}

/* Which action the request names, or -1 with err set. */
static const struct api_action *request_action(const struct http_request *req,
                                               struct api_error *err)
{
    const struct http1_msg *msg = req->msg;
    if (msg->method_id != HTTP1_METHOD_POST || !http1_slice_eq(msg->path, "/")) {
        api_fail(err, "UnknownOperationException",
                 "the ECS API takes POST / with an X-Amz-Target header");
        return NULL;
    }
    const struct http1_header *target = http1_header_find(msg, "X-Amz-Target");
    size_t plen = strlen(TARGET_PREFIX);
    if (!target || target->value.len <= plen || memcmp(target->value.p, TARGET_PREFIX, plen) != 0) {
        api_fail(err, "UnknownOperationException",
                 "missing or unknown X-Amz-Target (expected " TARGET_PREFIX "<Action>)");
        return NULL;
    }
    struct http1_slice name = {target->value.p + plen, target->value.len - plen};
    const struct api_action *action = find_action(name);
    if (!action)
        api_fail(err, "UnknownOperationException", "unknown operation '%.*s'",
                 (int)(name.len > 64 ? 64 : name.len), name.p);
    return action;
}

static json_t *request_json(const struct http_request *req, struct api_error *err)
{
    if (req->body_len == 0)
        return json_object();
    json_error_t jerr;
    json_t *in = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!in) {
        api_fail(err, "SerializationException", "malformed JSON at line %d, column %d: %s",
                 jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(in)) {
        json_decref(in);
        api_fail(err, "SerializationException", "the request body must be a JSON object");
        return NULL;
    }
    return in;
}

static void handle(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct core *core = ctx;
    struct api_error err = {0};
    char request_id[CORE_ID_LEN + 1];
    core_new_id(request_id);
    snprintf(resp->extra_headers, sizeof resp->extra_headers, "x-amzn-RequestId: %s\r\n",
             request_id);
    const struct api_action *action = request_action(req, &err);
    json_t *in = action ? request_json(req, &err) : NULL;
    if (!in) {
        log_debug("api: refused: %s: %s", err.type, err.message);
        respond_error(resp, &err);
        return;
    }
    json_t *out = NULL;
    int rc = action->mutates ? store_check(core, &err) : 0;
    if (rc == 0)
        rc = action->fn(core, in, &out, &err);
    json_decref(in);
    if (rc < 0) {
        json_decref(out);
        log_debug("api: %s: %s: %s", action->name, err.type, err.message);
        respond_error(resp, &err);
        return;
    }
    if (action->mutates) {
        if (store_flush(core) < 0)
            log_warn("state store: %s (the change is kept and written again)", core->redis.error);
        core_kick(core);
    }
    if (!out)
        out = json_object();
    respond_json(resp, 200, out);
    json_decref(out);
}

int api_start(struct core *core, char *why, size_t why_size)
{
    return http_server_start(&core->api, core->loop, &core->cfg->core.listen,
                             (size_t)core->cfg->core.max_request_size, handle, core, why, why_size);
}
