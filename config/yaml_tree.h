/* A YAML (or JSON) file read into a small tree of positioned nodes, so that every later error can
 * name file:line:col. Anchors and aliases are refused (they make "billion laughs" documents), as
 * are several documents in one file, nesting deeper than YAML_MAX_DEPTH and files over
 * YAML_MAX_FILE_SIZE. All memory comes from the caller's arena. */
#ifndef GANTRY_CONFIG_YAML_TREE_H
#define GANTRY_CONFIG_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/arena.h"

enum { YAML_MAX_DEPTH = 32, YAML_MAX_FILE_SIZE = 1024 * 1024 };

enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
    enum ynode_kind kind;
    int line, col;        /* 1-based */
    const char *value;    /* scalars: NUL-terminated text */
    bool plain;           /* scalars: unquoted (so `~` and an empty value mean null) */
    struct ynode **items; /* maps: key, value, key, value...; sequences: the items */
    size_t n_items;
};

/* Parses text; on failure returns NULL and writes "LINE:COL: message" into err. An empty document
 * parses to an empty map. */
struct ynode *yaml_tree_parse(struct arena *arena, const char *text, size_t len, char *err,
                              size_t errlen);
bool ynode_is_null(const struct ynode *n);

#endif
