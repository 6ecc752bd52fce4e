/* Task definitions: each of RegisterTaskDefinition's rules refused with the exception ECS answers
 * and a message naming the field, next to inputs that rule must let through; the documentation's
 * examples; the size and container-count limits; the stored shape taskdef_build returns; what a
 * task reserves; the default launch type. JSON in the tables is written with ' for " (json_q). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/json_q.h"

#include "core/taskdef.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define INVALID "InvalidParameterException"
#define SERIAL "SerializationException" /* a member of the wrong JSON type */
#define CLIENT "ClientException"

/* A definition with the given task-level members (each starting with ',') and containers. */
#define TD(task, containers) "{'family':'web'" task ",'containerDefinitions':[" containers "]}"
/* A container named NAME with an image and 64 MiB, plus the given members. */
#define CN(name, extra) "{'name':'" name "','image':'busybox','memory':64" extra "}"
#define C(extra) CN("app", extra)
#define ONE(extra) TD("", C(extra))
/* A container with neither memory nor memoryReservation. */
#define BARE "{'name':'app','image':'busybox'}"

/* ---- Helpers ----------------------------------------------------------------------------- */

/* Validates text as RegisterTaskDefinition's body, with its own length. */
static int validate_q(const char *text, struct api_error *err)
{
    json_t *in = json_q(text);
    memset(err, 0, sizeof *err);
    int rc = taskdef_validate(in, strlen(text), err);
    json_decref(in);
    return rc;
}

/* ---- Accepted and refused, rule by rule -------------------------------------------------- */

struct accept_case {
    const char *why, *json;
};

static const struct accept_case accept_cases[] = {
    {"minimal", ONE("")},
    {"memoryReservation alone", TD("", "{'name':'app','image':'i','memoryReservation':6}")},
    {"task memory instead of container memory", TD(",'memory':'512'", BARE)},
    {"memory at its minimum", TD("", "{'name':'app','image':'i','memory':6}")},
    {"memoryReservation equal to memory", ONE(",'memoryReservation':64")},
    {"cpu 0", ONE(",'cpu':0")},
    {"task cpu at its minimum", TD(",'cpu':'128'", C(""))},
    {"task cpu at its maximum", TD(",'cpu':'196608'", C(""))},
    {"task cpu in vCPU", TD(",'cpu':'1 vCPU'", C(""))},
    {"task cpu in vcpu, lowercase", TD(",'cpu':'2 vcpu'", C(""))},
    {"task cpu in fractional vCPU", TD(",'cpu':'0.25 vCPU'", C(""))},
    {"task cpu without a leading 0", TD(",'cpu':'.5 vCPU'", C(""))},
    {"task cpu without a space", TD(",'cpu':'0.125vCPU'", C(""))},
    {"task cpu as a JSON integer", TD(",'cpu':1024", C(""))},
    {"task memory in GB", TD(",'memory':'2 GB'", C(""))},
    {"task memory in fractional GB", TD(",'memory':'0.5 GB'", C(""))},
    {"task memory in gb, lowercase", TD(",'memory':'1gb'", C(""))},
    {"task memory as a JSON integer", TD(",'memory':512", C(""))},
    {"task memory at its minimum", TD(",'memory':'6'", "{'name':'app','image':'i'}")},
    {"containers' memory exactly the task's", TD(",'memory':'128'", CN("a", "") "," CN("b", ""))},
    {"containers' cpu exactly the task's",
     TD(",'cpu':'256'", CN("a", ",'cpu':128") "," CN("b", ",'cpu':128"))},
    {"keys ECS does not know are ignored", TD(",'somethingNew':{'x':1}", C(",'futureField':[1]"))},
    {"null reads as absent", TD(",'taskRoleArn':null,'cpu':null", C(",'cpu':null,'user':null"))},
    {"ECS members Gantry does not use",
     TD(",'taskRoleArn':'arn:aws:iam::1:role/r','executionRoleArn':'arn:aws:iam::1:role/e',"
        "'networkMode':'awsvpc','volumes':[{'name':'v'}],'placementConstraints':[],"
        "'tags':[{'key':'team','value':'web'}],'runtimePlatform':{'cpuArchitecture':'X86_64'},"
        "'ipcMode':'task','pidMode':'host','proxyConfiguration':{'containerName':'app'},"
        "'inferenceAccelerators':[],'ephemeralStorage':{'sizeInGiB':21}",
        C(""))},
    {"every compatibility",
     TD(",'requiresCompatibilities':['EC2','FARGATE','EXTERNAL','PROCESS','DOCKER']", C(""))},
    {"no compatibility", TD(",'requiresCompatibilities':[]", C(""))},
    {"one essential container of two",
     TD("", CN("a", ",'essential':false") "," CN("b", ",'essential':true"))},
    {"entryPoint and command", ONE(",'entryPoint':['sh','-c'],'command':['sleep 1','']")},
    {"environment", ONE(",'environment':[{'name':'A','value':''},{'name':'b.c-d','value':'x=y'}]")},
    {"environment value absent", ONE(",'environment':[{'name':'A'}]")},
    {"ports at their bounds",
     ONE(",'portMappings':[{'containerPort':1,'hostPort':65535},{'containerPort':65535,"
         "'hostPort':0,'protocol':'udp','name':'p','appProtocol':'http'}]")},
    {"the same containerPort over tcp and udp",
     ONE(",'portMappings':[{'containerPort':53},{'containerPort':53,'protocol':'udp'}]")},
    {"the same hostPort over tcp and udp",
     ONE(",'portMappings':[{'containerPort':53,'hostPort':53},"
         "{'containerPort':54,'hostPort':53,'protocol':'udp'}]")},
    {"hostPort 0 (dynamic) twice",
     TD("", CN("a", ",'portMappings':[{'containerPort':80,'hostPort':0}]") "," CN(
                "b", ",'portMappings':[{'containerPort':81,'hostPort':0}]"))},
    {"stopTimeout at its bounds",
     TD("", CN("a", ",'stopTimeout':0") "," CN("b", ",'stopTimeout':120"))},
    {"startTimeout", ONE(",'startTimeout':0")},
    {"healthCheck at its minimums",
     ONE(",'healthCheck':{'command':['CMD','true'],'interval':5,'timeout':2,'retries':1,"
         "'startPeriod':0}")},
    {"healthCheck at its maximums",
     ONE(",'healthCheck':{'command':['CMD-SHELL','curl -f localhost'],'interval':300,"
         "'timeout':60,'retries':10,'startPeriod':300}")},
    {"healthCheck NONE", ONE(",'healthCheck':{'command':['NONE']}")},
    {"dependsOn",
     TD("",
        CN("db", "") "," CN("app", ",'dependsOn':[{'containerName':'db','condition':'HEALTHY'}]"))},
    {"the members accepted as they are",
     ONE(",'links':['db'],'logConfiguration':{'logDriver':'json-file','options':{'max-size':'1m'}},"
         "'mountPoints':[{'sourceVolume':'v','containerPath':'/v','readOnly':true}],"
         "'volumesFrom':[{'sourceContainer':'x'}],'ulimits':[{'name':'nofile','softLimit':1024,"
         "'hardLimit':4096}],'workingDirectory':'/srv','user':'1000:1000','hostname':'h',"
         "'privileged':false,'dockerLabels':{'a':'b'},'secrets':[]")},
};

static void test_accepted(void **state)
{
    (void)state;
    int wrong = 0;
    for (size_t i = 0; i < N(accept_cases); i++) {
        struct api_error err;
        if (validate_q(accept_cases[i].json, &err) != 0) {
            print_error("accept case '%s' refused: %s: %s\n", accept_cases[i].why, err.type,
                        err.message);
            wrong++;
        }
    }
    assert_int_equal(wrong, 0);
}

struct refuse_case {
    const char *why, *json;
    const char *type;   /* the exception */
    const char *needle; /* what the message must name */
};

static const struct refuse_case refuse_cases[] = {
    /* The request */
    {"not an object", "['family']", SERIAL, "JSON object"},
    {"family missing", "{'containerDefinitions':[" C("") "]}", CLIENT, "family"},
    {"family null", "{'family':null,'containerDefinitions':[" C("") "]}", CLIENT, "family"},
    {"family a number", "{'family':5,'containerDefinitions':[" C("") "]}", SERIAL, "family"},
    {"family with a space", "{'family':'my web','containerDefinitions':[" C("") "]}", CLIENT,
     "family"},
    {"family empty", "{'family':'','containerDefinitions':[" C("") "]}", CLIENT, "family"},
    {"containerDefinitions missing", "{'family':'web'}", CLIENT, "containerDefinitions"},
    {"containerDefinitions an object", "{'family':'web','containerDefinitions':{}}", SERIAL,
     "containerDefinitions"},
    {"containerDefinitions empty", TD("", ""), CLIENT, "containerDefinitions"},
    {"a container not an object", TD("", "'app'"), SERIAL, "containerDefinitions[0]"},
    {"networkMode not ECS's", TD(",'networkMode':'bridged'", C("")), INVALID, "networkMode"},
    {"networkMode a number", TD(",'networkMode':1", C("")), SERIAL, "networkMode"},
    {"taskRoleArn an array", TD(",'taskRoleArn':[]", C("")), SERIAL, "taskRoleArn"},
    {"volumes an object", TD(",'volumes':{}", C("")), SERIAL, "volumes"},
    {"pidMode not ECS's", TD(",'pidMode':'none'", C("")), INVALID, "pidMode"},
    {"a tag without a key", TD(",'tags':[{'value':'x'}]", C("")), CLIENT, "tags[0].key"},
    {"a compatibility not ECS's", TD(",'requiresCompatibilities':['EC2','LAMBDA']", C("")), INVALID,
     "requiresCompatibilities[1]"},
    {"requiresCompatibilities a string", TD(",'requiresCompatibilities':'EC2'", C("")), SERIAL,
     "requiresCompatibilities"},
    /* Task size */
    {"task cpu below 128", TD(",'cpu':'127'", C("")), CLIENT, "'cpu'"},
    {"task cpu above 192 vCPU", TD(",'cpu':'196609'", C("")), CLIENT, "'cpu'"},
    {"task cpu a fraction of a unit", TD(",'cpu':'1.1 vCPU'", C("")), CLIENT, "'cpu'"},
    {"task cpu not a number", TD(",'cpu':'lots'", C("")), CLIENT, "'cpu'"},
    {"task cpu empty", TD(",'cpu':''", C("")), CLIENT, "'cpu'"},
    {"task cpu in GB", TD(",'cpu':'1 GB'", C("")), CLIENT, "'cpu'"},
    {"task cpu with a trailing space", TD(",'cpu':'256 '", C("")), CLIENT, "'cpu'"},
    {"task cpu in units with a fraction", TD(",'cpu':'256.5'", C("")), CLIENT, "'cpu'"},
    {"task cpu negative", TD(",'cpu':-256", C("")), CLIENT, "'cpu'"},
    {"task cpu a boolean", TD(",'cpu':true", C("")), SERIAL, "cpu"},
    {"task cpu a JSON real", TD(",'cpu':256.0", C("")), SERIAL, "cpu"},
    {"task memory below 6 MiB", TD(",'memory':'5'", C("")), CLIENT, "'memory'"},
    {"task memory in vCPU", TD(",'memory':'1 vCPU'", C("")), CLIENT, "'memory'"},
    {"task memory in TB", TD(",'memory':'2 TB'", C("")), CLIENT, "'memory'"},
    {"task memory an array", TD(",'memory':[]", C("")), SERIAL, "memory"},
    {"containers' memory over the task's", TD(",'memory':'127'", CN("a", "") "," CN("b", "")),
     CLIENT, "'memory'"},
    {"a hard limit over the task's memory",
     TD(",'memory':'512'", "{'name':'a','image':'i','memory':1024,'memoryReservation':256}"),
     CLIENT, "'memory'"},
    {"containers' cpu over the task's", TD(",'cpu':'256'", C(",'cpu':257")), CLIENT,
     "containerDefinitions[].cpu"},
    /* Container name and image */
    {"name missing", TD("", "{'image':'i','memory':64}"), CLIENT, "containerDefinitions[0].name"},
    {"name with a space", TD("", CN("my app", "")), CLIENT, "containerDefinitions[0].name"},
    {"name a number", TD("", "{'name':7,'image':'i','memory':64}"), SERIAL,
     "containerDefinitions[0].name"},
    {"two containers with one name", TD("", CN("a", "") "," CN("b", "") "," CN("a", "")), CLIENT,
     "containerDefinitions[2].name"},
    {"image missing", TD("", "{'name':'app','memory':64}"), CLIENT,
     "containerDefinitions[0].image"},
    {"image empty", TD("", "{'name':'app','image':'','memory':64}"), CLIENT,
     "containerDefinitions[0].image"},
    {"image a number", TD("", "{'name':'app','image':5,'memory':64}"), SERIAL,
     "containerDefinitions[0].image"},
    /* Container cpu and memory */
    {"cpu negative", ONE(",'cpu':-1"), CLIENT, "containerDefinitions[0].cpu"},
    {"cpu a string", ONE(",'cpu':'10'"), SERIAL, "containerDefinitions[0].cpu"},
    {"memory below 6 MiB", TD("", CN("a", "") ",{'name':'b','image':'i','memory':5}"), CLIENT,
     "containerDefinitions[1].memory"},
    {"memory a string", TD("", "{'name':'b','image':'i','memory':'512'}"), SERIAL,
     "containerDefinitions[0].memory"},
    {"memory a real", TD("", "{'name':'b','image':'i','memory':512.5}"), SERIAL,
     "containerDefinitions[0].memory"},
    {"memoryReservation below 6 MiB", TD("", "{'name':'b','image':'i','memoryReservation':5}"),
     CLIENT, "containerDefinitions[0].memoryReservation"},
    {"memoryReservation over memory", ONE(",'memoryReservation':65"), CLIENT,
     "containerDefinitions[0].memoryReservation"},
    {"neither memory nor memoryReservation", TD("", C("") "," BARE), CLIENT,
     "containerDefinitions[1].memory"},
    /* essential */
    {"essential a string", ONE(",'essential':'yes'"), SERIAL, "containerDefinitions[0].essential"},
    {"no essential container",
     TD("", CN("a", ",'essential':false") "," CN("b", ",'essential':false")), CLIENT, "essential"},
    /* entryPoint, command, environment */
    {"entryPoint a string", ONE(",'entryPoint':'sh -c'"), SERIAL,
     "containerDefinitions[0].entryPoint"},
    {"command holding a number", ONE(",'command':['sleep',1]"), SERIAL,
     "containerDefinitions[0].command[1]"},
    {"environment an object", ONE(",'environment':{'A':'1'}"), SERIAL,
     "containerDefinitions[0].environment"},
    {"environment holding a string", ONE(",'environment':['A=1']"), SERIAL,
     "containerDefinitions[0].environment[0]"},
    {"environment name missing", ONE(",'environment':[{'value':'1'}]"), CLIENT,
     "containerDefinitions[0].environment[0].name"},
    {"environment name empty", ONE(",'environment':[{'name':'','value':'1'}]"), CLIENT,
     "containerDefinitions[0].environment[0].name"},
    {"environment name with '='", ONE(",'environment':[{'name':'A','value':''},{'name':'A=B'}]"),
     CLIENT, "containerDefinitions[0].environment[1].name"},
    {"environment value a number", ONE(",'environment':[{'name':'A','value':1}]"), SERIAL,
     "containerDefinitions[0].environment[0].value"},
    /* portMappings */
    {"portMappings an object", ONE(",'portMappings':{'containerPort':80}"), SERIAL,
     "containerDefinitions[0].portMappings"},
    {"containerPort missing", ONE(",'portMappings':[{'hostPort':80}]"), CLIENT,
     "containerDefinitions[0].portMappings[0].containerPort"},
    {"containerPort 0", ONE(",'portMappings':[{'containerPort':0}]"), CLIENT,
     "containerDefinitions[0].portMappings[0].containerPort"},
    {"containerPort 65536", ONE(",'portMappings':[{'containerPort':65536}]"), CLIENT,
     "containerDefinitions[0].portMappings[0].containerPort"},
    {"containerPort a string", ONE(",'portMappings':[{'containerPort':'80'}]"), SERIAL,
     "containerDefinitions[0].portMappings[0].containerPort"},
    {"hostPort negative", ONE(",'portMappings':[{'containerPort':80,'hostPort':-1}]"), CLIENT,
     "containerDefinitions[0].portMappings[0].hostPort"},
    {"hostPort 65536", ONE(",'portMappings':[{'containerPort':80,'hostPort':65536}]"), CLIENT,
     "containerDefinitions[0].portMappings[0].hostPort"},
    {"protocol sctp", ONE(",'portMappings':[{'containerPort':80,'protocol':'sctp'}]"), INVALID,
     "containerDefinitions[0].portMappings[0].protocol"},
    {"protocol in capitals", ONE(",'portMappings':[{'containerPort':80,'protocol':'TCP'}]"),
     INVALID, "containerDefinitions[0].portMappings[0].protocol"},
    {"a port range", ONE(",'portMappings':[{'containerPortRange':'8000-8010'}]"), INVALID,
     "containerDefinitions[0].portMappings[0].containerPortRange"},
    {"a port mapping's name a number", ONE(",'portMappings':[{'containerPort':80,'name':1}]"),
     SERIAL, "containerDefinitions[0].portMappings[0].name"},
    {"appProtocol not ECS's", ONE(",'portMappings':[{'containerPort':80,'appProtocol':'ftp'}]"),
     INVALID, "containerDefinitions[0].portMappings[0].appProtocol"},
    {"a containerPort twice in a container",
     ONE(",'portMappings':[{'containerPort':80},{'containerPort':80,'protocol':'tcp'}]"), CLIENT,
     "containerDefinitions[0].portMappings[1].containerPort"},
    {"a containerPort twice in the task",
     TD("", CN("a", ",'portMappings':[{'containerPort':80}]") "," CN(
                "b", ",'portMappings':[{'containerPort':80}]")),
     CLIENT, "containerDefinitions[1].portMappings[0].containerPort"},
    {"a hostPort twice in the task",
     TD("", CN("a", ",'portMappings':[{'containerPort':80,'hostPort':8080}]") "," CN(
                "b", ",'portMappings':[{'containerPort':81,'hostPort':8080}]")),
     CLIENT, "containerDefinitions[1].portMappings[0].hostPort"},
    /* Timeouts */
    {"stopTimeout over 120", ONE(",'stopTimeout':121"), CLIENT,
     "containerDefinitions[0].stopTimeout"},
    {"stopTimeout negative", ONE(",'stopTimeout':-1"), CLIENT,
     "containerDefinitions[0].stopTimeout"},
    {"stopTimeout a string", ONE(",'stopTimeout':'30'"), SERIAL,
     "containerDefinitions[0].stopTimeout"},
    {"startTimeout negative", ONE(",'startTimeout':-1"), CLIENT,
     "containerDefinitions[0].startTimeout"},
    {"startTimeout a string", ONE(",'startTimeout':'x'"), SERIAL,
     "containerDefinitions[0].startTimeout"},
    /* healthCheck */
    {"healthCheck an array", ONE(",'healthCheck':[]"), SERIAL,
     "containerDefinitions[0].healthCheck"},
    {"healthCheck without a command", ONE(",'healthCheck':{'interval':30}"), CLIENT,
     "containerDefinitions[0].healthCheck.command"},
    {"healthCheck command empty", ONE(",'healthCheck':{'command':[]}"), CLIENT,
     "containerDefinitions[0].healthCheck.command"},
    {"healthCheck command without CMD", ONE(",'healthCheck':{'command':['curl','localhost']}"),
     INVALID, "containerDefinitions[0].healthCheck.command[0]"},
    {"healthCheck CMD alone", ONE(",'healthCheck':{'command':['CMD']}"), CLIENT,
     "containerDefinitions[0].healthCheck.command"},
    {"healthCheck command a string", ONE(",'healthCheck':{'command':'CMD-SHELL true'}"), SERIAL,
     "containerDefinitions[0].healthCheck.command"},
    {"healthCheck interval under 5", ONE(",'healthCheck':{'command':['NONE'],'interval':4}"),
     CLIENT, "containerDefinitions[0].healthCheck.interval"},
    {"healthCheck interval over 300", ONE(",'healthCheck':{'command':['NONE'],'interval':301}"),
     CLIENT, "containerDefinitions[0].healthCheck.interval"},
    {"healthCheck interval a string", ONE(",'healthCheck':{'command':['NONE'],'interval':'30'}"),
     SERIAL, "containerDefinitions[0].healthCheck.interval"},
    {"healthCheck timeout under 2", ONE(",'healthCheck':{'command':['NONE'],'timeout':1}"), CLIENT,
     "containerDefinitions[0].healthCheck.timeout"},
    {"healthCheck timeout over 60", ONE(",'healthCheck':{'command':['NONE'],'timeout':61}"), CLIENT,
     "containerDefinitions[0].healthCheck.timeout"},
    {"healthCheck retries 0", ONE(",'healthCheck':{'command':['NONE'],'retries':0}"), CLIENT,
     "containerDefinitions[0].healthCheck.retries"},
    {"healthCheck retries over 10", ONE(",'healthCheck':{'command':['NONE'],'retries':11}"), CLIENT,
     "containerDefinitions[0].healthCheck.retries"},
    {"healthCheck startPeriod negative",
     ONE(",'healthCheck':{'command':['NONE'],'startPeriod':-1}"), CLIENT,
     "containerDefinitions[0].healthCheck.startPeriod"},
    {"healthCheck startPeriod over 300",
     ONE(",'healthCheck':{'command':['NONE'],'startPeriod':301}"), CLIENT,
     "containerDefinitions[0].healthCheck.startPeriod"},
    /* dependsOn */
    {"dependsOn a string", ONE(",'dependsOn':'db'"), SERIAL, "containerDefinitions[0].dependsOn"},
    {"dependsOn without a condition",
     TD("", CN("db", "") "," CN("app", ",'dependsOn':[{'containerName':'db'}]")), CLIENT,
     "containerDefinitions[1].dependsOn[0].condition"},
    {"dependsOn a condition not ECS's",
     TD("", CN("db", "") "," CN("app", ",'dependsOn':[{'containerName':'db','condition':'UP'}]")),
     INVALID, "containerDefinitions[1].dependsOn[0].condition"},
    {"dependsOn an unknown container",
     ONE(",'dependsOn':[{'containerName':'db','condition':'START'}]"), CLIENT,
     "containerDefinitions[0].dependsOn[0].containerName"},
    {"dependsOn itself", ONE(",'dependsOn':[{'containerName':'app','condition':'START'}]"), CLIENT,
     "containerDefinitions[0].dependsOn[0].containerName"},
    /* The members only type-checked */
    {"links a string", ONE(",'links':'db'"), SERIAL, "containerDefinitions[0].links"},
    {"logConfiguration an array", ONE(",'logConfiguration':[]"), SERIAL,
     "containerDefinitions[0].logConfiguration"},
    {"logConfiguration without a driver", ONE(",'logConfiguration':{'options':{}}"), CLIENT,
     "containerDefinitions[0].logConfiguration.logDriver"},
    {"mountPoints readOnly a string", ONE(",'mountPoints':[{'readOnly':'no'}]"), SERIAL,
     "containerDefinitions[0].mountPoints[0].readOnly"},
    {"volumesFrom an object", ONE(",'volumesFrom':{}"), SERIAL,
     "containerDefinitions[0].volumesFrom"},
    {"a ulimit without hardLimit", ONE(",'ulimits':[{'name':'nofile','softLimit':1}]"), CLIENT,
     "containerDefinitions[0].ulimits[0].hardLimit"},
    {"workingDirectory a number", ONE(",'workingDirectory':5"), SERIAL,
     "containerDefinitions[0].workingDirectory"},
    {"user a number", ONE(",'user':0"), SERIAL, "containerDefinitions[0].user"},
};

static void test_refused(void **state)
{
    (void)state;
    int wrong = 0;
    for (size_t i = 0; i < N(refuse_cases); i++) {
        const struct refuse_case *c = &refuse_cases[i];
        struct api_error err;
        int rc = validate_q(c->json, &err);
        if (rc == 0) {
            print_error("refuse case '%s' accepted\n", c->why);
            wrong++;
        } else if (rc != -1 || !err.type || strcmp(err.type, c->type) != 0 ||
                   !strstr(err.message, c->needle) || err.status != 400) {
            print_error("refuse case '%s': want %s naming %s, got %d %s: %s\n", c->why, c->type,
                        c->needle, err.status, err.type ? err.type : "(none)", err.message);
            wrong++;
        }
    }
    assert_int_equal(wrong, 0);
}

/* The main messages word for word: what API clients see. */
static void test_messages(void **state)
{
    (void)state;
    static const struct {
        const char *json, *message;
    } cases[] = {
        {"{'containerDefinitions':[" C("") "]}", "Missing required parameter: family"},
        {TD("", "{'name':'app','image':'i','memory':'512'}"),
         "Invalid type for parameter containerDefinitions[0].memory: expected integer, got "
         "string"},
        {ONE(",'stopTimeout':121"),
         "Invalid value for containerDefinitions[0].stopTimeout: 121 (it must be from 0 to 120)"},
        {ONE(",'portMappings':[{'containerPort':80,'protocol':'sctp'}]"),
         "Invalid value for containerDefinitions[0].portMappings[0].protocol: 'sctp' (it must be "
         "one of: tcp, udp)"},
        {TD("", C("") "," BARE),
         "Invalid setting for container 'app' (containerDefinitions[1].memory). At least one of "
         "'memory' or 'memoryReservation' must be specified."},
        {TD("", CN("a", ",'essential':false")),
         "A task definition must have at least one essential container (every "
         "containerDefinitions[].essential is false)."},
        {TD("", CN("a", "") "," CN("a", "")),
         "Duplicate container name 'a': containerDefinitions[0].name and "
         "containerDefinitions[1].name"},
        {TD(",'cpu':'64'", C("")),
         "Invalid 'cpu' setting for task: '64' (cpu is CPU units from 128 to 196608, as \"1024\", "
         "or vCPUs, as \"1 vCPU\")"},
        {ONE(",'portMappings':[{'containerPort':80,'hostPort':8080},"
             "{'containerPort':81,'hostPort':8080}]"),
         "Duplicate port: containerDefinitions[0].portMappings[1].hostPort 8080/tcp is already "
         "mapped by containerDefinitions[0].portMappings[0]"},
        {TD("",
            CN("a",
               ",'portMappings':[{'containerPort':80,'hostPort':8080},{'containerPort':"
               "81,'hostPort':9090,'protocol':'udp'}]") "," CN("b", ",'portMappings':[{'"
                                                                    "containerPort':82,'hostPort':"
                                                                    "9090},{'containerPort':83,"
                                                                    "'hostPort':9090,'protocol':'"
                                                                    "udp'}]")),
         "Duplicate port: containerDefinitions[1].portMappings[1].hostPort 9090/udp is already "
         "mapped by containerDefinitions[0].portMappings[1]"},
        {TD("", CN("a", ",'portMappings':[{'containerPort':81},{'containerPort':80}]") "," CN(
                    "b", ",'portMappings':[{'containerPort':80,'hostPort':0}]")),
         "Duplicate port: containerDefinitions[1].portMappings[0].containerPort 80/tcp is already "
         "mapped by containerDefinitions[0].portMappings[1]"},
        {ONE(",'portMappings':[{'containerPortRange':'1-2'}]"),
         "containerDefinitions[0].portMappings[0].containerPortRange is not supported by Gantry"},
    };
    int wrong = 0;
    for (size_t i = 0; i < N(cases); i++) {
        struct api_error err;
        if (validate_q(cases[i].json, &err) != -1 || strcmp(err.message, cases[i].message) != 0) {
            print_error("case %zu:\n  want %s\n  got  %s\n", i, cases[i].message, err.message);
            wrong++;
        }
    }
    assert_int_equal(wrong, 0);
}

static void test_not_json_object(void **state)
{
    (void)state;
    struct api_error err;
    assert_int_equal(taskdef_validate(NULL, 0, &err), -1);
    assert_string_equal(err.type, SERIAL);
    json_t *s = json_string("family");
    assert_int_equal(taskdef_validate(s, 8, &err), -1);
    assert_string_equal(err.type, SERIAL);
    assert_non_null(strstr(err.message, "got string"));
    json_decref(s);
}

/* json_loads refuses \u0000 by default, but a caller may decode with JSON_ALLOW_NUL. */
static void test_nul_in_string(void **state)
{
    (void)state;
    json_t *in = json_q(ONE(",'command':['ok']"));
    json_t *cmd =
        json_object_get(json_array_get(json_object_get(in, "containerDefinitions"), 0), "command");
    struct api_error err;
    assert_int_equal(taskdef_validate(in, 100, &err), 0);
    json_array_append_new(cmd, json_stringn("a\0b", 3));
    assert_int_equal(taskdef_validate(in, 100, &err), -1);
    assert_string_equal(err.type, INVALID);
    assert_non_null(strstr(err.message, "containerDefinitions[0].command[1]"));
    json_decref(in);
}

/* ---- The documentation's examples -------------------------------------------------------- */

static void test_ecs_examples(void **state)
{
    (void)state;
    static const char *const examples[] = {
        /* The CLI reference's register-task-definition example. */
        "{'family':'sleep360','containerDefinitions':[{'name':'sleep','image':'busybox','cpu':10,"
        "'command':['sleep','360'],'memory':10,'essential':true}]}",
        /* A Fargate web server, as the developer guide's examples are written. */
        "{'family':'webserver','networkMode':'awsvpc','requiresCompatibilities':['FARGATE'],"
        "'cpu':'256','memory':'512','executionRoleArn':'arn:aws:iam::123456789012:role/"
        "ecsTaskExecutionRole','runtimePlatform':{'operatingSystemFamily':'LINUX'},"
        "'containerDefinitions':[{'name':'nginx','image':'public.ecr.aws/nginx/nginx:latest',"
        "'essential':true,'portMappings':[{'containerPort':80,'hostPort':80,'protocol':'tcp'}],"
        "'logConfiguration':{'logDriver':'awslogs','options':{'awslogs-group':'/ecs/web',"
        "'awslogs-region':'us-east-1','awslogs-stream-prefix':'ecs'}}}]}",
        /* An EC2 task with a health check and two containers, one waiting on the other. */
        "{'family':'app','containerDefinitions':[{'name':'redis','image':'redis:7','memory':128,"
        "'essential':false,'healthCheck':{'command':['CMD-SHELL','redis-cli ping || exit 1'],"
        "'interval':10,'timeout':5,'retries':3,'startPeriod':10}},{'name':'web',"
        "'image':'my/web','memoryReservation':256,'cpu':512,'environment':[{'name':'REDIS',"
        "'value':'localhost:6379'}],'portMappings':[{'containerPort':8080}],'dependsOn':"
        "[{'containerName':'redis','condition':'HEALTHY'}],'stopTimeout':30}]}",
    };
    for (size_t i = 0; i < N(examples); i++) {
        struct api_error err;
        if (validate_q(examples[i], &err) != 0)
            fail_msg("example %zu refused: %s: %s", i, err.type, err.message);
    }
}

/* ---- Limits ------------------------------------------------------------------------------ */

/* A definition whose text is exactly n bytes long, padded in an environment value. */
static char *definition_of_length(size_t n)
{
    static const char head[] = "{\"family\":\"big\",\"containerDefinitions\":[{\"name\":\"app\","
                               "\"image\":\"busybox\",\"memory\":64,\"environment\":[{\"name\":"
                               "\"PAD\",\"value\":\"";
    static const char tail[] = "\"}]}]}";
    size_t fixed = strlen(head) + strlen(tail);
    assert_true(n > fixed);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, head, strlen(head));
    memset(s + strlen(head), 'x', n - fixed);
    memcpy(s + n - strlen(tail), tail, strlen(tail) + 1);
    assert_int_equal(strlen(s), n);
    return s;
}

/* Every mapping takes a host port of the task's own: 100 fit in a task, 101 are refused. */
static void test_port_mapping_limit(void **state)
{
    (void)state;
    for (int n = 100; n <= 101; n++) {
        json_t *maps = json_array();
        for (int p = 0; p < n; p++)
            json_array_append_new(maps, json_pack("{s:i}", "containerPort", 1000 + p));
        json_t *td =
            json_pack("{s:s, s:[{s:s, s:s, s:i, s:o}]}", "family", "ports", "containerDefinitions",
                      "name", "a", "image", "i", "memory", 64, "portMappings", maps);
        struct api_error err = {0};
        int rc = taskdef_validate(td, 0, &err);
        json_decref(td);
        if (n == 100) {
            assert_int_equal(rc, 0);
            continue;
        }
        assert_int_equal(rc, -1);
        assert_string_equal(err.type, CLIENT);
        assert_non_null(strstr(err.message, "Too many port mappings: 101"));
    }
}

static void test_size_limit(void **state)
{
    (void)state;
    static const struct {
        size_t length;
        bool ok;
        const char *needle;
    } cases[] = {
        {32768, true, NULL},
        {32769, false, "Actual length: '32769'. Max allowed length is '32768' bytes."},
        {33 * 1024, false, "Actual length: '33792'. Max allowed length is '32768' bytes."},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char *text = definition_of_length(cases[i].length);
        struct api_error err = {0};
        int rc = validate_q(text, &err);
        free(text);
        if (cases[i].ok) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(err.type, CLIENT);
            assert_non_null(strstr(err.message, cases[i].needle));
        }
    }
}

static json_t *with_containers(int n)
{
    json_t *defs = json_array();
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        json_array_append_new(
            defs, json_pack("{s:s,s:s,s:i}", "name", name, "image", "busybox", "memory", 16));
    }
    return json_pack("{s:s,s:o}", "family", "many", "containerDefinitions", defs);
}

static void test_container_limit(void **state)
{
    (void)state;
    struct api_error err;
    json_t *ten = with_containers(10);
    assert_int_equal(taskdef_validate(ten, 1000, &err), 0);
    json_decref(ten);
    json_t *eleven = with_containers(11);
    assert_int_equal(taskdef_validate(eleven, 1000, &err), -1);
    assert_string_equal(err.type, CLIENT);
    assert_string_equal(err.message, "Too many containers: containerDefinitions holds 11 (a task "
                                     "definition holds at most 10 container definitions)");
    json_decref(eleven);
}

static void test_valid_name(void **state)
{
    (void)state;
    char longest[TASKDEF_NAME_MAX + 2];
    memset(longest, 'n', TASKDEF_NAME_MAX);
    longest[TASKDEF_NAME_MAX] = '\0';
    assert_true(taskdef_valid_name(longest));
    longest[TASKDEF_NAME_MAX] = 'n';
    longest[TASKDEF_NAME_MAX + 1] = '\0';
    assert_false(taskdef_valid_name(longest));
    static const struct {
        const char *name;
        bool want;
    } cases[] = {
        {"a", true},    {"web-app_2", true}, {"A-Z_a-z_0-9", true}, {"", false},
        {"a b", false}, {"a.b", false},      {"a/b", false},        {"a:1", false},
        {"é", false},   {"-", true},         {"a\tb", false},
    };
    for (size_t i = 0; i < N(cases); i++)
        if (taskdef_valid_name(cases[i].name) != cases[i].want)
            fail_msg("'%s': want %d", cases[i].name, cases[i].want);
    assert_false(taskdef_valid_name(NULL));
}

/* ---- The stored definition --------------------------------------------------------------- */

static void test_build(void **state)
{
    (void)state;
    json_t *in = json_q(
        "{'family':'webserver','cpu':'1 vCPU','memory':'2 GB','networkMode':'awsvpc',"
        "'requiresCompatibilities':['FARGATE'],'tags':[{'key':'team','value':'web'}],"
        "'taskRoleArn':null,'containerDefinitions':[{'name':'web','image':'nginx','cpu':null,"
        "'portMappings':[{'containerPort':80},{'containerPort':53,'hostPort':5353,'protocol':"
        "'udp'}],'healthCheck':{'command':['CMD-SHELL','curl -f localhost'],'retries':5}},"
        "{'name':'side','image':'busybox','cpu':128,'memory':64,'essential':false,"
        "'environment':[{'name':'A','value':'1'}]}]}");
    json_t *copy = json_deep_copy(in);
    json_t *want =
        json_q("{'family':'webserver','cpu':'1024','memory':'2048','networkMode':'awsvpc',"
               "'requiresCompatibilities':['FARGATE'],'containerDefinitions':[{'name':'web',"
               "'image':'nginx','cpu':0,'essential':true,'portMappings':[{'containerPort':80,"
               "'protocol':'tcp'},{'containerPort':53,'hostPort':5353,'protocol':'udp'}],"
               "'environment':[],'mountPoints':[],'volumesFrom':[],'healthCheck':{'command':"
               "['CMD-SHELL','curl -f localhost'],'retries':5,'interval':30,'timeout':5}},"
               "{'name':'side','image':'busybox','cpu':128,'memory':64,'essential':false,"
               "'environment':[{'name':'A','value':'1'}],'portMappings':[],'mountPoints':[],"
               "'volumesFrom':[]}],"
               "'taskDefinitionArn':'arn:aws:ecs:local:000000000000:task-definition/webserver:3',"
               "'revision':3,'status':'ACTIVE','compatibilities':['PROCESS','DOCKER'],"
               "'registeredAt':1700000000.5,'volumes':[],'placementConstraints':[],"
               "'requiresAttributes':[]}");
    struct api_error err;
    assert_int_equal(taskdef_validate(in, 100, &err), 0);
    json_t *td = taskdef_build(in, "arn:aws:ecs:local:000000000000:task-definition/webserver:3", 3,
                               1700000000.5);
    assert_non_null(td);
    if (!json_equal(td, want)) {
        char *got = json_dumps(td, JSON_SORT_KEYS);
        print_error("built: %s\n", got);
        free(got);
        fail_msg("taskdef_build's result differs from the expected definition");
    }
    assert_true(json_equal(in, copy)); /* the input is left alone */
    /* What is stored registers again as it is (re-registering a described definition). */
    assert_int_equal(taskdef_validate(td, 100, &err), 0);
    json_decref(td);
    json_decref(want);
    json_decref(copy);
    json_decref(in);
}

static void test_build_keeps_given_values(void **state)
{
    (void)state;
    json_t *in = json_q("{'family':'f','volumes':[{'name':'v'}],'containerDefinitions':[{'name':"
                        "'a','image':'i','memory':6,'healthCheck':{'command':['NONE'],"
                        "'interval':5,'timeout':2,'retries':1}}]}");
    json_t *td = taskdef_build(in, "arn", 1, 0);
    json_t *health = json_object_get(json_array_get(json_object_get(td, "containerDefinitions"), 0),
                                     "healthCheck");
    assert_int_equal(json_integer_value(json_object_get(health, "interval")), 5);
    assert_int_equal(json_integer_value(json_object_get(health, "timeout")), 2);
    assert_int_equal(json_integer_value(json_object_get(health, "retries")), 1);
    assert_int_equal(json_array_size(json_object_get(td, "volumes")), 1);
    assert_null(json_object_get(td, "cpu"));
    assert_null(json_object_get(td, "memory"));
    assert_null(json_object_get(td, "requiresCompatibilities"));
    json_decref(td);
    json_decref(in);
}

/* ---- Reservations and launch types ------------------------------------------------------- */

static void test_reservation(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int cpu, memory;
    } cases[] = {
        {"{'cpu':'256','memory':'512','containerDefinitions':[{'cpu':10,'memory':64}]}", 256, 512},
        {"{'containerDefinitions':[{'cpu':10,'memory':64},{'cpu':20,'memoryReservation':32}]}", 30,
         96},
        {"{'containerDefinitions':[{'memory':128,'memoryReservation':64}]}", 0, 64},
        {"{'cpu':'512','containerDefinitions':[{'cpu':10,'memory':64},{'memory':100}]}", 512, 164},
        {"{'memory':'1024','containerDefinitions':[{'cpu':10},{'cpu':5}]}", 15, 1024},
        {"{'cpu':'1 vCPU','memory':'2 GB','containerDefinitions':[]}", 1024, 2048},
        {"{'cpu':'0.25 vCPU','memory':'0.5 GB'}", 256, 512},
        {"{'cpu':2048,'memory':4096}", 2048, 4096},
        {"{'cpu':'lots','memory':'more','containerDefinitions':[{'cpu':7,'memory':9}]}", 7, 9},
        {"{'containerDefinitions':[{'cpu':-5,'memory':-9},{'cpu':3,'memory':6}]}", 3, 6},
        {"{}", 0, 0},
    };
    int wrong = 0;
    for (size_t i = 0; i < N(cases); i++) {
        json_t *td = json_q(cases[i].json);
        int cpu = -1, memory = -1;
        taskdef_reservation(td, &cpu, &memory);
        if (cpu != cases[i].cpu || memory != cases[i].memory) {
            print_error("%s: want %d/%d, got %d/%d\n", cases[i].json, cases[i].cpu, cases[i].memory,
                        cpu, memory);
            wrong++;
        }
        json_decref(td);
    }
    assert_int_equal(wrong, 0);
}

static void test_reservation_of_built(void **state)
{
    (void)state;
    json_t *in = json_q(TD(",'cpu':'0.5 vCPU'", CN("a", ",'cpu':100") "," CN("b", "")));
    json_t *td = taskdef_build(in, "arn", 1, 0);
    int cpu = 0, memory = 0;
    taskdef_reservation(td, &cpu, &memory);
    assert_int_equal(cpu, 512);
    assert_int_equal(memory, 128);
    json_decref(td);
    json_decref(in);
}

static void test_default_launch_type(void **state)
{
    (void)state;
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{}", "PROCESS"},
        {"{'requiresCompatibilities':[]}", "PROCESS"},
        {"{'requiresCompatibilities':['PROCESS']}", "PROCESS"},
        {"{'requiresCompatibilities':['DOCKER']}", "DOCKER"},
        {"{'requiresCompatibilities':['EC2']}", "DOCKER"},
        {"{'requiresCompatibilities':['FARGATE','EC2']}", "DOCKER"},
        {"{'requiresCompatibilities':['DOCKER','PROCESS']}", "PROCESS"},
        {"{'requiresCompatibilities':['PROCESS','DOCKER']}", "PROCESS"},
        {"{'requiresCompatibilities':['EXTERNAL']}", "PROCESS"},
        {"{'requiresCompatibilities':['EC2','EXTERNAL']}", "PROCESS"},
    };
    int wrong = 0;
    for (size_t i = 0; i < N(cases); i++) {
        json_t *td = json_q(cases[i].json);
        const char *got = taskdef_default_launch_type(td);
        if (strcmp(got, cases[i].want) != 0) {
            print_error("%s: want %s, got %s\n", cases[i].json, cases[i].want, got);
            wrong++;
        }
        json_decref(td);
    }
    assert_int_equal(wrong, 0);
    assert_string_equal(taskdef_default_launch_type(NULL), "PROCESS");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_not_json_object),
        cmocka_unit_test(test_port_mapping_limit),
        cmocka_unit_test(test_nul_in_string),
        cmocka_unit_test(test_ecs_examples),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_container_limit),
        cmocka_unit_test(test_valid_name),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_build_keeps_given_values),
        cmocka_unit_test(test_reservation),
        cmocka_unit_test(test_reservation_of_built),
        cmocka_unit_test(test_default_launch_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
