#include "core/taskdef.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bounds ECS documents; where it documents none, one beyond any real machine, so that sums over
 * ten containers stay far inside an int. */
enum {
    TASK_CPU_MIN = 128,        /* 0.125 vCPU */
    TASK_CPU_MAX = 196608,     /* 192 vCPU */
    MEMORY_MIN_MIB = 6,        /* Docker refuses a container memory limit below 6 MiB */
    MEMORY_MAX_MIB = 16777216, /* 16 TiB */
    STOP_TIMEOUT_MAX = 120,
    PORT_MAX = 65535,
    UNIT_FACTOR = 1024, /* 1 vCPU is 1024 CPU units, 1 GB is 1024 MiB */
    PATH_SIZE = 192,    /* the deepest path is ~60 bytes: keys come from the tables below */
    SHOWN_MAX = 64,     /* how much of a refused value a message repeats */
};

static const char *const INVALID = "InvalidParameterException";
/* AWS's JSON protocols answer a member of the wrong JSON type with this. */
static const char *const SERIALIZATION = "SerializationException";
static const char *const CLIENT = "ClientException";
/* The larger units task-level sizes may be written in, each worth UNIT_FACTOR plain ones. */
static const char *const CPU_UNIT = "vCPU";
static const char *const MEMORY_UNIT = "GB";

/* ---- Rule tables ------------------------------------------------------------------------- */

enum kind {
    K_STRING,
    K_INT,
    K_BOOL,
    K_ENUM,
    K_OBJECT,
    K_ARRAY,
    K_TASK_CPU,    /* string ("256", "1 vCPU") or integer */
    K_TASK_MEMORY, /* string ("512", "2 GB") or integer */
    K_UNSUPPORTED, /* ECS has it, Gantry refuses it rather than ignore what it asks for */
};

/* One member's rule; members absent (or null, which JSON 1.1 services read as absent) are only
 * checked for being required. */
struct rule {
    const char *key; /* NULL ends a table */
    enum kind kind;
    bool required;
    long long min, max;        /* K_INT: the range; K_STRING: min is the minimum length */
    const char *const *values; /* K_ENUM: the accepted values, NULL-terminated */
    const struct rule *fields; /* K_OBJECT: its members' rules; NULL: members unchecked */
    const struct rule *item;   /* K_ARRAY: each element's rule; NULL: elements unchecked */
    int (*extra)(const json_t *v, const char *path, struct api_error *err); /* after the rest */
};

static int check_name(const json_t *v, const char *path, struct api_error *err);
static int check_env_name(const json_t *v, const char *path, struct api_error *err);
static int check_health_command(const json_t *v, const char *path, struct api_error *err);

static const char *const COMPATIBILITIES[] = {"EC2",     "FARGATE", "EXTERNAL",
                                              "PROCESS", "DOCKER",  NULL};
static const char *const NETWORK_MODES[] = {"bridge", "host", "awsvpc", "none", NULL};
static const char *const PID_MODES[] = {"host", "task", NULL};
static const char *const IPC_MODES[] = {"host", "task", "none", NULL};
static const char *const PROTOCOLS[] = {"tcp", "udp", NULL};
static const char *const APP_PROTOCOLS[] = {"http", "http2", "grpc", NULL};
static const char *const DEPENDENCY_CONDITIONS[] = {"START", "COMPLETE", "SUCCESS", "HEALTHY",
                                                    NULL};

static const struct rule ANY_STRING = {.kind = K_STRING};
static const struct rule ANY_OBJECT = {.kind = K_OBJECT};
static const struct rule COMPATIBILITY = {.kind = K_ENUM, .values = COMPATIBILITIES};

static const struct rule TAG_FIELDS[] = {
    {.key = "key", .kind = K_STRING, .required = true, .min = 1},
    {.key = "value", .kind = K_STRING},
    {0},
};
static const struct rule TAG = {.kind = K_OBJECT, .fields = TAG_FIELDS};

static const struct rule TASK_FIELDS[] = {
    {.key = "family", .kind = K_STRING, .required = true, .extra = check_name},
    {.key = "cpu", .kind = K_TASK_CPU},
    {.key = "memory", .kind = K_TASK_MEMORY},
    {.key = "requiresCompatibilities", .kind = K_ARRAY, .item = &COMPATIBILITY},
    {.key = "taskRoleArn", .kind = K_STRING},
    {.key = "executionRoleArn", .kind = K_STRING},
    {.key = "networkMode", .kind = K_ENUM, .values = NETWORK_MODES},
    {.key = "pidMode", .kind = K_ENUM, .values = PID_MODES},
    {.key = "ipcMode", .kind = K_ENUM, .values = IPC_MODES},
    {.key = "volumes", .kind = K_ARRAY, .item = &ANY_OBJECT},
    {.key = "placementConstraints", .kind = K_ARRAY, .item = &ANY_OBJECT},
    {.key = "inferenceAccelerators", .kind = K_ARRAY, .item = &ANY_OBJECT},
    {.key = "tags", .kind = K_ARRAY, .item = &TAG},
    {.key = "proxyConfiguration", .kind = K_OBJECT},
    {.key = "ephemeralStorage", .kind = K_OBJECT},
    {.key = "runtimePlatform", .kind = K_OBJECT},
    {0},
};

static const struct rule ENV_FIELDS[] = {
    {.key = "name", .kind = K_STRING, .required = true, .extra = check_env_name},
    {.key = "value", .kind = K_STRING},
    {0},
};
static const struct rule ENV = {.kind = K_OBJECT, .fields = ENV_FIELDS};

/* containerPortRange comes first: a range without containerPort must be told that ranges are
 * unsupported, not that containerPort is missing. */
static const struct rule PORT_FIELDS[] = {
    {.key = "containerPortRange", .kind = K_UNSUPPORTED},
    {.key = "containerPort", .kind = K_INT, .required = true, .min = 1, .max = PORT_MAX},
    {.key = "hostPort", .kind = K_INT, .min = 0, .max = PORT_MAX},
    {.key = "protocol", .kind = K_ENUM, .values = PROTOCOLS},
    {.key = "name", .kind = K_STRING},
    {.key = "appProtocol", .kind = K_ENUM, .values = APP_PROTOCOLS},
    {0},
};
static const struct rule PORT = {.kind = K_OBJECT, .fields = PORT_FIELDS};

static const struct rule HEALTH_FIELDS[] = {
    {.key = "command", .kind = K_ARRAY, .required = true, .item = &ANY_STRING},
    {.key = "interval", .kind = K_INT, .min = 5, .max = 300},
    {.key = "timeout", .kind = K_INT, .min = 2, .max = 60},
    {.key = "retries", .kind = K_INT, .min = 1, .max = 10},
    {.key = "startPeriod", .kind = K_INT, .min = 0, .max = 300},
    {0},
};

static const struct rule DEPENDENCY_FIELDS[] = {
    {.key = "containerName", .kind = K_STRING, .required = true},
    {.key = "condition", .kind = K_ENUM, .required = true, .values = DEPENDENCY_CONDITIONS},
    {0},
};
static const struct rule DEPENDENCY = {.kind = K_OBJECT, .fields = DEPENDENCY_FIELDS};

static const struct rule LOG_FIELDS[] = {
    {.key = "logDriver", .kind = K_STRING, .required = true, .min = 1},
    {.key = "options", .kind = K_OBJECT},
    {.key = "secretOptions", .kind = K_ARRAY, .item = &ANY_OBJECT},
    {0},
};

static const struct rule MOUNT_FIELDS[] = {
    {.key = "sourceVolume", .kind = K_STRING},
    {.key = "containerPath", .kind = K_STRING},
    {.key = "readOnly", .kind = K_BOOL},
    {0},
};
static const struct rule MOUNT = {.kind = K_OBJECT, .fields = MOUNT_FIELDS};

static const struct rule VOLUME_FROM_FIELDS[] = {
    {.key = "sourceContainer", .kind = K_STRING},
    {.key = "readOnly", .kind = K_BOOL},
    {0},
};
static const struct rule VOLUME_FROM = {.kind = K_OBJECT, .fields = VOLUME_FROM_FIELDS};

static const struct rule ULIMIT_FIELDS[] = {
    {.key = "name", .kind = K_STRING, .required = true, .min = 1},
    {.key = "softLimit", .kind = K_INT, .required = true, .min = INT_MIN, .max = INT_MAX},
    {.key = "hardLimit", .kind = K_INT, .required = true, .min = INT_MIN, .max = INT_MAX},
    {0},
};
static const struct rule ULIMIT = {.kind = K_OBJECT, .fields = ULIMIT_FIELDS};

static const struct rule CONTAINER_FIELDS[] = {
    {.key = "name", .kind = K_STRING, .required = true, .extra = check_name},
    {.key = "image", .kind = K_STRING, .required = true, .min = 1},
    {.key = "cpu", .kind = K_INT, .min = 0, .max = TASK_CPU_MAX},
    {.key = "memory", .kind = K_INT, .min = MEMORY_MIN_MIB, .max = MEMORY_MAX_MIB},
    {.key = "memoryReservation", .kind = K_INT, .min = MEMORY_MIN_MIB, .max = MEMORY_MAX_MIB},
    {.key = "essential", .kind = K_BOOL},
    {.key = "entryPoint", .kind = K_ARRAY, .item = &ANY_STRING},
    {.key = "command", .kind = K_ARRAY, .item = &ANY_STRING},
    {.key = "environment", .kind = K_ARRAY, .item = &ENV},
    {.key = "portMappings", .kind = K_ARRAY, .item = &PORT},
    {.key = "stopTimeout", .kind = K_INT, .min = 0, .max = STOP_TIMEOUT_MAX},
    {.key = "startTimeout", .kind = K_INT, .min = 0, .max = INT_MAX},
    {.key = "healthCheck",
     .kind = K_OBJECT,
     .fields = HEALTH_FIELDS,
     .extra = check_health_command},
    {.key = "dependsOn", .kind = K_ARRAY, .item = &DEPENDENCY},
    {.key = "links", .kind = K_ARRAY, .item = &ANY_STRING},
    {.key = "logConfiguration", .kind = K_OBJECT, .fields = LOG_FIELDS},
    {.key = "mountPoints", .kind = K_ARRAY, .item = &MOUNT},
    {.key = "volumesFrom", .kind = K_ARRAY, .item = &VOLUME_FROM},
    {.key = "ulimits", .kind = K_ARRAY, .item = &ULIMIT},
    {.key = "workingDirectory", .kind = K_STRING},
    {.key = "user", .kind = K_STRING},
    {.key = "hostname", .kind = K_STRING},
    {.key = "dnsServers", .kind = K_ARRAY, .item = &ANY_STRING},
    {.key = "dnsSearchDomains", .kind = K_ARRAY, .item = &ANY_STRING},
    {.key = "dockerSecurityOptions", .kind = K_ARRAY, .item = &ANY_STRING},
    {.key = "disableNetworking", .kind = K_BOOL},
    {.key = "privileged", .kind = K_BOOL},
    {.key = "readonlyRootFilesystem", .kind = K_BOOL},
    {.key = "interactive", .kind = K_BOOL},
    {.key = "pseudoTerminal", .kind = K_BOOL},
    {.key = "dockerLabels", .kind = K_OBJECT},
    {.key = "linuxParameters", .kind = K_OBJECT},
    {.key = "repositoryCredentials", .kind = K_OBJECT},
    {.key = "firelensConfiguration", .kind = K_OBJECT},
    {.key = "secrets", .kind = K_ARRAY, .item = &ANY_OBJECT},
    {.key = "environmentFiles", .kind = K_ARRAY, .item = &ANY_OBJECT},
    {.key = "extraHosts", .kind = K_ARRAY, .item = &ANY_OBJECT},
    {.key = "systemControls", .kind = K_ARRAY, .item = &ANY_OBJECT},
    {.key = "resourceRequirements", .kind = K_ARRAY, .item = &ANY_OBJECT},
    {0},
};
static const struct rule CONTAINER = {.kind = K_OBJECT, .fields = CONTAINER_FIELDS};

/* ---- Paths and messages ------------------------------------------------------------------ */

static void member_path(char *out, const char *prefix, const char *key)
{
    snprintf(out, PATH_SIZE, "%s%s%s", prefix, *prefix ? "." : "", key);
}

static void index_path(char *out, const char *prefix, size_t i)
{
    snprintf(out, PATH_SIZE, "%s[%zu]", prefix, i);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static int type_fail(struct api_error *err, const char *path, const char *want, const json_t *v)
{
    return api_fail(err, SERIALIZATION, "Invalid type for parameter %s: expected %s, got %s", path,
                    want, type_name(v));
}

static int missing(struct api_error *err, const char *path)
{
    return api_fail(err, CLIENT, "Missing required parameter: %s", path);
}

/* "a, b, c": what an enum accepts, for its message. */
static void join_values(const char *const *values, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (const char *const *p = values; *p && used < size; p++) {
        int n = snprintf(out + used, size - used, "%s%s", p == values ? "" : ", ", *p);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* ---- Checks ------------------------------------------------------------------------------ */

static int check_value(const json_t *v, const struct rule *r, const char *path,
                       struct api_error *err);

static int check_fields(const json_t *obj, const struct rule *fields, const char *prefix,
                        struct api_error *err)
{
    for (const struct rule *r = fields; r->key; r++) {
        char path[PATH_SIZE];
        member_path(path, prefix, r->key);
        const json_t *v = json_object_get(obj, r->key);
        if (!v || json_is_null(v)) {
            if (r->required)
                return missing(err, path);
            continue;
        }
        if (check_value(v, r, path, err) != 0)
            return -1;
    }
    return 0;
}

static int check_string(const json_t *v, const char *path, long long min_len, struct api_error *err)
{
    if (!json_is_string(v))
        return type_fail(err, path, "string", v);
    /* Strings end up in argv and environ, where an embedded NUL would silently cut them. */
    if (strlen(json_string_value(v)) != json_string_length(v))
        return api_fail(err, INVALID, "Invalid value for %s: it holds a NUL character", path);
    if ((long long)json_string_length(v) < min_len)
        return api_fail(err, CLIENT, "Invalid value for %s: it must not be empty", path);
    return 0;
}

static int check_int(const json_t *v, const char *path, long long min, long long max,
                     struct api_error *err)
{
    if (!json_is_integer(v))
        return type_fail(err, path, "integer", v);
    long long n = json_integer_value(v);
    if (n < min || n > max)
        return api_fail(err, CLIENT, "Invalid value for %s: %lld (it must be from %lld to %lld)",
                        path, n, min, max);
    return 0;
}

static int check_enum(const json_t *v, const char *path, const char *const *values,
                      struct api_error *err)
{
    if (check_string(v, path, 0, err) != 0)
        return -1;
    const char *s = json_string_value(v);
    for (const char *const *p = values; *p; p++)
        if (strcmp(s, *p) == 0)
            return 0;
    char accepted[128];
    join_values(values, accepted, sizeof accepted);
    return api_fail(err, INVALID, "Invalid value for %s: '%.*s' (it must be one of: %s)", path,
                    SHOWN_MAX, s, accepted);
}

static int check_array(const json_t *v, const struct rule *item, const char *path,
                       struct api_error *err)
{
    if (!json_is_array(v))
        return type_fail(err, path, "array", v);
    if (!item)
        return 0;
    size_t i;
    const json_t *elem;
    json_array_foreach(v, i, elem)
    {
        char elem_path[PATH_SIZE];
        index_path(elem_path, path, i);
        if (check_value(elem, item, elem_path, err) != 0)
            return -1;
    }
    return 0;
}

/* A task-level size: a JSON integer, a string of digits, or a decimal followed by unit (matched
 * without regard to case, spaces allowed before it) meaning that many 1024s, as ECS reads
 * "0.25 vCPU" and "2 GB". False when v is none of those or the result is fractional. */
static bool parse_task_size(const json_t *v, const char *unit, long long *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    const char *s = json_string_value(v);
    if (!s)
        return false;
    long long whole = 0, frac = 0, scale = 1;
    int digits = 0;
    /* At most 9 + 6 digits: (whole * scale + frac) * UNIT_FACTOR stays below 2^63, and both
     * limits are far past any bound. */
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (digits == 9)
            return false;
        whole = whole * 10 + (*s - '0');
    }
    bool point = *s == '.';
    if (point)
        for (s++; *s >= '0' && *s <= '9'; s++) {
            if (scale == 1000000)
                return false;
            frac = frac * 10 + (*s - '0');
            scale *= 10;
        }
    if (digits == 0 && scale == 1)
        return false;
    if (*s == '\0' && !point) {
        *out = whole;
        return true;
    }
    while (*s == ' ')
        s++;
    if (strcasecmp(s, unit) != 0)
        return false;
    long long scaled = (whole * scale + frac) * UNIT_FACTOR;
    if (scaled % scale != 0)
        return false;
    *out = scaled / scale;
    return true;
}

static void shown_value(const json_t *v, char *out, size_t size)
{
    if (json_is_string(v))
        snprintf(out, size, "'%.*s'", SHOWN_MAX, json_string_value(v));
    else
        snprintf(out, size, "%lld", json_integer_value(v));
}

static int check_task_size(const json_t *v, bool cpu, const char *path, struct api_error *err)
{
    if (!json_is_string(v) && !json_is_integer(v))
        return type_fail(err, path, "string", v);
    long long n;
    long long min = cpu ? TASK_CPU_MIN : MEMORY_MIN_MIB, max = cpu ? TASK_CPU_MAX : MEMORY_MAX_MIB;
    if (parse_task_size(v, cpu ? CPU_UNIT : MEMORY_UNIT, &n) && n >= min && n <= max)
        return 0;
    char shown[SHOWN_MAX + 8];
    shown_value(v, shown, sizeof shown);
    if (cpu)
        return api_fail(err, CLIENT,
                        "Invalid 'cpu' setting for task: %s (cpu is CPU units from %d to %d, "
                        "as \"1024\", or vCPUs, as \"1 vCPU\")",
                        shown, TASK_CPU_MIN, TASK_CPU_MAX);
    return api_fail(err, CLIENT,
                    "Invalid 'memory' setting for task: %s (memory is MiB from %d to %d, as "
                    "\"2048\", or GB, as \"2 GB\")",
                    shown, MEMORY_MIN_MIB, MEMORY_MAX_MIB);
}

static int check_value(const json_t *v, const struct rule *r, const char *path,
                       struct api_error *err)
{
    int rc = 0;
    switch (r->kind) {
    case K_STRING:
        rc = check_string(v, path, r->min, err);
        break;
    case K_INT:
        rc = check_int(v, path, r->min, r->max, err);
        break;
    case K_BOOL:
        rc = json_is_boolean(v) ? 0 : type_fail(err, path, "boolean", v);
        break;
    case K_ENUM:
        rc = check_enum(v, path, r->values, err);
        break;
    case K_OBJECT:
        if (!json_is_object(v))
            rc = type_fail(err, path, "object", v);
        else if (r->fields)
            rc = check_fields(v, r->fields, path, err);
        break;
    case K_ARRAY:
        rc = check_array(v, r->item, path, err);
        break;
    case K_TASK_CPU:
    case K_TASK_MEMORY:
        rc = check_task_size(v, r->kind == K_TASK_CPU, path, err);
        break;
    case K_UNSUPPORTED:
        rc = api_fail(err, INVALID, "%s is not supported by Gantry", path);
        break;
    }
    if (rc == 0 && r->extra)
        rc = r->extra(v, path, err);
    return rc;
}

static int check_name(const json_t *v, const char *path, struct api_error *err)
{
    const char *s = json_string_value(v);
    if (taskdef_valid_name(s))
        return 0;
    return api_fail(err, CLIENT,
                    "Invalid value for %s: '%.*s' (up to %d letters, numbers, hyphens and "
                    "underscores are allowed)",
                    path, SHOWN_MAX, s, TASKDEF_NAME_MAX);
}

static int check_env_name(const json_t *v, const char *path, struct api_error *err)
{
    const char *s = json_string_value(v);
    if (*s && !strchr(s, '='))
        return 0;
    return api_fail(err, CLIENT,
                    "Invalid value for %s: '%.*s' (an environment variable's name is not empty "
                    "and holds no '=')",
                    path, SHOWN_MAX, s);
}

/* Docker's HEALTHCHECK forms: CMD with an argv, CMD-SHELL with a shell line, NONE alone. */
static int check_health_command(const json_t *v, const char *path, struct api_error *err)
{
    const json_t *cmd = json_object_get(v, "command");
    char cmd_path[PATH_SIZE];
    member_path(cmd_path, path, "command");
    if (json_array_size(cmd) == 0)
        return api_fail(err, CLIENT, "Invalid value for %s: it must not be empty", cmd_path);
    const char *first = json_string_value(json_array_get(cmd, 0));
    if (strcmp(first, "NONE") == 0)
        return 0;
    if (strcmp(first, "CMD") != 0 && strcmp(first, "CMD-SHELL") != 0)
        return api_fail(err, INVALID,
                        "Invalid value for %s[0]: '%.*s' (it must be CMD, CMD-SHELL or NONE)",
                        cmd_path, SHOWN_MAX, first);
    if (json_array_size(cmd) < 2)
        return api_fail(err, CLIENT, "Invalid value for %s: %s needs a command after it", cmd_path,
                        first);
    return 0;
}

/* ---- Rules across fields ----------------------------------------------------------------- */

/* Present and parsed: validated definitions always parse, others may not. */
static bool task_size(const json_t *td, const char *key, const char *unit, long long *out)
{
    const json_t *v = json_object_get(td, key);
    return v && parse_task_size(v, unit, out);
}

static bool task_cpu(const json_t *td, long long *units)
{
    return task_size(td, "cpu", CPU_UNIT, units);
}

static bool task_memory(const json_t *td, long long *mib)
{
    return task_size(td, "memory", MEMORY_UNIT, mib);
}

static long long int_member(const json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

/* What a container counts for against the task's memory and in its reservation. */
/* What a container reserves on its instance: ECS subtracts memoryReservation when it is set,
 * else the hard limit. */
static long long container_memory(const json_t *def)
{
    long long soft = int_member(def, "memoryReservation");
    return soft > 0 ? soft : int_member(def, "memory");
}

static const char *container_name(const json_t *def)
{
    return json_string_value(json_object_get(def, "name"));
}

/* task_sized: the task sets its memory, which then bounds containers that set none. */
static int check_container_memory(const json_t *def, const char *path, bool task_sized,
                                  struct api_error *err)
{
    long long hard = int_member(def, "memory"), soft = int_member(def, "memoryReservation");
    if (hard > 0 && soft > hard)
        return api_fail(err, CLIENT,
                        "Invalid value for %s.memoryReservation: %lld MiB is more than %s.memory, "
                        "%lld MiB (the soft limit must not exceed the hard limit)",
                        path, soft, path, hard);
    if (hard == 0 && soft == 0 && !task_sized)
        return api_fail(err, CLIENT,
                        "Invalid setting for container '%s' (%s.memory). At least one of 'memory' "
                        "or 'memoryReservation' must be specified.",
                        container_name(def), path);
    return 0;
}

static int check_unique_names(const json_t *defs, struct api_error *err)
{
    size_t n = json_array_size(defs);
    for (size_t i = 1; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(container_name(json_array_get(defs, i)),
                       container_name(json_array_get(defs, j))) == 0)
                return api_fail(err, CLIENT,
                                "Duplicate container name '%s': containerDefinitions[%zu].name and "
                                "containerDefinitions[%zu].name",
                                container_name(json_array_get(defs, i)), j, i);
    return 0;
}

static int check_essential(const json_t *defs, struct api_error *err)
{
    size_t i;
    const json_t *def;
    json_array_foreach(defs, i, def)
    {
        const json_t *essential = json_object_get(def, "essential");
        if (!json_is_false(essential))
            return 0;
    }
    return api_fail(err, CLIENT,
                    "A task definition must have at least one essential container (every "
                    "containerDefinitions[].essential is false).");
}

static const char *mapping_protocol(const json_t *mapping)
{
    const char *p = json_string_value(json_object_get(mapping, "protocol"));
    return p ? p : "tcp";
}

/* A port is per protocol: tcp/53 and udp/53 are different sockets. */
static bool same_port(const json_t *a, const json_t *b, const char *key)
{
    return int_member(a, key) == int_member(b, key) &&
           strcmp(mapping_protocol(a), mapping_protocol(b)) == 0;
}

/* The first mapping claiming the port that containerDefinitions[c].portMappings[m] claims under
 * key. Its bit was set, so one before it does, and a scan in order meets that one first. Only a
 * refused definition pays for the scan. */
static void find_earlier_port(const json_t *defs, size_t c, size_t m, const char *key,
                              size_t *c_out, size_t *m_out)
{
    const json_t *mapping =
        json_array_get(json_object_get(json_array_get(defs, c), "portMappings"), m);
    for (size_t c2 = 0; c2 <= c; c2++) {
        const json_t *maps = json_object_get(json_array_get(defs, c2), "portMappings");
        for (size_t m2 = 0; m2 < json_array_size(maps); m2++)
            if (same_port(mapping, json_array_get(maps, m2), key)) {
                *c_out = c2;
                *m_out = m2;
                return;
            }
    }
}

static int port_taken(const json_t *defs, size_t c, size_t m, const char *key,
                      struct api_error *err)
{
    const json_t *mapping =
        json_array_get(json_object_get(json_array_get(defs, c), "portMappings"), m);
    size_t c2 = 0, m2 = 0;
    find_earlier_port(defs, c, m, key, &c2, &m2);
    return api_fail(err, CLIENT,
                    "Duplicate port: containerDefinitions[%zu].portMappings[%zu].%s %lld/%s is "
                    "already mapped by containerDefinitions[%zu].portMappings[%zu]",
                    c, m, key, int_member(mapping, key), mapping_protocol(mapping), c2, m2);
}

/* The ports claimed so far, one bit per port for each (member, protocol): a set bit found again
 * is a clash. Linear, since a 32 KiB definition holds some 1500 mappings. */
struct ports_seen {
    unsigned char bits[2][2][(PORT_MAX + 1) / 8];
};

static bool port_seen_before(struct ports_seen *seen, int member, const json_t *mapping,
                             const char *key)
{
    long long port = int_member(mapping, key);
    if (port <= 0) /* a hostPort of 0 claims none: Gantry picks one per task */
        return false;
    unsigned char *byte =
        &seen->bits[member][strcmp(mapping_protocol(mapping), "udp") == 0][port / 8];
    unsigned char bit = (unsigned char)(1u << (port % 8));
    bool before = *byte & bit;
    *byte |= bit;
    return before;
}

/* A port taken twice is refused at registration rather than when the second task fails to
 * bind: every container of a PROCESS task shares the host's network. */
static int check_ports(const json_t *defs, struct api_error *err)
{
    static const char *const keys[] = {"containerPort", "hostPort"};
    size_t total = 0;
    for (size_t c = 0; c < json_array_size(defs); c++)
        total += json_array_size(json_object_get(json_array_get(defs, c), "portMappings"));
    if (total > TASKDEF_MAX_PORTS)
        return api_fail(err, "ClientException",
                        "Too many port mappings: %zu (Gantry maps at most %d ports per task, each "
                        "to a host port)",
                        total, TASKDEF_MAX_PORTS);
    struct ports_seen *seen = calloc(1, sizeof *seen);
    if (!seen)
        return api_fail(err, "ServerException", "Out of memory checking portMappings");
    int rc = 0;
    for (size_t c = 0; rc == 0 && c < json_array_size(defs); c++) {
        const json_t *maps = json_object_get(json_array_get(defs, c), "portMappings");
        for (size_t m = 0; rc == 0 && m < json_array_size(maps); m++)
            for (int k = 0; rc == 0 && k < 2; k++)
                if (port_seen_before(seen, k, json_array_get(maps, m), keys[k]))
                    rc = port_taken(defs, c, m, keys[k], err);
    }
    free(seen);
    return rc;
}

static bool has_container(const json_t *defs, const char *name)
{
    size_t i;
    const json_t *def;
    json_array_foreach(defs, i, def)
    {
        if (strcmp(container_name(def), name) == 0)
            return true;
    }
    return false;
}

static const char *dependency_problem(const json_t *defs, const json_t *def, const char *target)
{
    if (strcmp(target, container_name(def)) == 0)
        return "a container cannot depend on itself";
    return has_container(defs, target) ? NULL
                                       : "no container of this task definition has that name";
}

/* The scheduler orders a task's containers by dependsOn: each must name another container. */
static int check_dependencies(const json_t *defs, struct api_error *err)
{
    for (size_t c = 0; c < json_array_size(defs); c++) {
        const json_t *def = json_array_get(defs, c);
        const json_t *deps = json_object_get(def, "dependsOn");
        for (size_t d = 0; d < json_array_size(deps); d++) {
            const char *target =
                json_string_value(json_object_get(json_array_get(deps, d), "containerName"));
            const char *why = dependency_problem(defs, def, target);
            if (why)
                return api_fail(err, CLIENT,
                                "Invalid value for containerDefinitions[%zu].dependsOn[%zu]."
                                "containerName: '%.*s' (%s)",
                                c, d, SHOWN_MAX, target, why);
        }
    }
    return 0;
}

static int check_totals(const json_t *in, const json_t *defs, struct api_error *err)
{
    long long cpu_sum = 0, memory_sum = 0, task_units, task_mib;
    bool task_sized = task_memory(in, &task_mib);
    size_t i;
    const json_t *def;
    json_array_foreach(defs, i, def)
    {
        cpu_sum += int_member(def, "cpu");
        memory_sum += container_memory(def);
        long long hard = int_member(def, "memory");
        if (task_sized && hard > task_mib)
            return api_fail(err, CLIENT,
                            "Invalid 'memory' setting for task: containerDefinitions[%zu].memory "
                            "(%lld MiB) is more than the task's %lld MiB",
                            i, hard, task_mib);
    }
    if (task_sized && memory_sum > task_mib)
        return api_fail(err, CLIENT,
                        "Invalid 'memory' setting for task: its containers' memory "
                        "(containerDefinitions[].memoryReservation, else memory) totals %lld MiB, "
                        "more than the task's %lld MiB",
                        memory_sum, task_mib);
    if (task_cpu(in, &task_units) && cpu_sum > task_units)
        return api_fail(err, CLIENT,
                        "Invalid 'cpu' setting for task: its containers' cpu "
                        "(containerDefinitions[].cpu) totals %lld units, more than the task's "
                        "%lld units",
                        cpu_sum, task_units);
    return 0;
}

static int check_containers(const json_t *in, struct api_error *err)
{
    const json_t *defs = json_object_get(in, "containerDefinitions");
    if (!defs || json_is_null(defs))
        return missing(err, "containerDefinitions");
    if (!json_is_array(defs))
        return type_fail(err, "containerDefinitions", "array", defs);
    size_t n = json_array_size(defs);
    if (n == 0)
        return api_fail(err, CLIENT,
                        "Invalid value for containerDefinitions: a task definition needs at least "
                        "one container definition");
    if (n > TASKDEF_MAX_CONTAINERS)
        return api_fail(err, CLIENT,
                        "Too many containers: containerDefinitions holds %zu (a task definition "
                        "holds at most %d container definitions)",
                        n, TASKDEF_MAX_CONTAINERS);
    long long task_mib;
    bool task_sized = task_memory(in, &task_mib);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_SIZE];
        index_path(path, "containerDefinitions", i);
        const json_t *def = json_array_get(defs, i);
        if (check_value(def, &CONTAINER, path, err) != 0 ||
            check_container_memory(def, path, task_sized, err) != 0)
            return -1;
    }
    if (check_unique_names(defs, err) != 0 || check_essential(defs, err) != 0 ||
        check_ports(defs, err) != 0 || check_dependencies(defs, err) != 0)
        return -1;
    return check_totals(in, defs, err);
}

/* ---- The API ----------------------------------------------------------------------------- */

bool taskdef_valid_name(const char *s)
{
    if (!s)
        return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok || n == TASKDEF_NAME_MAX)
            return false;
    }
    return n > 0;
}

int taskdef_validate(const json_t *in, size_t input_bytes, struct api_error *err)
{
    if (input_bytes > TASKDEF_MAX_BYTES)
        return api_fail(err, CLIENT,
                        "Task definition too large. Actual length: '%zu'. Max allowed length is "
                        "'%d' bytes.",
                        input_bytes, TASKDEF_MAX_BYTES);
    if (!json_is_object(in))
        return api_fail(err, SERIALIZATION, "Invalid request: expected a JSON object, got %s",
                        in ? type_name(in) : "nothing");
    if (check_fields(in, TASK_FIELDS, "", err) != 0)
        return -1;
    return check_containers(in, err);
}

/* ---- The stored definition --------------------------------------------------------------- */

/* JSON 1.1 reads a null member as an absent one: the stored definition holds neither. */
static void drop_nulls(json_t *v)
{
    const char *key;
    json_t *member;
    void *tmp;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach_safe(v, tmp, key, member)
        {
            if (json_is_null(member))
                json_object_del(v, key);
            else
                drop_nulls(member);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, member)
        {
            drop_nulls(member);
        }
    }
}

/* Sets key to value unless obj has it already; steals value either way. */
static void set_default(json_t *obj, const char *key, json_t *value)
{
    if (json_object_get(obj, key))
        json_decref(value);
    else
        json_object_set_new(obj, key, value);
}

/* ECS stores task-level sizes as strings of plain units ("1 vCPU" is stored as "1024"). */
static void normalize_task_size(json_t *td, const char *key, const char *unit)
{
    long long n;
    if (!task_size(td, key, unit, &n))
        return;
    char text[24];
    snprintf(text, sizeof text, "%lld", n);
    json_object_set_new(td, key, json_string(text));
}

static void fill_container_defaults(json_t *def)
{
    set_default(def, "cpu", json_integer(0));
    set_default(def, "essential", json_true());
    set_default(def, "portMappings", json_array());
    set_default(def, "environment", json_array());
    set_default(def, "mountPoints", json_array());
    set_default(def, "volumesFrom", json_array());
    size_t i;
    json_t *mapping;
    /* hostPort stays absent when not given: Gantry assigns a dynamic one per task. */
    json_array_foreach(json_object_get(def, "portMappings"), i, mapping)
    {
        set_default(mapping, "protocol", json_string("tcp"));
    }
    json_t *health = json_object_get(def, "healthCheck");
    if (json_is_object(health)) {
        set_default(health, "interval", json_integer(30));
        set_default(health, "timeout", json_integer(5));
        set_default(health, "retries", json_integer(3));
    }
}

json_t *taskdef_build(const json_t *in, const char *arn, int revision, double registered_at)
{
    json_t *td = json_deep_copy(in);
    if (!td)
        return NULL;
    drop_nulls(td);
    /* ECS keeps tags beside the definition (ListTagsForResource), not in it. */
    json_object_del(td, "tags");
    normalize_task_size(td, "cpu", CPU_UNIT);
    normalize_task_size(td, "memory", MEMORY_UNIT);
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(td, "containerDefinitions"), i, def)
    {
        fill_container_defaults(def);
    }
    json_object_set_new(td, "taskDefinitionArn", json_string(arn));
    json_object_set_new(td, "revision", json_integer(revision));
    json_object_set_new(td, "status", json_string("ACTIVE"));
    json_object_set_new(td, "compatibilities", json_pack("[ss]", "PROCESS", "DOCKER"));
    json_object_set_new(td, "registeredAt", json_real(registered_at));
    set_default(td, "volumes", json_array());
    set_default(td, "placementConstraints", json_array());
    set_default(td, "requiresAttributes", json_array());
    return td;
}

/* ---- What a task of it needs ------------------------------------------------------------- */

static int clamp_int(long long n)
{
    return n < 0 ? 0 : n > INT_MAX ? INT_MAX : (int)n;
}

void taskdef_reservation(const json_t *td, int *cpu_units, int *memory_mib)
{
    long long cpu = 0, memory = 0, task_units, task_mib;
    size_t i;
    const json_t *def;
    json_array_foreach(json_object_get(td, "containerDefinitions"), i, def)
    {
        cpu += clamp_int(int_member(def, "cpu"));
        memory += clamp_int(container_memory(def));
    }
    *cpu_units = clamp_int(task_cpu(td, &task_units) ? task_units : cpu);
    *memory_mib = clamp_int(task_memory(td, &task_mib) ? task_mib : memory);
}

const char *taskdef_default_launch_type(const json_t *td)
{
    static const char *const docker_ones[] = {"DOCKER", "EC2", "FARGATE", NULL};
    size_t i;
    const json_t *v;
    bool any = false;
    json_array_foreach(json_object_get(td, "requiresCompatibilities"), i, v)
    {
        const char *s = json_string_value(v);
        const char *const *p = docker_ones;
        while (s && *p && strcmp(s, *p) != 0)
            p++;
        if (!s || !*p)
            return "PROCESS";
        any = true;
    }
    return any ? "DOCKER" : "PROCESS";
}
