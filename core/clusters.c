/* Clusters and their container instance. The machine gantry-core runs on registers as one
 * container instance of every cluster, offering its CPU (1024 units per core) and memory; the
 * reservation is shared: a task placed in any cluster uses this machine's resources. */
#include <stdio.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "common/log.h"
#include "core/core.h"
#include "core/params.h"

static json_t *cluster_new(struct core *core, const char *name)
{
    char arn[512];
    core_arn(core, arn, sizeof arn, "cluster/%s", name);
    return json_pack("{s:s, s:s, s:s, s:[], s:[], s:[{s:s, s:s}], s:[], s:[]}", "clusterArn", arn,
                     "clusterName", name, "status", "ACTIVE", "tags", "statistics", "settings",
                     "name", "containerInsights", "value", "disabled", "capacityProviders",
                     "defaultCapacityProviderStrategy");
}

static json_t *instance_new(struct core *core, const char *cluster)
{
    char id[CORE_ID_LEN + 1], arn[512];
    core_new_id(id);
    core_arn(core, arn, sizeof arn, "container-instance/%s/%s", cluster, id);
    char hostname[256] = "localhost";
    gethostname(hostname, sizeof hostname - 1);
    return json_pack("{s:s, s:s, s:s, s:b, s:f, s:{s:s, s:s}, s:[{s:s, s:s}], s:s}",
                     "containerInstanceArn", arn, "status", "ACTIVE", "ec2InstanceId", hostname,
                     "agentConnected", 1, "registeredAt", core_now(), "versionInfo", "agentVersion",
                     "gantry-core", "agentHash", "", "attributes", "name",
                     "ecs.capability.gantry-process", "value", "", "capacityProviderName", "");
}

json_t *cluster_ensure(struct core *core, const char *name)
{
    json_t *doc = json_object_get(core->clusters, name);
    if (!doc) {
        doc = cluster_new(core, name);
        json_object_set_new(core->clusters, name, doc);
        core->dirty_clusters = true;
        log_info("cluster %s created", name);
    } else if (strcmp(jstr(doc, "status"), "ACTIVE") != 0) {
        json_object_set_new(doc, "status", json_string("ACTIVE"));
        core->dirty_clusters = true;
    }
    json_t *inst = json_object_get(core->instances, name);
    if (!inst) {
        json_object_set_new(core->instances, name, instance_new(core, name));
        core->dirty_clusters = true;
    } else if (strcmp(jstr(inst, "status"), "ACTIVE") != 0) {
        json_object_set_new(inst, "status", json_string("ACTIVE"));
        core->dirty_clusters = true;
    }
    return doc;
}

/* The cluster name a `cluster` member names (a name or a cluster ARN); -1 with ECS's
 * InvalidParameterException when it can be neither. */
static int cluster_ref_name(const char *ref, const char *what, char *name, struct api_error *err)
{
    if (!core_arn_name(ref, "cluster", name, CORE_NAME_MAX) || !taskdef_valid_name(name))
        return api_fail(err, "InvalidParameterException",
                        "%s must match ^[a-zA-Z0-9\\-_]{1,255}$, but was %.300s", what, ref);
    return 0;
}

json_t *cluster_find(struct core *core, const char *name_or_arn, char *name_out,
                     struct api_error *err)
{
    char name[CORE_NAME_MAX];
    if (!name_or_arn)
        name_or_arn = "default";
    if (cluster_ref_name(name_or_arn, "Cluster", name, err) < 0)
        return NULL;
    json_t *doc = json_object_get(core->clusters, name);
    if (!doc || strcmp(jstr(doc, "status"), "ACTIVE") != 0) {
        api_fail(err, "ClusterNotFoundException", "Cluster not found.");
        return NULL;
    }
    if (name_out)
        snprintf(name_out, CORE_NAME_MAX, "%s", name);
    return doc;
}

static int cluster_name_param(json_t *in, const char *key, char *name, struct api_error *err)
{
    const char *text;
    if (param_string(in, key, false, &text, err) < 0)
        return -1;
    return cluster_ref_name(text ? text : "default", key, name, err);
}

/* The cluster as Describe* shows it: stored fields plus the live counts. */
static json_t *cluster_describe(struct core *core, const char *name, json_t *doc)
{
    json_t *out = json_deep_copy(doc);
    int running = 0, pending = 0, services = 0;
    scheduler_counts(core, name, NULL, &running, &pending);
    for (struct core_service *s = core->services; s; s = s->next)
        services += strcmp(s->cluster, name) == 0 && s->active;
    bool active = strcmp(jstr(doc, "status"), "ACTIVE") == 0;
    json_object_set_new(out, "registeredContainerInstancesCount", json_integer(active));
    json_object_set_new(out, "runningTasksCount", json_integer(running));
    json_object_set_new(out, "pendingTasksCount", json_integer(pending));
    json_object_set_new(out, "activeServicesCount", json_integer(services));
    return out;
}

int act_create_cluster(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    char name[CORE_NAME_MAX];
    if (cluster_name_param(in, "clusterName", name, err) < 0)
        return -1;
    json_t *doc = cluster_ensure(core, name);
    *out = json_pack("{s:o}", "cluster", cluster_describe(core, name, doc));
    return 0;
}

int act_delete_cluster(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    const char *ref;
    char name[CORE_NAME_MAX];
    if (param_string(in, "cluster", true, &ref, err) < 0)
        return -1;
    json_t *doc = cluster_find(core, ref, name, err);
    if (!doc)
        return -1;
    for (struct core_service *s = core->services; s; s = s->next)
        if (strcmp(s->cluster, name) == 0 && s->inactive_at_ms == 0)
            return api_fail(err, "ClusterContainsServicesException",
                            "The Cluster cannot be deleted while Services are active.");
    for (struct core_task *t = core->tasks; t; t = t->next)
        if (strcmp(t->cluster, name) == 0 && t->last != TASK_STOPPED)
            return api_fail(err, "ClusterContainsTasksException",
                            "The Cluster cannot be deleted while Tasks are active.");
    json_object_set_new(doc, "status", json_string("INACTIVE"));
    json_t *inst = json_object_get(core->instances, name);
    if (inst)
        json_object_set_new(inst, "status", json_string("INACTIVE"));
    core->dirty_clusters = true;
    log_info("cluster %s deleted", name);
    *out = json_pack("{s:o}", "cluster", cluster_describe(core, name, doc));
    return 0;
}

/* Sorted names of the ACTIVE clusters. */
static json_t *active_cluster_arns(struct core *core)
{
    size_t n = json_object_size(core->clusters), k = 0;
    const char **arns = calloc(n ? n : 1, sizeof *arns);
    const char *name;
    json_t *doc;
    json_object_foreach(core->clusters, name, doc)
    {
        if (arns && strcmp(jstr(doc, "status"), "ACTIVE") == 0)
            arns[k++] = jstr(doc, "clusterArn");
    }
    json_t *all = arns ? sorted_strings(arns, k) : json_array();
    free(arns);
    return all;
}

int act_list_clusters(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    json_t *all = active_cluster_arns(core);
    *out = json_object();
    int rc = paginate(in, all, 100, 100, "clusterArns", *out, err);
    json_decref(all);
    return rc;
}

int act_describe_clusters(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    json_t *refs;
    if (param_strings(in, "clusters", false, 100, &refs, err) < 0)
        return -1;
    json_t *clusters = json_array(), *failures = json_array();
    *out = json_pack("{s:o, s:o}", "clusters", clusters, "failures", failures);
    json_t *defaults = refs ? NULL : json_pack("[s]", "default");
    size_t i;
    json_t *ref;
    json_array_foreach(refs ? refs : defaults, i, ref)
    {
        char name[CORE_NAME_MAX];
        const char *text = json_string_value(ref);
        json_t *doc = core_arn_name(text, "cluster", name, sizeof name)
                          ? json_object_get(core->clusters, name)
                          : NULL;
        if (doc) {
            json_array_append_new(clusters, cluster_describe(core, name, doc));
            continue;
        }
        char arn[512];
        if (strncmp(text, "arn:", 4) == 0)
            snprintf(arn, sizeof arn, "%s", text);
        else
            core_arn(core, arn, sizeof arn, "cluster/%s", text);
        json_array_append_new(failures, json_pack("{s:s, s:s}", "arn", arn, "reason", "MISSING"));
    }
    json_decref(defaults);
    return 0;
}

/* --- the container instance --- */

const char *instance_arn(struct core *core, const char *cluster)
{
    json_t *inst = json_object_get(core->instances, cluster);
    return inst ? jstr(inst, "containerInstanceArn") : "";
}

static json_t *resources(int cpu, int memory, const json_t *ports)
{
    return json_pack("[{s:s, s:s, s:I}, {s:s, s:s, s:I}, {s:s, s:s, s:O}, {s:s, s:s, s:[]}]",
                     "name", "CPU", "type", "INTEGER", "integerValue", (json_int_t)cpu, "name",
                     "MEMORY", "type", "INTEGER", "integerValue", (json_int_t)memory, "name",
                     "PORTS", "type", "STRINGSET", "stringSetValue", ports, "name", "PORTS_UDP",
                     "type", "STRINGSET", "stringSetValue");
}

json_t *instance_describe(struct core *core, const char *cluster)
{
    json_t *inst = json_object_get(core->instances, cluster);
    if (!inst)
        return NULL;
    json_t *out = json_deep_copy(inst);
    int running = 0, pending = 0;
    scheduler_counts(core, cluster, NULL, &running, &pending);
    json_t *used_ports = json_array();
    for (struct core_task *t = core->tasks; t; t = t->next) {
        for (int i = 0; t->placed && i < t->n_ports; i++) {
            char port[8];
            snprintf(port, sizeof port, "%d", t->host_ports[i]);
            json_array_append_new(used_ports, json_string(port));
        }
    }
    json_t *none = json_array();
    json_object_set_new(out, "registeredResources",
                        resources(core->instance_cpu, core->instance_memory_mib, none));
    json_object_set_new(out, "remainingResources",
                        resources(core->instance_cpu - core->used_cpu,
                                  core->instance_memory_mib - core->used_memory_mib, used_ports));
    json_decref(none);
    json_decref(used_ports);
    json_object_set_new(out, "runningTasksCount", json_integer(running));
    json_object_set_new(out, "pendingTasksCount", json_integer(pending));
    return out;
}

int act_list_container_instances(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    const char *ref, *status, *filter;
    char name[CORE_NAME_MAX];
    if (param_string(in, "cluster", false, &ref, err) < 0 ||
        param_string(in, "status", false, &status, err) < 0 ||
        param_string(in, "filter", false, &filter, err) < 0)
        return -1;
    if (!cluster_find(core, ref, name, err))
        return -1;
    static const char *const statuses[] = {"ACTIVE", "DRAINING", "REGISTERING", "DEREGISTERING",
                                           "REGISTRATION_FAILED"};
    bool known = !status;
    for (size_t i = 0; status && i < sizeof statuses / sizeof statuses[0]; i++)
        known |= strcmp(status, statuses[i]) == 0;
    if (!known)
        return api_fail(err, "InvalidParameterException",
                        "status: '%.64s' is not one of ACTIVE, DRAINING, REGISTERING, "
                        "DEREGISTERING, REGISTRATION_FAILED",
                        status);
    json_t *all = json_array();
    if (!status || strcmp(status, "ACTIVE") == 0)
        json_array_append_new(all, json_string(instance_arn(core, name)));
    *out = json_object();
    int rc = paginate(in, all, 100, 100, "containerInstanceArns", *out, err);
    json_decref(all);
    return rc;
}

int act_describe_container_instances(struct core *core, json_t *in, json_t **out,
                                     struct api_error *err)
{
    const char *ref;
    json_t *refs;
    char name[CORE_NAME_MAX];
    if (param_string(in, "cluster", false, &ref, err) < 0 ||
        param_strings(in, "containerInstances", true, 100, &refs, err) < 0)
        return -1;
    if (!cluster_find(core, ref, name, err))
        return -1;
    json_t *list = json_array(), *failures = json_array();
    *out = json_pack("{s:o, s:o}", "containerInstances", list, "failures", failures);
    const char *arn = instance_arn(core, name);
    const char *id = strrchr(arn, '/');
    size_t i;
    json_t *item;
    json_array_foreach(refs, i, item)
    {
        const char *text = json_string_value(item);
        if (strcmp(text, arn) == 0 || (id && strcmp(text, id + 1) == 0))
            json_array_append_new(list, instance_describe(core, name));
        else
            json_array_append_new(failures,
                                  json_pack("{s:s, s:s}", "arn", text, "reason", "MISSING"));
    }
    return 0;
}

void instance_detect(struct core *core)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    struct sysinfo si;
    int64_t mem = sysinfo(&si) == 0 ? (int64_t)si.totalram * si.mem_unit : 0;
    core->instance_cpu = core->cfg->core.instance_cpu ? (int)core->cfg->core.instance_cpu
                                                      : (int)(1024 * (cores > 0 ? cores : 1));
    core->instance_memory_mib =
        (int)((core->cfg->core.instance_memory ? core->cfg->core.instance_memory : mem) /
              (1024 * 1024));
    log_info("container instance: %d CPU units, %d MiB", core->instance_cpu,
             core->instance_memory_mib);
}
