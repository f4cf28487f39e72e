/*
 * Unit tests of plugins/common/skills: lexicon annotation (the same
 * keywords tools/skill_profile.py gives), keyword mapping, recruitment
 * weights, the seeded draw, profile parsing with bad input named.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/skills.h"

static const char  *tg_test_profile_json =
    "{\"format\":\"thinkgate-profile/1\",\"annotator\":\"lexicon\","
    "\"models\":{"
    "\"A\":{\"strength\":0.8,\"skills\":{\"physics\":4,\"optics\":-2}},"
    "\"B\":{\"strength\":0.5,\"skills\":{\"physics\":2,\"genetics\":3}},"
    "\"C\":{\"strength\":0.9,\"skills\":{\"physics\":-1}}}}";


static size_t
tg_test_annotate(const char *text, const char **kw)
{
    return tg_skills_annotate(text, strlen(text), kw, TG_SKILLS_MAX_KEYWORDS);
}


Test(skills, annotate_as_the_profile_tool)
{
    const char  *kw[TG_SKILLS_MAX_KEYWORDS];

    /* Expected lists are tools/skill_profile.py's annotate() output. */
    cr_assert_eq(tg_test_annotate("Two quantum states with energies E1 and "
                 "E2 have a lifetime of 10^-9 sec and 10^-8 sec. Which energy "
                 "difference could be resolved?", kw), 2);
    cr_assert_str_eq(kw[0], "physics");
    cr_assert_str_eq(kw[1], "quantum mechanics");
    cr_assert_eq(tg_test_annotate("A methyl ketone was treated with a "
                 "Grignard reagent; the product shows a 1H NMR peak at 2.1 "
                 "ppm.", kw), 4);
    cr_assert_str_eq(kw[0], "chemistry");
    cr_assert_str_eq(kw[1], "organic chemistry");
    cr_assert_str_eq(kw[2], "reaction mechanisms");
    cr_assert_str_eq(kw[3], "spectroscopy");
    cr_assert_eq(tg_test_annotate("Find the NUMBER OF WAYS to paint the "
                 "vertices.", kw), 2);
    cr_assert_str_eq(kw[1], "combinatorics");
    cr_assert_eq(tg_test_annotate("Hello there.", kw), 0, "no keyword");
    cr_assert_eq(tg_test_annotate("Aquantum", kw), 0, "stems start words");
}


Test(skills, map_nearest_above_min_sim)
{
    /* 2 query keywords, 3 profile keywords: a 5 x 5 matrix. */
    const float  sim[25] = {
        1, 0, 0.2f, 0.7f, 0.7f,
        0, 1, 0.1f, 0.3f, 0.4f,
        0, 0, 1, 0, 0,
        0, 0, 0, 1, 0,
        0, 0, 0, 0, 1 };
    int          out[2];

    cr_assert_eq(tg_skills_map(sim, 2, 3, 0.5, out), 1);
    cr_assert_eq(out[0], 1, "ties go to the first profile keyword");
    cr_assert_eq(out[1], -1, "0.4 is under min_sim");
    cr_assert_eq(tg_skills_map(sim, 2, 3, 0.3, out), 2);
    cr_assert_eq(out[1], 2);
}


Test(skills, weights_softmax_and_uniform)
{
    tg_skills_profile_t  p;
    const char          *models[] = { "A", "B", "C", "unknown" };
    const char          *kw[] = { "physics", "genetics" };
    double               w[4], a, b;
    char                 err[256];

    cr_assert_eq(tg_skills_profile_parse(tg_test_profile_json,
                 strlen(tg_test_profile_json), "t.json", &p, err,
                 sizeof(err)), 0, "%s", err);
    cr_assert_eq(p.nmodels, 3);
    cr_assert_eq(p.nkeywords, 3);
    cr_assert_eq(tg_skills_weights(&p, models, 4, kw, 2, 0.5, w), 1);
    /* A: 4 x 0.8 / 0.5 = 6.4; B: 5 x 0.5 / 0.5 = 5; C: -1 dropped. */
    a = exp(6.4);
    b = exp(5.0);
    cr_assert_float_eq(w[0], a / (a + b), 1e-9);
    cr_assert_float_eq(w[1], b / (a + b), 1e-9);
    cr_assert_eq(w[2], 0);
    cr_assert_eq(w[3], 0);
    cr_assert_eq(tg_skills_weights(&p, models, 4, kw, 0, 0.5, w), 0,
                 "no keyword: uniform");
    cr_assert_float_eq(w[0], 0.25, 1e-12);
    cr_assert_float_eq(w[3], 0.25, 1e-12);
    kw[0] = "optics";
    cr_assert_eq(tg_skills_weights(&p, models, 3, kw, 1, 0.5, w), 0,
                 "nobody positive: uniform");
    tg_skills_profile_free(&p);
}


Test(skills, seeded_draw)
{
    const double  w[3] = { 0.7, 0, 0.3 };
    uint64_t      s1 = 42, s2 = 42, s3 = 43;
    int           a[1000], b[1000], c[1000], n0 = 0, n1 = 0, i;

    /* splitmix64 from 0, as tools/skill_profile.py's SplitMix64(0). */
    s1 = 0;
    cr_assert_eq(tg_skills_next(&s1), 0xE220A8397B1DCDAFull);
    s1 = 42;
    tg_skills_draw(w, 3, 1000, &s1, a);
    tg_skills_draw(w, 3, 1000, &s2, b);
    tg_skills_draw(w, 3, 1000, &s3, c);
    cr_assert_arr_eq(a, b, sizeof(a), "the same seed draws the same");
    cr_assert(memcmp(a, c, sizeof(a)) != 0);
    for (i = 0; i < 1000; i++) {
        cr_assert_neq(a[i], 1, "a weight of 0 is never drawn");
        n0 += a[i] == 0;
        n1 += a[i] == 2;
    }
    cr_assert(n0 > 640 && n0 < 760, "%d of 1000 at 0.7", n0);
    cr_assert_eq(n0 + n1, 1000);
}


static void
tg_test_bad(const char *json, const char *want)
{
    tg_skills_profile_t  p;
    char                 err[256];

    cr_assert_eq(tg_skills_profile_parse(json, strlen(json), "bad.json", &p,
                 err, sizeof(err)), -EINVAL, "%s", json);
    cr_assert(strncmp(err, "bad.json: ", 10) == 0, "names the file: %s", err);
    cr_assert(strstr(err, want) != NULL, "%s: wants %s", err, want);
    cr_assert_eq(p.nmodels, 0);
}


Test(skills, bad_profiles_named)
{
    tg_skills_profile_t  p;
    char                 err[256];

    tg_test_bad("{", "not JSON");
    tg_test_bad("{\"models\":{}}", "format");
    tg_test_bad("{\"format\":\"thinkgate-profile/1\",\"models\":{}}",
                "models");
    tg_test_bad("{\"format\":\"thinkgate-profile/1\",\"models\":{\"A\":"
                "{\"strength\":2,\"skills\":{}}}}", "\"A\": strength");
    tg_test_bad("{\"format\":\"thinkgate-profile/1\",\"models\":{\"A\":"
                "{\"strength\":0.5,\"skills\":{\"x\":\"y\"}}}}",
                "skill \"x\"");
    tg_test_bad("{\"format\":\"thinkgate-profile/1\",\"models\":{\"A\":"
                "{\"strength\":0.5}}}", "skills must be");
    cr_assert_eq(tg_skills_profile_load("/nonexistent/p.json", &p, err,
                 sizeof(err)), -ENOENT);
    cr_assert(strstr(err, "/nonexistent/p.json") != NULL, "%s", err);
}
