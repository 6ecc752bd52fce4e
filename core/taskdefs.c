/* RegisterTaskDefinition and friends: every registration is a new revision of its family; a
 * deregistered revision turns INACTIVE and stays describable (running tasks keep using it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "core/core.h"
#include "core/params.h"

static json_t *family_revisions(struct core *core, const char *family)
{
    return json_object_get(core->taskdefs, family);
}

static bool is_status(const json_t *td, const char *status)
{
    const char *s = json_string_value(json_object_get(td, "status"));
    return s && strcmp(s, status) == 0;
}

static json_t *latest_active(json_t *revs)
{
    for (size_t i = json_array_size(revs); i > 0; i--)
        if (is_status(json_array_get(revs, i - 1), "ACTIVE"))
            return json_array_get(revs, i - 1);
    return NULL;
}

json_t *taskdef_find(struct core *core, const char *ref, struct api_error *err)
{
    char text[600];
    if (strncmp(ref, "arn:", 4) == 0) {
        if (!core_arn_name(ref, "task-definition", text, sizeof text)) {
            api_fail(err, "InvalidParameterException", "'%.300s' is not a task definition ARN",
                     ref);
            return NULL;
        }
    } else {
        snprintf(text, sizeof text, "%s", ref);
    }
    char *colon = strchr(text, ':');
    long revision = 0;
    if (colon) {
        *colon = '\0';
        char *end;
        revision = strtol(colon + 1, &end, 10);
        if (*end || revision < 1) {
            api_fail(err, "ClientException", "Invalid revision number. Number: %.32s", colon + 1);
            return NULL;
        }
    }
    json_t *revs = family_revisions(core, text);
    json_t *td = NULL;
    if (revs)
        td = revision ? json_array_get(revs, (size_t)revision - 1) : latest_active(revs);
    if (!td || is_status(td, "MISSING")) {
        api_fail(err, "ClientException", "Unable to describe task definition.");
        return NULL;
    }
    return td;
}

/* Whether td was registered from the same input as `built` (the fields that vary between two
 * registrations of the same text are left out). */
static bool same_definition(const json_t *td, const json_t *built)
{
    static const char *const volatile_keys[] = {"taskDefinitionArn", "revision", "registeredAt",
                                                "_dirty", NULL};
    json_t *a = json_deep_copy(td), *b = json_deep_copy(built);
    for (size_t i = 0; volatile_keys[i]; i++) {
        json_object_del(a, volatile_keys[i]);
        json_object_del(b, volatile_keys[i]);
    }
    bool same = json_equal(a, b);
    json_decref(a);
    json_decref(b);
    return same;
}

json_t *taskdef_register(struct core *core, const json_t *in, size_t input_bytes, bool reuse_same,
                         struct api_error *err)
{
    if (taskdef_validate(in, input_bytes, err) < 0)
        return NULL;
    const char *family = json_string_value(json_object_get(in, "family"));
    json_t *revs = family_revisions(core, family);
    if (!revs) {
        revs = json_array();
        json_object_set_new(core->taskdefs, family, revs);
    }
    int revision = (int)json_array_size(revs) + 1;
    char arn[600];
    core_arn(core, arn, sizeof arn, "task-definition/%s:%d", family, revision);
    json_t *td = taskdef_build(in, arn, revision, core_now());
    if (!td) {
        api_fail(err, "ServerException", "out of memory");
        return NULL;
    }
    json_t *latest = latest_active(revs);
    if (reuse_same && latest && same_definition(latest, td)) {
        json_decref(td);
        return latest;
    }
    json_object_set_new(td, "_dirty", json_true());
    json_array_append_new(revs, td);
    log_info("task definition %s:%d registered", family, revision);
    return td;
}

/* What the API returns: the stored definition without our bookkeeping. */
static json_t *public_taskdef(const json_t *td)
{
    json_t *copy = json_deep_copy(td);
    json_object_del(copy, "_dirty");
    return copy;
}

int act_register_task_definition(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    char *text = json_dumps(in, JSON_COMPACT);
    size_t bytes = text ? strlen(text) : 0;
    free(text);
    json_t *td = taskdef_register(core, in, bytes, false, err);
    if (!td)
        return -1;
    json_t *tags = json_object_get(in, "tags");
    *out = json_pack("{s:o, s:o}", "taskDefinition", public_taskdef(td), "tags",
                     json_is_array(tags) ? json_incref(tags) : json_array());
    return 0;
}

int act_deregister_task_definition(struct core *core, json_t *in, json_t **out,
                                   struct api_error *err)
{
    const char *ref;
    if (param_string(in, "taskDefinition", true, &ref, err) < 0)
        return -1;
    const char *name_part = strncmp(ref, "arn:", 4) == 0 ? strrchr(ref, '/') : ref;
    if (!name_part || !strchr(name_part, ':'))
        return api_fail(err, "ClientException",
                        "Invalid revision number. A revision is required: family:revision.");
    json_t *td = taskdef_find(core, ref, err);
    if (!td)
        return -1;
    if (!is_status(td, "INACTIVE")) {
        json_object_set_new(td, "status", json_string("INACTIVE"));
        json_object_set_new(td, "deregisteredAt", json_real(core_now()));
        json_object_set_new(td, "_dirty", json_true());
    }
    *out = json_pack("{s:o}", "taskDefinition", public_taskdef(td));
    return 0;
}

int act_describe_task_definition(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    const char *ref;
    if (param_string(in, "taskDefinition", true, &ref, err) < 0)
        return -1;
    json_t *td = taskdef_find(core, ref, err);
    if (!td)
        return -1;
    *out = json_pack("{s:o, s:[]}", "taskDefinition", public_taskdef(td), "tags");
    return 0;
}

/* Family names, sorted. */
static const char **sorted_families(struct core *core, size_t *n)
{
    *n = 0;
    const char **names = calloc(json_object_size(core->taskdefs) + 1, sizeof *names);
    if (!names)
        return NULL;
    const char *family;
    json_t *revs;
    json_object_foreach(core->taskdefs, family, revs) names[(*n)++] = family;
    sort_strings(names, *n);
    return names;
}

static int status_param(json_t *in, const char *const *allowed, const char **status,
                        struct api_error *err)
{
    if (param_string(in, "status", false, status, err) < 0)
        return -1;
    if (!*status)
        return 0;
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(*status, allowed[i]) == 0)
            return 0;
    return api_fail(err, "InvalidParameterException", "status: '%.64s' is not valid", *status);
}

int act_list_task_definitions(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    static const char *const allowed[] = {"ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS", NULL};
    const char *prefix, *status, *sort;
    if (param_string(in, "familyPrefix", false, &prefix, err) < 0 ||
        status_param(in, allowed, &status, err) < 0 ||
        param_string(in, "sort", false, &sort, err) < 0)
        return -1;
    if (sort && strcmp(sort, "ASC") != 0 && strcmp(sort, "DESC") != 0)
        return api_fail(err, "InvalidParameterException", "sort: expected ASC or DESC");
    bool desc = sort && strcmp(sort, "DESC") == 0;
    size_t n;
    const char **families = sorted_families(core, &n);
    json_t *all = json_array();
    for (size_t k = 0; families && k < n; k++) {
        const char *family = families[desc ? n - 1 - k : k];
        if (prefix && strncmp(family, prefix, strlen(prefix)) != 0)
            continue;
        json_t *revs = family_revisions(core, family);
        size_t count = json_array_size(revs);
        for (size_t j = 0; j < count; j++) {
            json_t *td = json_array_get(revs, desc ? count - 1 - j : j);
            if (is_status(td, status ? status : "ACTIVE"))
                json_array_append(all, json_object_get(td, "taskDefinitionArn"));
        }
    }
    free(families);
    *out = json_object();
    int rc = paginate(in, all, 100, 100, "taskDefinitionArns", *out, err);
    json_decref(all);
    return rc;
}

int act_list_task_definition_families(struct core *core, json_t *in, json_t **out,
                                      struct api_error *err)
{
    static const char *const allowed[] = {"ACTIVE", "INACTIVE", "ALL", NULL};
    const char *prefix, *status;
    if (param_string(in, "familyPrefix", false, &prefix, err) < 0 ||
        status_param(in, allowed, &status, err) < 0)
        return -1;
    if (!status)
        status = "ACTIVE";
    size_t n;
    const char **families = sorted_families(core, &n);
    json_t *all = json_array();
    for (size_t k = 0; families && k < n; k++) {
        if (prefix && strncmp(families[k], prefix, strlen(prefix)) != 0)
            continue;
        bool has_active = latest_active(family_revisions(core, families[k])) != NULL;
        if (strcmp(status, "ALL") == 0 || has_active == (strcmp(status, "ACTIVE") == 0))
            json_array_append_new(all, json_string(families[k]));
    }
    free(families);
    *out = json_object();
    int rc = paginate(in, all, 100, 100, "families", *out, err);
    json_decref(all);
    return rc;
}
