/*
 * BERT WordPiece tokenizer (uncased), as all-MiniLM-L6-v2 ships it:
 * vocab.txt, one piece per line, the line number is the id.
 *
 * Encoding follows BertTokenizer / the `tokenizers` BertNormalizer +
 * BertPreTokenizer + WordPiece model with the shipped tokenizer.json:
 * control characters dropped, whitespace folded to spaces, CJK ideographs
 * split into single characters, lower-casing with accents stripped (NFD,
 * combining marks removed), splitting on whitespace and on punctuation
 * (ASCII punctuation and Unicode P* categories), then greedy longest-match
 * pieces with the "##" continuation prefix; a word longer than 100
 * characters or with no match becomes [UNK].  The output is
 * [CLS] pieces... [SEP], truncated so that it holds at most max_ids ids
 * ([SEP] always last).  Invalid UTF-8 is read byte by byte as U+FFFD.
 * As in tokenizers (added tokens with "normalized": false), the special
 * tokens spelled out in the text ("[CLS]", "[SEP]", "[PAD]", "[UNK]",
 * "[MASK]", case-sensitive) are matched before normalization and encode
 * to their own ids.
 *
 * The vocabulary is immutable after load: encode is thread-safe.
 * Functions return 0 / a count, or a negative errno code with a message in
 * err (when err_size > 0).
 */
#ifndef TG_EMBED_WORDPIECE_H
#define TG_EMBED_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tg_wordpiece_s tg_wordpiece_t;

/* Loads vocab.txt; -ENOENT/-EINVAL with err naming the file and what is
 * wrong (missing [CLS]/[SEP]/[UNK]/[PAD], empty, unreadable). */
int tg_wordpiece_load(const char *vocab_path, tg_wordpiece_t **out,
                      char *err, size_t err_size);
void tg_wordpiece_free(tg_wordpiece_t *wp);

/* Special ids. */
int32_t tg_wordpiece_cls(const tg_wordpiece_t *wp);
int32_t tg_wordpiece_sep(const tg_wordpiece_t *wp);
int32_t tg_wordpiece_pad(const tg_wordpiece_t *wp);
int32_t tg_wordpiece_unk(const tg_wordpiece_t *wp);
size_t  tg_wordpiece_vocab_size(const tg_wordpiece_t *wp);

/*
 * Encodes text[0..len) into ids[0..max_ids): [CLS] ... [SEP], truncated.
 * max_ids >= 2.  Returns the number of ids written (>= 2), or -EINVAL.
 * Never allocates more than O(len) scratch, freed before it returns.
 */
int tg_wordpiece_encode(const tg_wordpiece_t *wp, const char *text,
                        size_t len, int32_t *ids, size_t max_ids);

#endif /* TG_EMBED_WORDPIECE_H */
