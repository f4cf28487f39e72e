/*
 * SHA-1 (FIPS 180-4), straightforward and portable.
 */

#include <string.h>

#include "state/sha1.h"

static void tg__sha1_block(tg_sha1_t *s, const uint8_t *p);

#define TG_ROL(x, n)  (((x) << (n)) | ((x) >> (32 - (n))))


void
tg_sha1_init(tg_sha1_t *s)
{
    s->h[0] = 0x67452301;
    s->h[1] = 0xefcdab89;
    s->h[2] = 0x98badcfe;
    s->h[3] = 0x10325476;
    s->h[4] = 0xc3d2e1f0;
    s->nbytes = 0;
    s->nbuf = 0;
}


static void
tg__sha1_block(tg_sha1_t *s, const uint8_t *p)
{
    uint32_t  w[80], a, b, c, d, e, f, k, t;
    int       i;

    for (i = 0; i < 16; i++) {
        w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16
               | (uint32_t) p[4 * i + 2] << 8 | (uint32_t) p[4 * i + 3];
    }
    for (i = 16; i < 80; i++) {
        t = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
        w[i] = TG_ROL(t, 1);
    }

    a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3]; e = s->h[4];

    for (i = 0; i < 80; i++) {
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        t = TG_ROL(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = TG_ROL(b, 30);
        b = a;
        a = t;
    }

    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d; s->h[4] += e;
}


void
tg_sha1_update(tg_sha1_t *s, const void *data, size_t len)
{
    const uint8_t  *p = data;
    size_t          n;

    s->nbytes += len;

    while (len > 0) {
        n = 64 - s->nbuf;
        if (n > len) {
            n = len;
        }
        memcpy(s->buf + s->nbuf, p, n);
        s->nbuf += n;
        p += n;
        len -= n;
        if (s->nbuf == 64) {
            tg__sha1_block(s, s->buf);
            s->nbuf = 0;
        }
    }
}


void
tg_sha1_final(tg_sha1_t *s, uint8_t digest[20])
{
    uint64_t  bits = s->nbytes * 8;
    uint8_t   pad = 0x80, zero = 0, len[8];
    int       i;

    tg_sha1_update(s, &pad, 1);
    while (s->nbuf != 56) {
        tg_sha1_update(s, &zero, 1);
    }
    for (i = 0; i < 8; i++) {
        len[i] = (uint8_t) (bits >> (56 - 8 * i));
    }
    tg_sha1_update(s, len, 8);

    for (i = 0; i < 5; i++) {
        digest[4 * i] = (uint8_t) (s->h[i] >> 24);
        digest[4 * i + 1] = (uint8_t) (s->h[i] >> 16);
        digest[4 * i + 2] = (uint8_t) (s->h[i] >> 8);
        digest[4 * i + 3] = (uint8_t) s->h[i];
    }
}


void
tg_sha1_hex(const void *data, size_t len, char hex[41])
{
    static const char  digits[] = "0123456789abcdef";
    tg_sha1_t          s;
    uint8_t            d[20];
    int                i;

    tg_sha1_init(&s);
    tg_sha1_update(&s, data, len);
    tg_sha1_final(&s, d);

    for (i = 0; i < 20; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 0xf];
    }
    hex[40] = '\0';
}
