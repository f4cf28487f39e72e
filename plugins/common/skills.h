/*
 * thinkgate — skills for Symbolic-MoE (arXiv 2503.05641): the keyword
 * lexicon that annotates a problem, the per-model skill profiles that
 * tools/thinkgate-profile writes, and recruitment (scores, softmax
 * weights, a seeded draw with replacement).
 *
 * The profile file is JSON:
 *
 *   {"format": "thinkgate-profile/1", "annotator": "lexicon",
 *    "models": {"R1": {"strength": 0.75,
 *                      "skills": {"physics": 14.25, "optics": -1.5}}}}
 *
 * strength is the model's accuracy (0..1); a skill value is the sum of
 * +1 (right) and -1 (wrong) over the profile problems tagged with it.
 * Recruitment, for candidate models and query keywords already mapped
 * onto profile keywords: score = the sum of the model's values over the
 * keywords, models without a positive score are dropped, weights =
 * softmax(score x strength / T); no positive score at all gives uniform
 * weights over the candidates.  tools/skill_profile.py does the same,
 * random draws included (splitmix64).
 *
 * Nothing here calls the host; the profile is the caller's to free.
 * Functions return 0 or a count, or a negative errno code.
 */
#ifndef TG_SKILLS_H
#define TG_SKILLS_H

#include <stddef.h>
#include <stdint.h>

/* One lexicon row: a keyword, its domain, the stems that reveal it. */
typedef struct {
    const char  *keyword;
    const char  *domain;
    const char  *stems;     /* '|'-separated, matched at word starts */
} tg_lexicon_row_t;

extern const tg_lexicon_row_t  tg_lexicon[];    /* NULL-terminated */
extern const size_t            tg_lexicon_size;

/* Most keywords one problem gets. */
#define TG_SKILLS_MAX_KEYWORDS  5

/*
 * The problem's keywords (static strings of the lexicon) into out: none
 * when no stem matches, else the domain of the subfield with most hits,
 * then up to 4 subfields by hits (ties: table order), each with at least
 * half the best one's hits.  Returns how many (0, or 2..max).
 */
size_t tg_skills_annotate(const char *text, size_t len, const char **out,
    size_t max);

typedef struct {
    char        *name;
    double       strength;
    size_t       nskills;
    char       **keywords;
    double      *values;
} tg_skill_model_t;

typedef struct {
    char              *path;        /* where it was read from */
    size_t             nmodels;
    tg_skill_model_t  *models;
    size_t             nkeywords;   /* distinct keywords over all models */
    char             **keywords;
} tg_skills_profile_t;

/*
 * Parses a profile from json[0..len); name says where it came from in
 * messages.  On error returns -EINVAL with "NAME: what is wrong" in err
 * and leaves *p empty.
 */
int tg_skills_profile_parse(const char *json, size_t len, const char *name,
    tg_skills_profile_t *p, char *err, size_t err_size);

/* Reads and parses the file at path (blocking: load time only); -ENOENT
 * or the parse error, with the path in err. */
int tg_skills_profile_load(const char *path, tg_skills_profile_t *p,
    char *err, size_t err_size);

void tg_skills_profile_free(tg_skills_profile_t *p);

/* The model named name, or NULL. */
const tg_skill_model_t *tg_skills_model(const tg_skills_profile_t *p,
    const char *name);

/* The model's value for keyword (0 when it has none). */
double tg_skills_value(const tg_skill_model_t *m, const char *keyword);

/*
 * Maps query keywords onto profile keywords: sim is the (nq + np)^2
 * cosine matrix of the nq query keywords followed by the np profile
 * keywords; out[i] is the index of the profile keyword nearest to query
 * keyword i, or -1 when none reaches min_sim.  Returns how many mapped.
 */
size_t tg_skills_map(const float *sim, size_t nq, size_t np, double min_sim,
    int *out);

/*
 * Weights of the n candidate models (names; NULL or unknown to the
 * profile: never scored) for the nkw mapped keywords, as above, into w.
 * Returns 1 when some score was positive, 0 when w is uniform.
 */
int tg_skills_weights(const tg_skills_profile_t *p, const char *const *models,
    size_t n, const char *const *keywords, size_t nkw, double temperature,
    double *w);

/* splitmix64, and a uniform double in [0, 1) from its top 53 bits. */
uint64_t tg_skills_next(uint64_t *state);
double tg_skills_uniform(uint64_t *state);

/* k draws with replacement from weights w[0..n) into out (indices). */
void tg_skills_draw(const double *w, size_t n, size_t k, uint64_t *state,
    int *out);

#endif /* TG_SKILLS_H */
