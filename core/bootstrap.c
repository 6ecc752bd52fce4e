/* The declarative part of the configuration: core.clusters, core.task_definitions and
 * core.services are applied at start and on SIGHUP, idempotently: a task definition is registered
 * only when it differs from its family's latest revision, a service is created when missing and
 * updated otherwise; its declared desiredCount is applied when it changed in the file since it was
 * last applied (the autoscaler owns the count in between). */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "core/bootstrap.h"
#include "core/core.h"

static json_t *parse_item(const struct cfg_json *item)
{
    return json_loads(item->text, 0, NULL);
}

static void error_at(struct cfg_errors *errors, const struct cfg_json *item, const char *path,
                     size_t index, const char *message)
{
    struct cfg_ctx ctx = {.file = item->origin.file, .errors = errors};
    cfg_error_at(&ctx, &item->origin, "'core.%s[%zu]': %s", path, index, message);
}

static void validate_service(const json_t *in, const struct cfg_json *item, size_t i,
                             struct cfg_errors *errors)
{
    const json_t *name = json_object_get(in, "serviceName");
    const json_t *td = json_object_get(in, "taskDefinition");
    const json_t *count = json_object_get(in, "desiredCount");
    const json_t *cluster = json_object_get(in, "cluster");
    if (!json_is_string(name) || !taskdef_valid_name(json_string_value(name)))
        error_at(errors, item, "services", i,
                 "serviceName is required: 1 to 255 letters, digits, '-' and '_'");
    else if (!json_is_string(td))
        error_at(errors, item, "services", i,
                 "taskDefinition is required (a family or family:rev)");
    else if (count && (!json_is_integer(count) || json_integer_value(count) < 0 ||
                       json_integer_value(count) > 1000))
        error_at(errors, item, "services", i, "desiredCount must be an integer from 0 to 1000");
    else if (cluster &&
             (!json_is_string(cluster) || !taskdef_valid_name(json_string_value(cluster))))
        error_at(errors, item, "services", i, "cluster must be a cluster name");
}

int bootstrap_validate(const struct config_core *core, struct cfg_errors *errors)
{
    size_t before = errors->total;
    const struct cfg_json *tds = core->task_definitions.items;
    for (size_t i = 0; i < core->task_definitions.count; i++) {
        json_t *in = parse_item(&tds[i]);
        struct api_error err;
        if (taskdef_validate(in, strlen(tds[i].text), &err) < 0)
            error_at(errors, &tds[i], "task_definitions", i, err.message);
        json_decref(in);
    }
    const struct cfg_json *services = core->services.items;
    for (size_t i = 0; i < core->services.count; i++) {
        json_t *in = parse_item(&services[i]);
        validate_service(in, &services[i], i, errors);
        json_decref(in);
    }
    return errors->total == before ? 0 : -1;
}

static void apply_service(struct core *core, const struct cfg_json *item, size_t i)
{
    json_t *in = parse_item(item);
    const char *cluster = json_string_value(json_object_get(in, "cluster"));
    cluster_ensure(core, cluster ? cluster : "default");
    if (!json_object_get(in, "desiredCount"))
        json_object_set_new(in, "desiredCount", json_integer(1));
    json_int_t declared = json_integer_value(json_object_get(in, "desiredCount"));
    /* The declared count is applied when it changes in the file, not at every start or reload:
     * in between, gantry-autoscaler (or an operator's UpdateService) owns it. */
    const char *name = json_string_value(json_object_get(in, "serviceName"));
    struct core_service *svc = service_find(core, cluster ? cluster : "default", name);
    if (svc && svc->active &&
        json_equal(json_object_get(svc->doc, "_declaredDesiredCount"),
                   json_object_get(in, "desiredCount")))
        json_object_del(in, "desiredCount");
    struct api_error err;
    json_t *out = NULL;
    if (service_apply(core, in, true, &out, &err) < 0)
        log_warn("%s:%d:%d: 'core.services[%zu]' not applied: %s: %s", item->origin.file,
                 item->origin.line, item->origin.col, i, err.type, err.message);
    svc = service_find(core, cluster ? cluster : "default", name);
    if (svc && svc->active) {
        json_object_set_new(svc->doc, "_declaredDesiredCount", json_integer(declared));
        svc->dirty = true;
    }
    json_decref(out);
    json_decref(in);
}

void bootstrap_apply(struct core *core)
{
    const struct config_core *cc = &core->cfg->core;
    const char *const *clusters = cc->clusters.items;
    for (size_t i = 0; i < cc->clusters.count; i++)
        cluster_ensure(core, clusters[i]);
    const struct cfg_json *tds = cc->task_definitions.items;
    for (size_t i = 0; i < cc->task_definitions.count; i++) {
        json_t *in = parse_item(&tds[i]);
        struct api_error err;
        if (!taskdef_register(core, in, strlen(tds[i].text), true, &err))
            log_warn("%s:%d:%d: 'core.task_definitions[%zu]' not registered: %s",
                     tds[i].origin.file, tds[i].origin.line, tds[i].origin.col, i, err.message);
        json_decref(in);
    }
    const struct cfg_json *services = cc->services.items;
    for (size_t i = 0; i < cc->services.count; i++)
        apply_service(core, &services[i], i);
}
