#include "config/yaml_tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct reader {
    yaml_parser_t parser;
    struct arena *arena;
    char *err;
    size_t errlen;
    bool failed;
};

static void fail_at(struct reader *r, yaml_mark_t mark, const char *message)
{
    if (r->failed)
        return;
    r->failed = true;
    snprintf(r->err, r->errlen, "%zu:%zu: %s", mark.line + 1, mark.column + 1, message);
}

static bool next_event(struct reader *r, yaml_event_t *ev)
{
    if (yaml_parser_parse(&r->parser, ev))
        return true;
    const char *problem = r->parser.problem ? r->parser.problem : "unreadable input";
    char msg[256];
    if (r->parser.context)
        snprintf(msg, sizeof msg, "syntax error: %s %s", problem, r->parser.context);
    else
        snprintf(msg, sizeof msg, "syntax error: %s", problem);
    yaml_mark_t mark = r->parser.problem_mark;
    if (r->parser.error == YAML_READER_ERROR) {
        mark.line = 0; /* the reader knows only a byte offset */
        mark.column = 0;
        snprintf(msg, sizeof msg, "unreadable file: %s at byte %zu", problem,
                 r->parser.problem_offset);
    }
    fail_at(r, mark, msg);
    return false;
}

static struct ynode *new_node(struct reader *r, enum ynode_kind kind, yaml_mark_t mark)
{
    struct ynode *n = arena_alloc(r->arena, sizeof *n);
    if (!n) {
        fail_at(r, mark, "out of memory");
        return NULL;
    }
    n->kind = kind;
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    return n;
}

static int push_item(struct reader *r, struct ynode *parent, struct ynode *child, size_t *cap)
{
    if (parent->n_items == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        struct ynode **items = arena_alloc(r->arena, ncap * sizeof *items);
        if (!items)
            return -1;
        if (parent->n_items)
            memcpy(items, parent->items, parent->n_items * sizeof *items);
        parent->items = items;
        *cap = ncap;
    }
    parent->items[parent->n_items++] = child;
    return 0;
}

static struct ynode *read_node(struct reader *r, yaml_event_t *ev, int depth);

static struct ynode *read_collection(struct reader *r, yaml_event_t *start, int depth)
{
    bool is_map = start->type == YAML_MAPPING_START_EVENT;
    struct ynode *node = new_node(r, is_map ? YNODE_MAP : YNODE_SEQ, start->start_mark);
    yaml_event_type_t end = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    size_t cap = 0;
    if (depth > YAML_MAX_DEPTH) {
        fail_at(r, start->start_mark, "nesting deeper than 32 levels");
        return NULL;
    }
    while (node) {
        yaml_event_t ev;
        if (!next_event(r, &ev))
            return NULL;
        if (ev.type == end) {
            yaml_event_delete(&ev);
            return node;
        }
        struct ynode *child = read_node(r, &ev, depth + 1);
        yaml_event_delete(&ev);
        if (!child || push_item(r, node, child, &cap) < 0)
            return NULL;
    }
    return NULL;
}

static struct ynode *read_node(struct reader *r, yaml_event_t *ev, int depth)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        if (ev->data.scalar.anchor) {
            fail_at(r, ev->start_mark, "YAML anchors and aliases are not supported");
            return NULL;
        }
        struct ynode *n = new_node(r, YNODE_SCALAR, ev->start_mark);
        if (!n)
            return NULL;
        n->value =
            arena_strndup(r->arena, (const char *)ev->data.scalar.value, ev->data.scalar.length);
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (!n->value || strlen(n->value) != ev->data.scalar.length) {
            fail_at(r, ev->start_mark, "a value holds a NUL character");
            return NULL;
        }
        return n;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor != NULL
                                                  : ev->data.mapping_start.anchor != NULL) {
            fail_at(r, ev->start_mark, "YAML anchors and aliases are not supported");
            return NULL;
        }
        return read_collection(r, ev, depth);
    case YAML_ALIAS_EVENT:
        fail_at(r, ev->start_mark, "YAML anchors and aliases are not supported");
        return NULL;
    default:
        fail_at(r, ev->start_mark, "unexpected YAML event");
        return NULL;
    }
}

/* Reads one document; the stream's events around it are checked here. */
static struct ynode *read_stream(struct reader *r)
{
    yaml_event_t ev;
    struct ynode *root = NULL;
    if (!next_event(r, &ev)) /* STREAM-START */
        return NULL;
    yaml_event_delete(&ev);
    if (!next_event(r, &ev))
        return NULL;
    if (ev.type == YAML_STREAM_END_EVENT) { /* an empty file */
        root = new_node(r, YNODE_MAP, ev.start_mark);
        yaml_event_delete(&ev);
        return root;
    }
    yaml_event_delete(&ev); /* DOCUMENT-START */
    if (!next_event(r, &ev))
        return NULL;
    root = read_node(r, &ev, 1);
    yaml_event_delete(&ev);
    if (!root || !next_event(r, &ev)) /* DOCUMENT-END */
        return NULL;
    yaml_event_delete(&ev);
    if (!next_event(r, &ev))
        return NULL;
    if (ev.type != YAML_STREAM_END_EVENT) {
        fail_at(r, ev.start_mark, "only one YAML document per file is supported");
        root = NULL;
    }
    yaml_event_delete(&ev);
    return root;
}

struct ynode *yaml_tree_parse(struct arena *arena, const char *text, size_t len, char *err,
                              size_t errlen)
{
    struct reader r = {.arena = arena, .err = err, .errlen = errlen};
    if (len > YAML_MAX_FILE_SIZE) {
        snprintf(err, errlen, "1:1: file larger than %d bytes", YAML_MAX_FILE_SIZE);
        return NULL;
    }
    if (!yaml_parser_initialize(&r.parser)) {
        snprintf(err, errlen, "1:1: out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);
    struct ynode *root = read_stream(&r);
    yaml_parser_delete(&r.parser);
    return r.failed ? NULL : root;
}

bool ynode_is_null(const struct ynode *n)
{
    if (n->kind != YNODE_SCALAR || !n->plain)
        return false;
    return n->value[0] == '\0' || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0 ||
           strcmp(n->value, "Null") == 0 || strcmp(n->value, "NULL") == 0;
}
