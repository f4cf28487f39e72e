/*
 * SHA-1, enough for Redis script digests (EVALSHA names a script by the
 * SHA-1 of its text) and for hashing bearer tokens into session owners.
 * Written here rather than taken from OpenSSL so that the state layer
 * needs no TLS library.
 */

#ifndef TG_STATE_SHA1_H
#define TG_STATE_SHA1_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t  h[5];
    uint64_t  nbytes;
    uint8_t   buf[64];
    size_t    nbuf;
} tg_sha1_t;

void tg_sha1_init(tg_sha1_t *s);
void tg_sha1_update(tg_sha1_t *s, const void *data, size_t len);
void tg_sha1_final(tg_sha1_t *s, uint8_t digest[20]);

/* One call: the 40 lowercase hex digits of SHA-1(data) and a NUL. */
void tg_sha1_hex(const void *data, size_t len, char hex[41]);

#endif /* TG_STATE_SHA1_H */
