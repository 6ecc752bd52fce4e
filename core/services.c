/* Services: CreateService / UpdateService / DeleteService / ListServices / DescribeServices, the
 * service document and its events. Keeping the tasks at desiredCount is the scheduler's. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "core/core.h"
#include "core/deploy.h"
#include "core/params.h"

enum { MAX_LOAD_BALANCERS = CORE_MAX_TARGETS };

struct core_service *service_find(struct core *core, const char *cluster, const char *name_or_arn)
{
    char name[CORE_NAME_MAX];
    if (!core_arn_name(name_or_arn, "service", name, sizeof name))
        return NULL;
    for (struct core_service *s = core->services; s; s = s->next)
        if (strcmp(s->cluster, cluster) == 0 && strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

void service_free(struct core_service *svc)
{
    json_decref(svc->doc);
    json_decref(svc->events);
    json_decref(svc->td);
    free(svc);
}

static const char *service_status(const struct core_service *s)
{
    return s->active ? "ACTIVE" : s->inactive_at_ms ? "INACTIVE" : "DRAINING";
}

void service_event(struct core *core, struct core_service *svc, const char *fmt, ...)
{
    char body[1024], message[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(message, sizeof message, "(service %s) %s", svc->name, body);
    json_t *newest = json_array_get(svc->events, 0);
    if (newest && strcmp(jstr(newest, "message"), message) == 0)
        return; /* ECS does not repeat itself either */
    char id[CORE_ID_LEN + 1];
    core_new_id(id);
    /* ECS's event ids are UUIDs */
    char uuid[40];
    snprintf(uuid, sizeof uuid, "%.8s-%.4s-%.4s-%.4s-%.12s", id, id + 8, id + 12, id + 16, id + 20);
    json_t *event =
        json_pack("{s:s, s:f, s:s}", "id", uuid, "createdAt", core_now(), "message", message);
    json_array_insert(svc->events, 0, event);
    while (json_array_size(svc->events) > CORE_MAX_EVENTS)
        json_array_remove(svc->events, CORE_MAX_EVENTS);
    char *text = json_dumps(event, JSON_COMPACT);
    /* while Redis is down they wait here; the oldest go first past a bound */
    while (json_array_size(core->pending_events) >= CORE_MAX_PENDING_EVENTS)
        json_array_remove(core->pending_events, 0);
    if (text) {
        json_array_append_new(core->pending_events, json_pack("[s+++, s]", "gantry:ecs:events:",
                                                              svc->cluster, ":", svc->name, text));
        free(text);
    }
    json_decref(event);
    log_info("%s", message);
}

static void deployment_counts(struct core *core, struct core_service *svc, int *running,
                              int *pending)
{
    scheduler_counts(core, svc->cluster, svc->name, running, pending);
}

json_t *service_describe(struct core *core, struct core_service *svc)
{
    json_t *out = json_deep_copy(svc->doc);
    json_object_del(out, "_declaredDesiredCount"); /* bootstrap.c's: not ECS's */
    int running = 0, pending = 0;
    deployment_counts(core, svc, &running, &pending);
    json_object_set_new(out, "status", json_string(service_status(svc)));
    json_object_set_new(out, "runningCount", json_integer(running));
    json_object_set_new(out, "pendingCount", json_integer(pending));
    deploy_describe(core, svc, out);
    if (!svc->active)
        json_object_set_new(out, "deployments", json_array());
    json_object_set(out, "events", svc->events);
    return out;
}

int service_lb_group(const char *ref, char *out, size_t size)
{
    const char *p = ref;
    if (strncmp(ref, "arn:", 4) == 0) {
        p = strstr(ref, ":targetgroup/");
        if (!p)
            return -1;
        p += strlen(":targetgroup/");
    }
    const char *end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == 0 || len >= size)
        return -1;
    memcpy(out, p, len);
    out[len] = '\0';
    return 0;
}

static bool container_has_port(const json_t *td, const char *container, int64_t port)
{
    size_t i, j;
    json_t *def, *pm;
    json_array_foreach(json_object_get(td, "containerDefinitions"), i, def)
    {
        if (strcmp(jstr(def, "name"), container) != 0)
            continue;
        json_array_foreach(json_object_get(def, "portMappings"), j, pm)
        {
            if (json_integer_value(json_object_get(pm, "containerPort")) == port)
                return true;
        }
    }
    return false;
}

/* A new task definition must still have the ports the service's load balancers send to. */
static bool lb_ports_missing(const struct core_service *svc, const json_t *td,
                             struct api_error *err)
{
    size_t i;
    json_t *lb;
    json_array_foreach(json_object_get(svc->doc, "loadBalancers"), i, lb)
    {
        const char *container = jstr(lb, "containerName");
        json_int_t port = json_integer_value(json_object_get(lb, "containerPort"));
        if (!container_has_port(td, container, port)) {
            api_fail(err, "InvalidParameterException",
                     "The container %.255s did not have a container port %lld defined.", container,
                     (long long)port);
            return true;
        }
    }
    return false;
}

/* Checks loadBalancers against the task definition; returns the normalised list. */
static json_t *load_balancers_param(json_t *in, const json_t *td, struct api_error *err)
{
    json_t *list = json_object_get(in, "loadBalancers");
    if (!list || json_is_null(list))
        return json_array();
    if (!json_is_array(list)) {
        api_fail(err, "SerializationException", "'loadBalancers' must be a list");
        return NULL;
    }
    if (json_array_size(list) > MAX_LOAD_BALANCERS) {
        api_fail(err, "InvalidParameterException",
                 "loadBalancers: a service takes at most %d target groups", MAX_LOAD_BALANCERS);
        return NULL;
    }
    size_t i;
    json_t *lb;
    json_array_foreach(list, i, lb)
    {
        const char *tg, *container, *lb_name;
        int64_t port = 0;
        char group[CORE_NAME_MAX];
        if (!json_is_object(lb)) {
            api_fail(err, "SerializationException", "'loadBalancers[%zu]' must be an object", i);
            return NULL;
        }
        if (param_string(lb, "targetGroupArn", false, &tg, err) < 0 ||
            param_string(lb, "loadBalancerName", false, &lb_name, err) < 0 ||
            param_string(lb, "containerName", false, &container, err) < 0 ||
            param_int(lb, "containerPort", false, 1, 65535, &port, err) < 0)
            return NULL;
        if (lb_name && !tg) {
            api_fail(err, "InvalidParameterException",
                     "loadBalancers[%zu]: Classic Load Balancers are not supported; name a "
                     "targetGroupArn",
                     i);
            return NULL;
        }
        if (!tg || strlen(tg) > 500 || service_lb_group(tg, group, sizeof group) < 0) {
            api_fail(err, "InvalidParameterException",
                     "loadBalancers[%zu].targetGroupArn: expected a target group ARN or the "
                     "name of a gantry-lb target group",
                     i);
            return NULL;
        }
        if (!container || !port) {
            api_fail(err, "InvalidParameterException",
                     "loadBalancers[%zu]: containerName and containerPort are required", i);
            return NULL;
        }
        if (!container_has_port(td, container, port)) {
            api_fail(err, "InvalidParameterException",
                     "The container %.255s did not have a container port %lld defined.", container,
                     (long long)port);
            return NULL;
        }
    }
    return json_deep_copy(list);
}

static json_t *deployment_config_param(json_t *in, const json_t *current, struct api_error *err)
{
    json_t *dc = json_object_get(in, "deploymentConfiguration");
    json_t *out =
        current ? json_deep_copy(current)
                : json_pack("{s:{s:b, s:b}, s:i, s:i}", "deploymentCircuitBreaker", "enable", 0,
                            "rollback", 0, "maximumPercent", 200, "minimumHealthyPercent", 100);
    if (!dc || json_is_null(dc))
        return out;
    int64_t max = json_integer_value(json_object_get(out, "maximumPercent"));
    int64_t min = json_integer_value(json_object_get(out, "minimumHealthyPercent"));
    if (!json_is_object(dc) || param_int(dc, "maximumPercent", false, 100, 10000, &max, err) < 0 ||
        param_int(dc, "minimumHealthyPercent", false, 0, 100, &min, err) < 0) {
        if (!json_is_object(dc))
            api_fail(err, "SerializationException", "'deploymentConfiguration' must be an object");
        json_decref(out);
        return NULL;
    }
    json_object_set_new(out, "maximumPercent", json_integer(max));
    json_object_set_new(out, "minimumHealthyPercent", json_integer(min));
    json_t *cb = json_object_get(dc, "deploymentCircuitBreaker");
    if (json_is_object(cb))
        json_object_set_new(out, "deploymentCircuitBreaker",
                            json_pack("{s:b, s:b}", "enable",
                                      json_is_true(json_object_get(cb, "enable")), "rollback",
                                      json_is_true(json_object_get(cb, "rollback"))));
    return out;
}

static struct core_service *service_new(struct core *core, const char *cluster, const char *name)
{
    struct core_service *svc = calloc(1, sizeof *svc);
    if (!svc)
        return NULL;
    snprintf(svc->cluster, sizeof svc->cluster, "%s", cluster);
    snprintf(svc->name, sizeof svc->name, "%s", name);
    svc->events = json_array();
    svc->next = core->services;
    core->services = svc;
    return svc;
}

/* Drops an INACTIVE service of that name, so CreateService can reuse the name as ECS allows. The
 * new service takes its place in Redis (same hash field); only the old events go. */
static void forget_inactive(struct core *core, const char *cluster, const char *name)
{
    for (struct core_service **p = &core->services; *p; p = &(*p)->next) {
        struct core_service *s = *p;
        if (!s->inactive_at_ms || strcmp(s->cluster, cluster) != 0 || strcmp(s->name, name) != 0)
            continue;
        *p = s->next;
        json_array_append_new(core->pending_deletes,
                              json_pack("[s+++]", "gantry:ecs:events:", cluster, ":", name));
        service_free(s);
        return;
    }
}

static int create_service(struct core *core, json_t *in, const char *cluster, const char *name,
                          json_t *td, json_t **out, struct api_error *err)
{
    int64_t desired = 0, grace = 0;
    const char *launch_type, *strategy;
    if (param_int(in, "desiredCount", false, 0, 1000, &desired, err) < 0 ||
        param_int(in, "healthCheckGracePeriodSeconds", false, 0, 2147483647, &grace, err) < 0 ||
        param_string(in, "schedulingStrategy", false, &strategy, err) < 0 ||
        launch_type_param(in, td, &launch_type, err) < 0)
        return -1;
    if (strategy && strcmp(strategy, "REPLICA") != 0)
        return api_fail(err, "InvalidParameterException",
                        "schedulingStrategy: only REPLICA is supported");
    json_t *lbs = load_balancers_param(in, td, err);
    if (!lbs)
        return -1;
    json_t *dc = deployment_config_param(in, NULL, err);
    if (!dc) {
        json_decref(lbs);
        return -1;
    }
    forget_inactive(core, cluster, name);
    struct core_service *svc = service_new(core, cluster, name);
    if (!svc) {
        json_decref(lbs);
        json_decref(dc);
        return api_fail(err, "ServerException", "out of memory");
    }
    char arn[600], cluster_arn[600];
    core_arn(core, arn, sizeof arn, "service/%s/%s", cluster, name);
    core_arn(core, cluster_arn, sizeof cluster_arn, "cluster/%s", cluster);
    svc->doc =
        json_pack("{s:s, s:s, s:s, s:o, s:[], s:s, s:I, s:s, s:O, s:o, s:o, s:f, s:[], "
                  "s:[], s:s, s:b, s:s, s:b, s:{s:s}}",
                  "serviceArn", arn, "serviceName", name, "clusterArn", cluster_arn,
                  "loadBalancers", lbs, "serviceRegistries", "status", "ACTIVE", "desiredCount",
                  (json_int_t)desired, "launchType", launch_type, "taskDefinition",
                  json_object_get(td, "taskDefinitionArn"), "deploymentConfiguration", dc,
                  "deployments", json_pack("[o]", deploy_new_doc(td, desired, launch_type)),
                  "createdAt", core_now(), "placementConstraints", "placementStrategy",
                  "schedulingStrategy", "REPLICA", "enableECSManagedTags", 0, "propagateTags",
                  "NONE", "enableExecuteCommand", 0, "deploymentController", "type", "ECS");
    if (json_array_size(lbs) || grace)
        json_object_set_new(svc->doc, "healthCheckGracePeriodSeconds", json_integer(grace));
    svc->td = json_incref(td);
    svc->active = true;
    svc->dirty = true;
    log_info("service %s/%s created: %lld tasks of %s", cluster, name, (long long)desired,
             jstr(td, "taskDefinitionArn"));
    *out = service_describe(core, svc);
    return 0;
}

static int update_service(struct core *core, struct core_service *svc, json_t *in, json_t *td,
                          json_t **out, struct api_error *err)
{
    if (!svc->active)
        return api_fail(err, "ServiceNotActiveException", "Service was not ACTIVE.");
    int64_t desired = json_integer_value(json_object_get(svc->doc, "desiredCount"));
    bool force = false;
    if (param_int(in, "desiredCount", false, 0, 1000, &desired, err) < 0 ||
        param_bool(in, "forceNewDeployment", &force, err) < 0)
        return -1;
    bool new_td = td && !json_equal(json_object_get(td, "taskDefinitionArn"),
                                    json_object_get(svc->doc, "taskDefinition"));
    if (new_td && strcmp(jstr(td, "status"), "ACTIVE") != 0)
        return api_fail(err, "ClientException", "TaskDefinition is inactive");
    if (new_td && lb_ports_missing(svc, td, err))
        return -1;
    json_t *dc =
        deployment_config_param(in, json_object_get(svc->doc, "deploymentConfiguration"), err);
    if (!dc)
        return -1;
    int64_t grace = json_integer_value(json_object_get(svc->doc, "healthCheckGracePeriodSeconds"));
    if (param_int(in, "healthCheckGracePeriodSeconds", false, 0, 2147483647, &grace, err) < 0) {
        json_decref(dc);
        return -1;
    }
    json_object_set_new(svc->doc, "deploymentConfiguration", dc);
    if (json_object_get(in, "healthCheckGracePeriodSeconds"))
        json_object_set_new(svc->doc, "healthCheckGracePeriodSeconds", json_integer(grace));
    int64_t before = json_integer_value(json_object_get(svc->doc, "desiredCount"));
    if (desired != before) {
        json_object_set_new(svc->doc, "desiredCount", json_integer(desired));
        json_t *primary = json_array_get(json_object_get(svc->doc, "deployments"), 0);
        json_object_set_new(primary, "desiredCount", json_integer(desired));
        json_object_set_new(primary, "updatedAt", json_real(core_now()));
        svc->steady = false;
        log_info("service %s/%s: desiredCount %lld -> %lld", svc->cluster, svc->name,
                 (long long)before, (long long)desired);
    }
    if (new_td || force)
        deploy_start(core, svc, new_td ? td : svc->td);
    svc->dirty = true;
    *out = service_describe(core, svc);
    return 0;
}

int service_apply(struct core *core, const json_t *in_const, bool update_if_exists, json_t **out,
                  struct api_error *err)
{
    json_t *in = (json_t *)in_const;
    const char *cluster_ref, *name, *td_ref;
    char cluster[CORE_NAME_MAX];
    if (param_string(in, "cluster", false, &cluster_ref, err) < 0 ||
        param_string(in, "serviceName", true, &name, err) < 0 ||
        param_string(in, "taskDefinition", true, &td_ref, err) < 0)
        return -1;
    if (!taskdef_valid_name(name))
        return api_fail(err, "InvalidParameterException",
                        "serviceName: up to 255 letters (uppercase and lowercase), numbers, "
                        "underscores, and hyphens are allowed");
    if (!cluster_find(core, cluster_ref, cluster, err))
        return -1;
    json_t *td = taskdef_find(core, td_ref, err);
    if (!td)
        return -1;
    if (strcmp(jstr(td, "status"), "ACTIVE") != 0)
        return api_fail(err, "ClientException", "TaskDefinition is inactive");
    struct core_service *svc = service_find(core, cluster, name);
    if (svc && !svc->inactive_at_ms) {
        if (!update_if_exists)
            return api_fail(err, "InvalidParameterException",
                            "Creation of service was not idempotent.");
        return update_service(core, svc, in, td, out, err);
    }
    return create_service(core, in, cluster, name, td, out, err);
}

void service_load(struct core *core, const char *cluster, const char *name, json_t *doc,
                  json_t *events)
{
    struct api_error err;
    const char *td_arn = json_string_value(json_object_get(doc, "taskDefinition"));
    json_t *td = td_arn ? taskdef_find(core, td_arn, &err) : NULL;
    if (!td) {
        log_warn("state store: service %s/%s names an unknown task definition; ignored", cluster,
                 name);
        json_decref(events);
        return;
    }
    struct core_service *svc = service_new(core, cluster, name);
    if (!svc) {
        json_decref(events);
        return;
    }
    json_decref(svc->events);
    svc->events = events;
    svc->doc = json_deep_copy(doc);
    svc->td = json_incref(td);
    const char *status = json_string_value(json_object_get(doc, "status"));
    svc->active = status && strcmp(status, "ACTIVE") == 0;
    if (status && strcmp(status, "INACTIVE") == 0)
        svc->inactive_at_ms = (int64_t)(core_now() * 1000); /* retention starts again */
}

/* --- actions --- */

int act_create_service(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    json_t *svc;
    if (service_apply(core, in, false, &svc, err) < 0)
        return -1;
    *out = json_pack("{s:o}", "service", svc);
    return 0;
}

static struct core_service *service_param(struct core *core, json_t *in, const char *key,
                                          struct api_error *err)
{
    const char *cluster_ref, *ref;
    char cluster[CORE_NAME_MAX];
    if (param_string(in, "cluster", false, &cluster_ref, err) < 0 ||
        param_string(in, key, true, &ref, err) < 0)
        return NULL;
    if (!cluster_find(core, cluster_ref, cluster, err))
        return NULL;
    struct core_service *svc = service_find(core, cluster, ref);
    if (!svc)
        api_fail(err, "ServiceNotFoundException", "Service not found.");
    return svc;
}

int act_update_service(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    struct core_service *svc = service_param(core, in, "service", err);
    if (!svc)
        return -1;
    const char *td_ref;
    if (param_string(in, "taskDefinition", false, &td_ref, err) < 0)
        return -1;
    json_t *td = td_ref ? taskdef_find(core, td_ref, err) : NULL;
    if (td_ref && !td)
        return -1;
    json_t *doc;
    if (update_service(core, svc, in, td, &doc, err) < 0)
        return -1;
    *out = json_pack("{s:o}", "service", doc);
    return 0;
}

int act_delete_service(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    struct core_service *svc = service_param(core, in, "service", err);
    if (!svc)
        return -1;
    bool force = false;
    if (param_bool(in, "force", &force, err) < 0)
        return -1;
    if (svc->active) {
        int64_t desired = json_integer_value(json_object_get(svc->doc, "desiredCount"));
        if (desired > 0 && !force)
            return api_fail(err, "InvalidParameterException",
                            "The service cannot be stopped while it is scaled above 0.");
        svc->active = false;
        json_object_set_new(svc->doc, "desiredCount", json_integer(0));
        json_object_set_new(svc->doc, "status", json_string("DRAINING"));
        svc->dirty = true;
        log_info("service %s/%s deleted: its tasks stop", svc->cluster, svc->name);
    }
    *out = json_pack("{s:o}", "service", service_describe(core, svc));
    return 0;
}

int act_list_services(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    const char *cluster_ref, *lt, *strategy;
    char cluster[CORE_NAME_MAX];
    if (param_string(in, "cluster", false, &cluster_ref, err) < 0 ||
        param_string(in, "launchType", false, &lt, err) < 0 ||
        param_string(in, "schedulingStrategy", false, &strategy, err) < 0)
        return -1;
    if (!cluster_find(core, cluster_ref, cluster, err))
        return -1;
    size_t n = 0;
    for (struct core_service *s = core->services; s; s = s->next)
        n++;
    const char **arns = calloc(n + 1, sizeof *arns);
    size_t k = 0;
    for (struct core_service *s = core->services; arns && s; s = s->next) {
        if (strcmp(s->cluster, cluster) != 0 || s->inactive_at_ms)
            continue;
        if (lt && strcmp(jstr(s->doc, "launchType"), lt) != 0)
            continue;
        if (strategy && strcmp(strategy, "REPLICA") != 0)
            continue;
        arns[k++] = jstr(s->doc, "serviceArn");
    }
    json_t *all = arns ? sorted_strings(arns, k) : json_array();
    free(arns);
    *out = json_object();
    int rc = paginate(in, all, 10, 100, "serviceArns", *out, err);
    json_decref(all);
    return rc;
}

int act_describe_services(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    const char *cluster_ref;
    json_t *refs;
    char cluster[CORE_NAME_MAX];
    if (param_string(in, "cluster", false, &cluster_ref, err) < 0 ||
        param_strings(in, "services", true, 10, &refs, err) < 0)
        return -1;
    if (json_array_size(refs) == 0)
        return api_fail(err, "InvalidParameterException", "Services cannot be empty.");
    if (!cluster_find(core, cluster_ref, cluster, err))
        return -1;
    json_t *services = json_array(), *failures = json_array();
    *out = json_pack("{s:o, s:o}", "services", services, "failures", failures);
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        struct core_service *svc = service_find(core, cluster, json_string_value(ref));
        if (svc) {
            json_array_append_new(services, service_describe(core, svc));
            continue;
        }
        char arn[700];
        const char *text = json_string_value(ref);
        if (strncmp(text, "arn:", 4) == 0)
            snprintf(arn, sizeof arn, "%s", text);
        else
            core_arn(core, arn, sizeof arn, "service/%s/%s", cluster, text);
        json_array_append_new(failures, json_pack("{s:s, s:s}", "arn", arn, "reason", "MISSING"));
    }
    return 0;
}
