/*
 * topic.c — topic names, topic filters, matching, and shared subscriptions
 * (spec 4.7 and 4.8.2).
 *
 * Levels are the substrings between '/' separators; "a//b" has an empty middle
 * level and "/" has two empty levels. Matching walks filter and name level by
 * level with no allocation. "#" matches the parent level too ("sport/#" matches
 * "sport"), and a filter whose first character is a wildcard never matches a
 * name starting with '$' (4.7.2), so "#" does not see "$SYS/...".
 * UTF-8 validity is the caller's (the decoders check it before we get here).
 */
#include <string.h>

#include "mqtt/mqtt_int.h"

bool tm_topic_name_valid(const uint8_t *p, size_t len)
{
    if (len == 0 || len > 0xFFFF) return false;
    return !memchr(p, '+', len) && !memchr(p, '#', len);
}

bool tm_topic_filter_valid(const uint8_t *p, size_t len)
{
    if (len == 0 || len > 0xFFFF) return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != '/') continue;
        /* level [start, i) */
        for (size_t k = start; k < i; k++) {
            if (p[k] == '+' || p[k] == '#') {
                if (i - start != 1) return false;         /* wildcard not a whole level */
                if (p[k] == '#' && i != len) return false; /* '#' only last */
            }
        }
        start = i + 1;
    }
    return true;
}

bool tm_topic_match(const uint8_t *filter, size_t flen, const uint8_t *name, size_t nlen)
{
    if (flen == 0 || nlen == 0) return false;
    if (name[0] == '$' && (filter[0] == '+' || filter[0] == '#')) return false;
    size_t f = 0, n = 0;
    bool name_done = false;
    for (;;) {
        size_t fe = f, ne = n;
        while (fe < flen && filter[fe] != '/') fe++;
        if (fe - f == 1 && filter[f] == '#') return true;  /* the rest, possibly nothing */
        if (name_done) return false;
        while (ne < nlen && name[ne] != '/') ne++;
        if (!(fe - f == 1 && filter[f] == '+') &&
            (fe - f != ne - n || memcmp(filter + f, name + n, fe - f) != 0))
            return false;
        bool flast = fe == flen, nlast = ne == nlen;
        if (flast) return nlast;
        f = fe + 1;
        if (nlast)
            name_done = true;   /* only a trailing "#" can still match */
        else
            n = ne + 1;
    }
}

bool tm_topic_split_shared(tm_str full, tm_str *group, tm_str *filter, bool *bad)
{
    static const char prefix[] = "$share/";
    const size_t plen = sizeof prefix - 1;
    bool dummy;
    if (!bad) bad = &dummy;
    *bad = false;
    if (!full.p || full.len < plen || memcmp(full.p, prefix, plen) != 0) return false;
    const uint8_t *g = full.p + plen;
    size_t rest = full.len - plen;
    const uint8_t *slash = memchr(g, '/', rest);
    if (!slash) {
        *bad = true;
        return false;
    }
    size_t glen = (size_t)(slash - g);
    if (glen == 0 || memchr(g, '+', glen) || memchr(g, '#', glen)) {
        *bad = true;
        return false;
    }
    const uint8_t *f = slash + 1;
    size_t flen = rest - glen - 1;
    if (flen == 0 || !tm_topic_filter_valid(f, flen)) {
        *bad = true;
        return false;
    }
    if (group) {
        group->p = g;
        group->len = (uint32_t)glen;
    }
    if (filter) {
        filter->p = f;
        filter->len = (uint32_t)flen;
    }
    return true;
}
