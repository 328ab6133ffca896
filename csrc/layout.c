/*
 * layout.c: the sizes and field offsets of glue.h's types as this C compiler
 * lays them out, so a test can hold src/raw.rs to them (src/raw.rs, tests).
 */
#include "glue.h"

#include <string.h>

/* One row per type, field and enumerator: its name, and its size, offset
 * or value (a negative value wraps, as (size_t)-2 for -2). */
#define TYPE(t) {#t, sizeof(t)}
#define FIELD(t, f) {#t "." #f, offsetof(t, f)}
#define VALUE(e) {#e, (size_t)(e)}

static const struct {
    const char *name;
    size_t value;
} LAYOUT[] = {
    TYPE(pim_status),
    VALUE(PIM_OK),
    VALUE(PIM_ERR),
    TYPE(pim_borrow_verdict),
    VALUE(PIM_BORROW_FREE),
    VALUE(PIM_BORROW_MOVED),
    VALUE(PIM_BORROW_PINNED),
    TYPE(pim_result_kind),
    VALUE(PIM_ARRAY),
    VALUE(PIM_OTHER),
    VALUE(PIM_SCALAR),
    VALUE(PIM_NONE),
    VALUE(PIM_STR),
    VALUE(PIM_TUPLE),
    VALUE(PIM_LIST),
    VALUE(PIM_DICT),
    VALUE(PIM_BIG_INT),
    VALUE(PIM_ARRAY_SUBCLASS),
    TYPE(pim_error),
    FIELD(pim_error, type_name),
    FIELD(pim_error, message),
    FIELD(pim_error, traceback),
    FIELD(pim_error, classes),
    TYPE(pim_array_view),
    FIELD(pim_array_view, obj),
    FIELD(pim_array_view, data),
    FIELD(pim_array_view, ndim),
    FIELD(pim_array_view, shape),
    FIELD(pim_array_view, strides),
    FIELD(pim_array_view, itemsize),
    FIELD(pim_array_view, kind),
    FIELD(pim_array_view, byteswapped),
    FIELD(pim_array_view, sole_owner),
    FIELD(pim_array_view, scalar),
};

size_t pim_layout(const char *name) {
    size_t i;
    for (i = 0; i < sizeof LAYOUT / sizeof LAYOUT[0]; i++) {
        if (strcmp(LAYOUT[i].name, name) == 0) {
            return LAYOUT[i].value;
        }
    }
    return (size_t)-1;
}
