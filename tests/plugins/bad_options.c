/*
 * Test plugins with one broken option table each, chosen at build time
 * by CASE_<name>: dup (a name twice), type (an unknown type), default (a
 * default that does not parse), bounds (a default out of bounds), enum (a
 * default not among the choices), name (a name with '-'), minmax (min
 * above max).
 */

#include <thinkgate/plugin.h>

static int bad_options_start(tg_req_t *req);

static const tg_option_t  bad_options[] = {
    { "n", TG_OPT_INT, "8", 1, 64, NULL, "traces" },
#if defined(CASE_dup)
    { "n", TG_OPT_INT, "4", 1, 64, NULL, "again" },
#elif defined(CASE_type)
    { "weird", (tg_opt_type_t) 42, NULL, 0, 0, NULL, "no such type" },
#elif defined(CASE_default)
    { "k", TG_OPT_INT, "two", 1, 8, NULL, "not a number" },
#elif defined(CASE_bounds)
    { "k", TG_OPT_INT, "100", 1, 8, NULL, "too big" },
#elif defined(CASE_enum)
    { "mode", TG_OPT_ENUM, "fuzzy", 0, 0, "exact|none", "not a choice" },
#elif defined(CASE_name)
    { "top-k", TG_OPT_INT, "1", 1, 8, NULL, "bad name" },
#elif defined(CASE_minmax)
    { "k", TG_OPT_DOUBLE, "1", 10, 1, NULL, "empty range" },
#endif
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

TG_PLUGIN_EXPORT = {
    TG_PLUGIN_HEADER,
    .name = "probe",
    .options = bad_options,
    .start = bad_options_start,
};


static int
bad_options_start(tg_req_t *req)
{
    (void) req;
    return 0;
}
