/*
 * Recorded traces: one JSON object a line (gzipped or not) with model,
 * problem, sample_id, completion_tokens, finish_reason and output.  They
 * are grouped by (model, whitespace-normalized problem); samples of a
 * problem are ordered by sample_id, so "seed s picks sample s mod count"
 * does not depend on file order.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <zlib.h>

#include "sim.h"

static int tg_sim_traces_load_file(tg_sim_traces_t *t, const char *path,
                                   char *err, size_t errlen);
static int tg_sim_traces_add(tg_sim_traces_t *t, json_t *row, char *err,
                             size_t errlen);
static const char *tg_sim_traces_intern(tg_sim_traces_t *t,
                                        const char *model);
static tg_sim_problem_t **tg_sim_traces_slot(tg_sim_traces_t *t,
                                             const char *model,
                                             const char *norm, size_t len);
static int tg_sim_traces_rehash(tg_sim_traces_t *t);
static int tg_sim_sample_answer(tg_sim_sample_t *s, json_t *pred);

static int
tg_sim_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static int
tg_sim_sample_cmp(const void *a, const void *b)
{
    const tg_sim_sample_t *x = a, *y = b;

    return x->sample_id < y->sample_id ? -1 : x->sample_id > y->sample_id;
}

tg_sim_traces_t *
tg_sim_traces_load(const char *path, char *err, size_t errlen)
{
    tg_sim_traces_t *t = calloc(1, sizeof(*t));
    struct stat st;
    char **names = NULL;
    size_t n_names = 0, i;

    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto failed;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *de;

        if (d == NULL) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto failed;
        }
        while ((de = readdir(d)) != NULL) {
            size_t l = strlen(de->d_name);
            char **nn;

            if (!(l > 6 && strcmp(de->d_name + l - 6, ".jsonl") == 0)
                && !(l > 9 && strcmp(de->d_name + l - 9, ".jsonl.gz") == 0))
                continue;
            nn = realloc(names, (n_names + 1) * sizeof(*names));
            if (nn == NULL || (nn[n_names] = malloc(strlen(path) + l + 2))
                              == NULL) {
                if (nn != NULL)
                    names = nn;
                closedir(d);
                snprintf(err, errlen, "out of memory");
                goto failed;
            }
            names = nn;
            sprintf(names[n_names++], "%s/%s", path, de->d_name);
        }
        closedir(d);
        if (n_names == 0) {
            snprintf(err, errlen, "%s: no .jsonl or .jsonl.gz files", path);
            goto failed;
        }
        qsort(names, n_names, sizeof(*names), tg_sim_name_cmp);
        for (i = 0; i < n_names; i++) {
            if (tg_sim_traces_load_file(t, names[i], err, errlen) != 0)
                goto failed;
        }
    } else if (tg_sim_traces_load_file(t, path, err, errlen) != 0) {
        goto failed;
    }
    if (t->n_samples == 0) {
        snprintf(err, errlen, "%s: no traces", path);
        goto failed;
    }
    for (i = 0; i < t->n_problems; i++)
        qsort(t->problems[i]->samples, t->problems[i]->count,
              sizeof(tg_sim_sample_t), tg_sim_sample_cmp);
    for (i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    return t;

failed:
    for (i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    tg_sim_traces_free(t);
    return NULL;
}

static int
tg_sim_traces_load_file(tg_sim_traces_t *t, const char *path, char *err,
                        size_t errlen)
{
    gzFile gz = gzopen(path, "rb");
    size_t cap = 1 << 16, len = 0;
    char *line = malloc(cap);
    long lineno = 0;
    int rc = -1;

    if (gz == NULL || line == NULL) {
        snprintf(err, errlen, "%s: %s", path,
                 gz == NULL ? strerror(errno ? errno : ENOMEM)
                            : "out of memory");
        goto done;
    }
    for (;;) {
        json_t *row;
        json_error_t jerr;

        len = 0;
        line[0] = '\0';
        /* A line can be longer than the buffer: grow until it ends. */
        while (gzgets(gz, line + len, (int) (cap - len)) != NULL) {
            len += strlen(line + len);
            if (len > 0 && line[len - 1] == '\n')
                break;
            if (cap - len < 2) {
                char *nl = realloc(line, cap * 2);

                if (nl == NULL) {
                    snprintf(err, errlen, "%s: out of memory", path);
                    goto done;
                }
                line = nl;
                cap *= 2;
            }
        }
        if (len == 0)
            break;
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        row = json_loadb(line, len, 0, &jerr);
        if (row == NULL) {
            snprintf(err, errlen, "%s:%ld: %s", path, lineno, jerr.text);
            goto done;
        }
        if (tg_sim_traces_add(t, row, err, errlen) != 0) {
            size_t l = strlen(err);

            snprintf(err + l, errlen - l, " (%s:%ld)", path, lineno);
            json_decref(row);
            goto done;
        }
        json_decref(row);
    }
    {
        int gzerr;
        const char *msg = gzerror(gz, &gzerr);

        if (gzerr != Z_OK && gzerr != Z_STREAM_END) {
            snprintf(err, errlen, "%s: %s", path, msg);
            goto done;
        }
    }
    rc = 0;
done:
    if (gz != NULL)
        gzclose(gz);
    free(line);
    return rc;
}

/* A new problem of model, its whitespace-normalised text norm (which it
 * takes), appended to the list; NULL when out of memory (norm freed). */
static tg_sim_problem_t *
tg_sim_problem_new(tg_sim_traces_t *t, const char *model, const char *problem,
                   char *norm, size_t norm_len)
{
    const char *im = tg_sim_traces_intern(t, model);
    tg_sim_problem_t *p;

    if (im == NULL || (p = calloc(1, sizeof(*p))) == NULL) {
        free(norm);
        return NULL;
    }
    p->model = im;
    p->norm = norm;
    p->norm_len = norm_len;
    p->problem = strdup(problem);
    if (p->problem == NULL)
        goto failed;
    if (t->n_problems == t->cap_problems) {
        size_t nc = t->cap_problems ? t->cap_problems * 2 : 64;
        tg_sim_problem_t **np = realloc(t->problems, nc * sizeof(*np));

        if (np == NULL)
            goto failed;
        t->problems = np;
        t->cap_problems = nc;
    }
    t->problems[t->n_problems++] = p;
    return p;

failed:
    free(p->problem);
    free(p->norm);
    free(p);
    return NULL;
}

/* The problem a row belongs to, found by model and normalised text or
 * added; NULL when out of memory. */
static tg_sim_problem_t *
tg_sim_traces_problem(tg_sim_traces_t *t, const char *model,
                      const char *problem)
{
    tg_sim_problem_t **slot, *p;
    char *norm;
    size_t norm_len;

    norm = tg_sim_norm_ws(problem, strlen(problem), &norm_len);
    if (norm == NULL)
        return NULL;
    if ((t->n_problems + 1) * 2 > t->table_size
        && tg_sim_traces_rehash(t) != 0) {
        free(norm);
        return NULL;
    }
    slot = tg_sim_traces_slot(t, model, norm, norm_len);
    if (*slot != NULL) {
        free(norm);
        return *slot;
    }
    p = tg_sim_problem_new(t, model, problem, norm, norm_len);
    if (p != NULL)
        *slot = p;
    return p;
}

/* Fills the problem's next sample from the row; -1 when out of memory. */
static int
tg_sim_sample_fill(tg_sim_problem_t *p, json_t *row)
{
    json_t *out = json_object_get(row, "output");
    json_t *ct = json_object_get(row, "completion_tokens");
    json_t *fr = json_object_get(row, "finish_reason");
    json_t *sid = json_object_get(row, "sample_id");
    tg_sim_sample_t *s = &p->samples[p->count];

    memset(s, 0, sizeof(*s));
    s->output_len = json_string_length(out);
    s->output = malloc(s->output_len + 1);
    if (s->output == NULL)
        return -1;
    memcpy(s->output, json_string_value(out), s->output_len + 1);
    s->completion_tokens = json_is_integer(ct) && json_integer_value(ct) > 0
        ? (uint32_t) json_integer_value(ct) : 0;
    s->sample_id = json_is_integer(sid) ? json_integer_value(sid)
                                        : (long long) p->count;
    /* Recordings say CUTOFF (or "length") when the budget ran out; every
     * other value (STOP, UNKNOWN, null) is treated as a natural stop. */
    s->finish_length = json_is_string(fr)
        && (strcasecmp(json_string_value(fr), "CUTOFF") == 0
            || strcasecmp(json_string_value(fr), "length") == 0);
    if (tg_sim_sample_answer(s, json_object_get(row, "pred")) != 0) {
        free(s->output);
        return -1;
    }
    return 0;
}

static int
tg_sim_traces_add(tg_sim_traces_t *t, json_t *row, char *err, size_t errlen)
{
    const char *model = json_string_value(json_object_get(row, "model"));
    const char *problem = json_string_value(json_object_get(row, "problem"));
    tg_sim_problem_t *p;

    if (model == NULL || problem == NULL
        || !json_is_string(json_object_get(row, "output"))) {
        snprintf(err, errlen, "a trace needs string fields model, problem "
                 "and output");
        return -1;
    }
    p = tg_sim_traces_problem(t, model, problem);
    if (p == NULL)
        goto nomem;
    if (p->count == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 8;
        tg_sim_sample_t *ns = realloc(p->samples, nc * sizeof(*ns));

        if (ns == NULL)
            goto nomem;
        p->samples = ns;
        p->cap = nc;
    }
    if (tg_sim_sample_fill(p, row) != 0)
        goto nomem;
    p->count++;
    t->n_samples++;
    return 0;

nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/*
 * The sample's final answer, for the simulated judge: the recorded `pred`
 * (a string, trimmed, or a number), where the line has the field; null,
 * "", NO_ANSWER, NONE and None state no answer.  Without the field, the
 * last answer the output states (tg_sim_extract_answer).
 */
static int
tg_sim_sample_answer(tg_sim_sample_t *s, json_t *pred)
{
    static const char *const none[] = { "", "NO_ANSWER", "NONE", "None" };
    char buf[1024];
    const char *a = NULL;
    size_t len = 0, i;

    if (pred == NULL) {
        len = tg_sim_extract_answer(s->output, s->output_len, buf,
                                    sizeof(buf));
        a = buf;
    } else if (json_is_string(pred)) {
        a = json_string_value(pred);
        len = json_string_length(pred);
        while (len > 0 && (*a == ' ' || *a == '\t' || *a == '\n')) {
            a++;
            len--;
        }
        while (len > 0 && (a[len - 1] == ' ' || a[len - 1] == '\t'
                           || a[len - 1] == '\n'))
            len--;
    } else if (json_is_integer(pred)) {
        len = (size_t) snprintf(buf, sizeof(buf), "%lld",
                                (long long) json_integer_value(pred));
        a = buf;
    } else if (json_is_real(pred)) {
        len = (size_t) snprintf(buf, sizeof(buf), "%.17g",
                                json_real_value(pred));
        a = buf;
    }
    s->answer = NULL;
    if (a == NULL || len == 0)
        return 0;
    for (i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        if (strlen(none[i]) == len && memcmp(a, none[i], len) == 0)
            return 0;
    }
    s->answer = strndup(a, len);
    return s->answer != NULL ? 0 : -ENOMEM;
}

static const char *
tg_sim_traces_intern(tg_sim_traces_t *t, const char *model)
{
    size_t i;
    char **nm;

    for (i = 0; i < t->n_models; i++) {
        if (strcmp(t->models[i], model) == 0)
            return t->models[i];
    }
    nm = realloc(t->models, (t->n_models + 1) * sizeof(*nm));
    if (nm == NULL)
        return NULL;
    t->models = nm;
    nm[t->n_models] = strdup(model);
    if (nm[t->n_models] == NULL)
        return NULL;
    return nm[t->n_models++];
}

static uint64_t
tg_sim_key_hash(const char *model, const char *norm, size_t len)
{
    uint64_t h = tg_sim_hash(TG_SIM_HASH_INIT, model, strlen(model) + 1);

    return tg_sim_hash(h, norm, len);
}

static tg_sim_problem_t **
tg_sim_traces_slot(tg_sim_traces_t *t, const char *model, const char *norm,
                   size_t len)
{
    size_t mask = t->table_size - 1;
    size_t i = (size_t) tg_sim_key_hash(model, norm, len) & mask;

    for (;; i = (i + 1) & mask) {
        tg_sim_problem_t *p = t->table[i];

        if (p == NULL || (p->norm_len == len && strcmp(p->model, model) == 0
                          && memcmp(p->norm, norm, len) == 0))
            return &t->table[i];
    }
}

static int
tg_sim_traces_rehash(tg_sim_traces_t *t)
{
    size_t ns = t->table_size ? t->table_size * 2 : 256, i;
    tg_sim_problem_t **old = t->table;
    size_t old_size = t->table_size;

    t->table = calloc(ns, sizeof(*t->table));
    if (t->table == NULL) {
        t->table = old;
        return -ENOMEM;
    }
    t->table_size = ns;
    for (i = 0; i < old_size; i++) {
        if (old[i] != NULL)
            *tg_sim_traces_slot(t, old[i]->model, old[i]->norm,
                                old[i]->norm_len) = old[i];
    }
    free(old);
    return 0;
}

void
tg_sim_traces_free(tg_sim_traces_t *t)
{
    size_t i, j;

    if (t == NULL)
        return;
    for (i = 0; i < t->n_problems; i++) {
        tg_sim_problem_t *p = t->problems[i];

        for (j = 0; j < p->count; j++) {
            free(p->samples[j].output);
            free(p->samples[j].answer);
            tg_sim_plan_free(&p->samples[j].plan);
        }
        free(p->samples);
        free(p->problem);
        free(p->norm);
        free(p);
    }
    for (i = 0; i < t->n_models; i++)
        free(t->models[i]);
    free(t->models);
    free(t->problems);
    free(t->table);
    free(t);
}

int
tg_sim_traces_has_model(const tg_sim_traces_t *t, const char *model)
{
    size_t i;

    for (i = 0; i < t->n_models; i++) {
        if (strcmp(t->models[i], model) == 0)
            return 1;
    }
    return 0;
}

tg_sim_problem_t *
tg_sim_traces_find(tg_sim_traces_t *t, const char *model, const char *query,
                   size_t len)
{
    size_t nlen, i;
    char *norm = tg_sim_norm_ws(query, len, &nlen);
    tg_sim_problem_t *p, *best = NULL;

    if (norm == NULL || t->table_size == 0) {
        free(norm);
        return NULL;
    }
    p = *tg_sim_traces_slot(t, model, norm, nlen);
    /* A client may wrap the problem in an instruction ("Please reason
     * step by step..."): fall back to the longest problem it contains. */
    for (i = 0; p == NULL && i < t->n_problems; i++) {
        tg_sim_problem_t *q = t->problems[i];

        if (strcmp(q->model, model) == 0 && q->norm_len <= nlen
            && (best == NULL || q->norm_len > best->norm_len)
            && memmem(norm, nlen, q->norm, q->norm_len) != NULL)
            best = q;
    }
    free(norm);
    return p != NULL ? p : best;
}

tg_sim_problem_t *
tg_sim_traces_find_in(tg_sim_traces_t *t, const char *model,
                      const char *prompt, size_t len, size_t *end)
{
    tg_sim_problem_t *best = NULL;
    size_t i, best_end = 0;

    for (i = 0; i < t->n_problems; i++) {
        tg_sim_problem_t *q = t->problems[i];
        const char *hit;
        size_t plen = strlen(q->problem);

        if (strcmp(q->model, model) != 0
            || (best != NULL && plen <= strlen(best->problem)))
            continue;
        /* The recorded text verbatim; the first occurrence, since the
         * continuation follows the problem. */
        hit = memmem(prompt, len, q->problem, plen);
        if (hit != NULL) {
            best = q;
            best_end = (size_t) (hit - prompt) + plen;
        }
    }
    if (end != NULL)
        *end = best_end;
    return best;
}

const tg_sim_plan_t *
tg_sim_sample_plan(tg_sim_sample_t *s)
{
    if (!s->planned) {
        if (tg_sim_plan_build(&s->plan, s->output, s->output_len,
                              s->completion_tokens, 1) != 0)
            return NULL;
        s->plan.finish_length = s->finish_length;
        s->planned = 1;
    }
    return &s->plan;
}

size_t
tg_sim_sample_common(const tg_sim_sample_t *s, const char *text, size_t len)
{
    size_t alen = s->output_len < 32 ? s->output_len : 32, k = 0;
    const char *a;

    if (alen == 0)
        return 0;
    /* The continuation may start after template text ("<think>\n"):
     * anchor on the trace's first bytes, then extend. */
    a = memmem(text, len, s->output, alen);
    if (a == NULL)
        return 0;
    while ((size_t) (a - text) + k < len && k < s->output_len
           && a[k] == s->output[k])
        k++;
    return k;
}

tg_sim_sample_t *
tg_sim_traces_match_prefix(tg_sim_problem_t *p, const char *text,
                           size_t len, size_t *prefix_len)
{
    tg_sim_sample_t *best = NULL;
    size_t best_len = 0, i;

    for (i = 0; i < p->count; i++) {
        size_t k = tg_sim_sample_common(&p->samples[i], text, len);

        if (k > best_len) {
            best = &p->samples[i];
            best_len = k;
        }
    }
    *prefix_len = best_len;
    return best;
}
