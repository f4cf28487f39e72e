/*
 * thinkgate — skills for Symbolic-MoE (see skills.h).
 */
#include "skills.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_SKILLS_FORMAT     "thinkgate-profile/1"
#define TG_SKILLS_MAX_FILE   (16 * 1024 * 1024)

static size_t tg__skills_hits(const char *text, size_t len,
    const char *stem, size_t slen);
static int tg__skills_word_char(unsigned char c);
static int tg__skills_add_keyword(tg_skills_profile_t *p, const char *kw);
static int tg__skills_model(tg_skill_model_t *m, const char *name,
    json_t *obj, const char *where, char *err, size_t err_size);


static int
tg__skills_word_char(unsigned char c)
{
    /* Bytes of UTF-8 sequences count as letters, as Python's isalnum()
     * does for the letters they encode. */
    return isalnum(c) || c >= 0x80;
}


/* Occurrences of stem (lower case) at word starts in text, ignoring case. */
static size_t
tg__skills_hits(const char *text, size_t len, const char *stem, size_t slen)
{
    size_t  i, j, n = 0;

    if (slen == 0 || slen > len) {
        return 0;
    }
    for (i = 0; i + slen <= len; i++) {
        if (i > 0 && tg__skills_word_char((unsigned char) text[i - 1])) {
            continue;
        }
        for (j = 0; j < slen; j++) {
            if (tolower((unsigned char) text[i + j]) != stem[j]) {
                break;
            }
        }
        n += j == slen;
    }
    return n;
}


size_t
tg_skills_annotate(const char *text, size_t len, const char **out, size_t max)
{
    size_t  hits[64], order[64], i, j, n = 0, nout = 0, best;

    if (text == NULL || out == NULL || max < 2) {
        return 0;
    }
    for (i = 0; i < tg_lexicon_size && i < 64; i++) {
        const char  *s = tg_lexicon[i].stems, *bar;

        hits[i] = 0;
        while (*s != '\0') {
            bar = strchr(s, '|');
            if (bar == NULL) {
                bar = s + strlen(s);
            }
            hits[i] += tg__skills_hits(text, len, s, (size_t) (bar - s));
            s = *bar == '|' ? bar + 1 : bar;
        }
        if (hits[i] == 0) {
            continue;
        }
        /* Insertion by hits, descending; equal hits keep table order. */
        for (j = n; j > 0 && hits[order[j - 1]] < hits[i]; j--) {
            order[j] = order[j - 1];
        }
        order[j] = i;
        n++;
    }
    if (n == 0) {
        return 0;
    }
    best = hits[order[0]];
    out[nout++] = tg_lexicon[order[0]].domain;
    for (i = 0; i < n && i < TG_SKILLS_MAX_KEYWORDS - 1 && nout < max; i++) {
        if (hits[order[i]] * 2 >= best) {
            out[nout++] = tg_lexicon[order[i]].keyword;
        }
    }
    return nout;
}


void
tg_skills_profile_free(tg_skills_profile_t *p)
{
    size_t  i, j;

    for (i = 0; i < p->nmodels; i++) {
        for (j = 0; j < p->models[i].nskills; j++) {
            free(p->models[i].keywords[j]);
        }
        free(p->models[i].keywords);
        free(p->models[i].values);
        free(p->models[i].name);
    }
    for (i = 0; i < p->nkeywords; i++) {
        free(p->keywords[i]);
    }
    free(p->models);
    free(p->keywords);
    free(p->path);
    memset(p, 0, sizeof(*p));
}


static int
tg__skills_add_keyword(tg_skills_profile_t *p, const char *kw)
{
    char  **grown;
    size_t  i;

    for (i = 0; i < p->nkeywords; i++) {
        if (strcmp(p->keywords[i], kw) == 0) {
            return 0;
        }
    }
    grown = realloc(p->keywords, (p->nkeywords + 1) * sizeof(char *));
    if (grown == NULL) {
        return -ENOMEM;
    }
    p->keywords = grown;
    p->keywords[p->nkeywords] = strdup(kw);
    if (p->keywords[p->nkeywords] == NULL) {
        return -ENOMEM;
    }
    p->nkeywords++;
    return 0;
}


static int
tg__skills_model(tg_skill_model_t *m, const char *name, json_t *obj,
    const char *where, char *err, size_t err_size)
{
    json_t      *strength, *skills, *v;
    const char  *kw;
    size_t       i = 0;

    m->name = strdup(name);
    strength = json_object_get(obj, "strength");
    skills = json_object_get(obj, "skills");
    if (m->name == NULL) {
        snprintf(err, err_size, "%s: out of memory", where);
        return -ENOMEM;
    }
    if (!json_is_number(strength) || json_number_value(strength) < 0
        || json_number_value(strength) > 1)
    {
        snprintf(err, err_size, "%s: model \"%.64s\": strength must be a "
                 "number within 0..1", where, name);
        return -EINVAL;
    }
    m->strength = json_number_value(strength);
    if (!json_is_object(skills)) {
        snprintf(err, err_size, "%s: model \"%.64s\": skills must be an "
                 "object of keyword: number", where, name);
        return -EINVAL;
    }
    m->keywords = calloc(json_object_size(skills) + 1, sizeof(char *));
    m->values = calloc(json_object_size(skills) + 1, sizeof(double));
    if (m->keywords == NULL || m->values == NULL) {
        snprintf(err, err_size, "%s: out of memory", where);
        return -ENOMEM;
    }
    json_object_foreach(skills, kw, v) {
        if (!json_is_number(v) || !isfinite(json_number_value(v))) {
            snprintf(err, err_size, "%s: model \"%.64s\": skill \"%.64s\" "
                     "is not a number", where, name, kw);
            return -EINVAL;
        }
        m->keywords[i] = strdup(kw);
        if (m->keywords[i] == NULL) {
            snprintf(err, err_size, "%s: out of memory", where);
            return -ENOMEM;
        }
        m->values[i++] = json_number_value(v);
        m->nskills = i;
    }
    return 0;
}


int
tg_skills_profile_parse(const char *json, size_t len, const char *name,
    tg_skills_profile_t *p, char *err, size_t err_size)
{
    json_error_t  jerr;
    json_t       *root, *fmt, *models, *obj;
    const char   *model;
    size_t        i = 0, j;
    int           rc = -EINVAL;

    memset(p, 0, sizeof(*p));
    root = json_loadb(json, len, 0, &jerr);
    if (root == NULL) {
        snprintf(err, err_size, "%s: not JSON: %s (line %d)", name,
                 jerr.text, jerr.line);
        return -EINVAL;
    }
    fmt = json_object_get(root, "format");
    models = json_object_get(root, "models");
    if (!json_is_string(fmt)
        || strcmp(json_string_value(fmt), TG_SKILLS_FORMAT) != 0)
    {
        snprintf(err, err_size, "%s: \"format\" must be \"%s\"", name,
                 TG_SKILLS_FORMAT);
        goto failed;
    }
    if (!json_is_object(models) || json_object_size(models) == 0) {
        snprintf(err, err_size, "%s: \"models\" must be a non-empty object",
                 name);
        goto failed;
    }
    p->path = strdup(name);
    p->models = calloc(json_object_size(models), sizeof(tg_skill_model_t));
    if (p->path == NULL || p->models == NULL) {
        snprintf(err, err_size, "%s: out of memory", name);
        rc = -ENOMEM;
        goto failed;
    }
    json_object_foreach(models, model, obj) {
        if (!json_is_object(obj)) {
            snprintf(err, err_size, "%s: model \"%.64s\" must be an object",
                     name, model);
            goto failed;
        }
        p->nmodels = i + 1;
        rc = tg__skills_model(&p->models[i], model, obj, name, err,
                              err_size);
        if (rc != 0) {
            goto failed;
        }
        for (j = 0; j < p->models[i].nskills; j++) {
            if (tg__skills_add_keyword(p, p->models[i].keywords[j]) != 0) {
                snprintf(err, err_size, "%s: out of memory", name);
                rc = -ENOMEM;
                goto failed;
            }
        }
        rc = -EINVAL;
        i++;
    }
    json_decref(root);
    return 0;

failed:
    json_decref(root);
    tg_skills_profile_free(p);
    return rc;
}


int
tg_skills_profile_load(const char *path, tg_skills_profile_t *p, char *err,
    size_t err_size)
{
    FILE   *f;
    char   *buf;
    size_t  len;
    int     rc;

    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return -ENOENT;
    }
    buf = malloc(TG_SKILLS_MAX_FILE + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(err, err_size, "%s: out of memory", path);
        return -ENOMEM;
    }
    len = fread(buf, 1, TG_SKILLS_MAX_FILE + 1, f);
    rc = ferror(f);
    fclose(f);
    if (rc != 0 || len > TG_SKILLS_MAX_FILE) {
        snprintf(err, err_size, "%s: %s", path,
                 rc != 0 ? "read error" : "larger than 16 MiB");
        free(buf);
        return -EINVAL;
    }
    rc = tg_skills_profile_parse(buf, len, path, p, err, err_size);
    free(buf);
    return rc;
}


const tg_skill_model_t *
tg_skills_model(const tg_skills_profile_t *p, const char *name)
{
    size_t  i;

    for (i = 0; name != NULL && i < p->nmodels; i++) {
        if (strcmp(p->models[i].name, name) == 0) {
            return &p->models[i];
        }
    }
    return NULL;
}


double
tg_skills_value(const tg_skill_model_t *m, const char *keyword)
{
    size_t  i;

    for (i = 0; i < m->nskills; i++) {
        if (strcmp(m->keywords[i], keyword) == 0) {
            return m->values[i];
        }
    }
    return 0;
}


size_t
tg_skills_map(const float *sim, size_t nq, size_t np, double min_sim,
    int *out)
{
    size_t  i, j, n = nq + np, mapped = 0;
    double  best;

    for (i = 0; i < nq; i++) {
        out[i] = -1;
        best = min_sim;
        for (j = 0; j < np; j++) {
            if (sim[i * n + nq + j] >= best) {
                /* Strictly better, so ties go to the first keyword. */
                if (out[i] < 0 || sim[i * n + nq + j] > best) {
                    best = sim[i * n + nq + j];
                    out[i] = (int) j;
                }
            }
        }
        mapped += out[i] >= 0;
    }
    return mapped;
}


int
tg_skills_weights(const tg_skills_profile_t *p, const char *const *models,
    size_t n, const char *const *keywords, size_t nkw, double temperature,
    double *w)
{
    const tg_skill_model_t  *m;
    double                   top = -HUGE_VAL, sum = 0, s;
    size_t                   i, j, scored = 0;

    for (i = 0; i < n; i++) {
        w[i] = -HUGE_VAL;
        m = tg_skills_model(p, models[i]);
        if (m == NULL) {
            continue;
        }
        for (s = 0, j = 0; j < nkw; j++) {
            s += tg_skills_value(m, keywords[j]);
        }
        if (s > 0) {
            w[i] = s * m->strength / temperature;
            top = w[i] > top ? w[i] : top;
            scored++;
        }
    }
    for (i = 0; i < n; i++) {
        if (scored == 0) {
            w[i] = 1.0 / (double) n;
            continue;
        }
        w[i] = w[i] == -HUGE_VAL ? 0 : exp(w[i] - top);
        sum += w[i];
    }
    for (i = 0; scored > 0 && i < n; i++) {
        w[i] /= sum;
    }
    return scored > 0;
}


uint64_t
tg_skills_next(uint64_t *state)
{
    uint64_t  z = (*state += 0x9E3779B97F4A7C15ull);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}


double
tg_skills_uniform(uint64_t *state)
{
    return (double) (tg_skills_next(state) >> 11) * (1.0 / 9007199254740992.0);
}


void
tg_skills_draw(const double *w, size_t n, size_t k, uint64_t *state, int *out)
{
    size_t  i, j;
    double  u, acc;

    for (i = 0; i < k; i++) {
        u = tg_skills_uniform(state);
        acc = 0;
        out[i] = -1;
        for (j = 0; j < n; j++) {
            acc += w[j];
            if (w[j] > 0) {
                /* Rounding may leave u past the sum: the last one with
                 * a weight takes it. */
                out[i] = (int) j;
            }
            if (u < acc) {
                out[i] = (int) j;
                break;
            }
        }
    }
}
