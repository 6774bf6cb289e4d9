/*
 * trie.c — the topic tree: one node per topic level, holding the
 * subscriptions whose filter ends there, the shared-subscription groups, and
 * the retained message of the topic that ends there.
 *
 * Edges live in one broker-wide hash map keyed by (parent pointer, level
 * bytes), so finding a child is one lookup however wide the tree is; each node
 * also keeps a list of its children (for wildcard walks over retained
 * messages) and direct pointers to its '+' and '#' children (for matching).
 *
 * Walks use an explicit stack, not recursion: a topic may have tens of
 * thousands of levels and the WebAssembly build has a small native stack.
 *
 * Invariants: a node exists only while it has subscriptions, shares, a
 * retained message or children (tm_trie_prune restores this after removals);
 * retained messages are only stored on paths without wildcard levels.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

struct tm_node {
    tm_node *parent;
    tm_node *child, *next, *prev;   /* children list */
    tm_node *plus, *hash;           /* wildcard children */
    tm_sub *subs;
    uint32_t n_subs, cap_subs;
    tm_share *shares;
    uint32_t n_shares;
    tm_msg *retained;
    uint32_t keylen;                /* sizeof(void *) + level length */
    uint8_t key[];                  /* parent pointer, then the level's bytes */
};

static const uint8_t *level_of(const tm_node *n, uint32_t *len)
{
    *len = n->keylen - (uint32_t)sizeof(void *);
    return n->key + sizeof(void *);
}

static bool is_level(const tm_node *n, char c)
{
    return n->keylen == sizeof(void *) + 1 && n->key[sizeof(void *)] == (uint8_t)c;
}

static tm_node *child_get(tm_broker *b, tm_node *parent, const uint8_t *lvl, uint32_t len,
                          bool create)
{
    uint8_t stackkey[sizeof(void *) + 256];
    uint8_t *key = stackkey;
    uint32_t klen = (uint32_t)sizeof(void *) + len;
    if (klen > sizeof stackkey) {
        key = malloc(klen);
        if (!key)
            return NULL;
    }
    memcpy(key, &parent, sizeof(void *));
    memcpy(key + sizeof(void *), lvl, len);
    tm_node *n = tm_map_get(&b->nodes, key, klen);
    if (!n && create) {
        n = calloc(1, sizeof *n + klen);
        if (n) {
            n->parent = parent;
            n->keylen = klen;
            memcpy(n->key, key, klen);
            if (tm_map_put(&b->nodes, n->key, klen, n) < 0) {
                free(n);
                n = NULL;
            } else {
                n->next = parent->child;
                if (parent->child)
                    parent->child->prev = n;
                parent->child = n;
                if (len == 1 && lvl[0] == '+')
                    parent->plus = n;
                else if (len == 1 && lvl[0] == '#')
                    parent->hash = n;
            }
        }
    }
    if (key != stackkey)
        free(key);
    return n;
}

tm_node *tm_trie_get(tm_broker *b, tm_str filter, bool create)
{
    if (!b->root) {
        if (!create)
            return NULL;
        b->root = calloc(1, sizeof *b->root + sizeof(void *));
        if (!b->root)
            return NULL;
        b->root->keylen = sizeof(void *);
    }
    tm_node *n = b->root;
    const uint8_t *p = filter.p, *end = filter.p + filter.len;
    for (;;) {
        const uint8_t *slash = memchr(p, '/', (size_t)(end - p));
        const uint8_t *lend = slash ? slash : end;
        n = child_get(b, n, p, (uint32_t)(lend - p), create);
        if (!n || !slash)
            return n;
        p = slash + 1;
    }
}

void tm_trie_prune(tm_broker *b, tm_node *n)
{
    while (n && n != b->root && !n->n_subs && !n->n_shares && !n->retained && !n->child) {
        tm_node *parent = n->parent;
        tm_map_del(&b->nodes, n->key, n->keylen);
        if (n->prev)
            n->prev->next = n->next;
        else
            parent->child = n->next;
        if (n->next)
            n->next->prev = n->prev;
        if (parent->plus == n)
            parent->plus = NULL;
        if (parent->hash == n)
            parent->hash = NULL;
        free(n->subs);
        free(n->shares);
        free(n);
        n = parent;
    }
}

static bool subs_put(tm_sub **arr, uint32_t *n, uint32_t *cap, const tm_sub *sub)
{
    for (uint32_t i = 0; i < *n; i++) {
        if ((*arr)[i].sess == sub->sess) {
            (*arr)[i] = *sub;
            return true;
        }
    }
    if (*n == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 4;
        tm_sub *na = realloc(*arr, nc * sizeof *na);
        if (!na)
            return false;
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = *sub;
    return false;
}

static bool subs_del(tm_sub *arr, uint32_t *n, tm_session *s)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (arr[i].sess == s) {
            arr[i] = arr[--*n];
            return true;
        }
    }
    return false;
}

static tm_share *share_find(tm_node *n, tm_str group, bool create)
{
    for (uint32_t i = 0; i < n->n_shares; i++)
        if (strlen(n->shares[i].group) == group.len &&
            memcmp(n->shares[i].group, group.p, group.len) == 0)
            return &n->shares[i];
    if (!create)
        return NULL;
    tm_share *ns = realloc(n->shares, (n->n_shares + 1) * sizeof *ns);
    if (!ns)
        return NULL;
    n->shares = ns;
    tm_share *sh = &ns[n->n_shares];
    memset(sh, 0, sizeof *sh);
    sh->group = strndup((const char *)group.p, group.len);
    if (!sh->group)
        return NULL;
    n->n_shares++;
    return sh;
}

bool tm_trie_sub_add(tm_broker *b, tm_node *n, tm_str group, const tm_sub *sub)
{
    bool existed;
    if (group.p) {
        tm_share *sh = share_find(n, group, true);
        if (!sh)
            return false;
        existed = subs_put(&sh->members, &sh->n, &sh->cap, sub);
    } else {
        existed = subs_put(&n->subs, &n->n_subs, &n->cap_subs, sub);
    }
    if (!existed)
        b->n_subscriptions++;
    return existed;
}

bool tm_trie_sub_del(tm_broker *b, tm_node *n, tm_str group, tm_session *s)
{
    bool found;
    if (group.p) {
        tm_share *sh = share_find(n, group, false);
        if (!sh)
            return false;
        found = subs_del(sh->members, &sh->n, s);
        if (sh->n == 0) {
            free(sh->group);
            free(sh->members);
            *sh = n->shares[--n->n_shares];
        }
    } else {
        found = subs_del(n->subs, &n->n_subs, s);
    }
    if (found)
        b->n_subscriptions--;
    return found;
}

/* ---- matching ---------------------------------------------------------- */

static tm_match *match_slot(tm_broker *b)
{
    if (b->n_matches == b->cap_matches) {
        uint32_t nc = b->cap_matches ? b->cap_matches * 2 : 64;
        tm_match *nm = realloc(b->matches, nc * sizeof *nm);
        if (!nm)
            return NULL;
        b->matches = nm;
        b->cap_matches = nc;
    }
    return &b->matches[b->n_matches++];
}

static void add_subid(tm_match *m, uint32_t subid)
{
    if (subid && m->n_subids < TM_OUT_SUBIDS)
        m->subids[m->n_subids++] = subid;
}

static void collect(tm_broker *b, tm_node *n, uint64_t origin)
{
    for (uint32_t i = 0; i < n->n_subs; i++) {
        tm_sub *s = &n->subs[i];
        tm_session *sess = s->sess;
        if (s->opts.no_local && sess->id == origin)
            continue;
        if (sess->match_stamp == b->match_stamp) {
            /* overlapping subscriptions of one session: one delivery with
             * the highest QoS and every subscription identifier */
            tm_match *m = &b->matches[sess->match_idx];
            if (s->opts.qos > m->qos)
                m->qos = s->opts.qos;
            m->retain_as_published |= s->opts.retain_as_published;
            add_subid(m, s->subid);
            continue;
        }
        tm_match *m = match_slot(b);
        if (!m)
            return;
        sess->match_stamp = b->match_stamp;
        sess->match_idx = (uint32_t)(m - b->matches);
        m->sess = sess;
        m->qos = s->opts.qos;
        m->retain_as_published = s->opts.retain_as_published;
        m->n_subids = 0;
        add_subid(m, s->subid);
    }
    for (uint32_t i = 0; i < n->n_shares; i++) {
        tm_share *sh = &n->shares[i];
        if (!sh->n)
            continue;
        /* round robin, preferring members that are online */
        uint32_t pick = sh->next % sh->n;
        for (uint32_t k = 0; k < sh->n; k++) {
            uint32_t j = (sh->next + k) % sh->n;
            if (sh->members[j].sess->conn) {
                pick = j;
                break;
            }
        }
        sh->next = pick + 1;
        tm_sub *s = &sh->members[pick];
        tm_match *m = match_slot(b);
        if (!m)
            return;
        m->sess = s->sess;
        m->qos = s->opts.qos;
        m->retain_as_published = s->opts.retain_as_published;
        m->n_subids = 0;
        add_subid(m, s->subid);
    }
}

typedef struct walk_ent {
    tm_node *n;
    uint32_t off;        /* offset in the topic of the next level to match */
    bool done;           /* all levels consumed */
} walk_ent;

typedef struct walk_stack {
    walk_ent *e;
    uint32_t n, cap;
} walk_stack;

static bool push(walk_stack *st, tm_node *n, uint32_t off, bool done)
{
    if (st->n == st->cap) {
        uint32_t nc = st->cap ? st->cap * 2 : 32;
        walk_ent *ne = realloc(st->e, nc * sizeof *ne);
        if (!ne)
            return false;
        st->e = ne;
        st->cap = nc;
    }
    st->e[st->n++] = (walk_ent){n, off, done};
    return true;
}

/* The level of s starting at off: its bytes, length, where the next level
 * starts, and whether it is the last. */
static const uint8_t *next_level(tm_str s, uint32_t off, uint32_t *len, uint32_t *next_off,
                                 bool *last)
{
    const uint8_t *p = s.p + off;
    size_t rest = s.len - off;
    const uint8_t *slash = memchr(p, '/', rest);
    *len = slash ? (uint32_t)(slash - p) : (uint32_t)rest;
    *next_off = off + *len + 1;
    *last = !slash;
    return p;
}

void tm_trie_match(tm_broker *b, tm_str topic, uint64_t origin)
{
    b->n_matches = 0;
    if (++b->match_stamp == 0) {
        /* wrapped: a session last matched 2^32 publishes ago must not look
         * matched by this one */
        uint32_t i = 0;
        tm_map_ent *e;
        while ((e = tm_map_next(&b->sessions, &i)))
            ((tm_session *)e->val)->match_stamp = 0;
        b->match_stamp = 1;
    }
    if (!b->root)
        return;
    bool dollar = topic.len > 0 && topic.p[0] == '$';
    walk_stack st = {0};
    push(&st, b->root, 0, false);
    while (st.n) {
        walk_ent w = st.e[--st.n];
        if (w.done) {
            collect(b, w.n, origin);
            if (w.n->hash)
                collect(b, w.n->hash, origin);  /* "a/#" matches "a" */
            continue;
        }
        uint32_t lvl_len, next_off;
        bool last;
        const uint8_t *p = next_level(topic, w.off, &lvl_len, &next_off, &last);
        bool first = w.n == b->root;
        if (!(first && dollar)) {
            if (w.n->hash)
                collect(b, w.n->hash, origin);
            if (w.n->plus)
                push(&st, w.n->plus, next_off, last);
        }
        tm_node *c = child_get(b, w.n, p, lvl_len, false);
        if (c)
            push(&st, c, next_off, last);
    }
    free(st.e);
}

/* ---- retained ---------------------------------------------------------- */

void tm_trie_retain(tm_broker *b, tm_str topic, tm_msg *m)
{
    tm_node *n = tm_trie_get(b, topic, m != NULL);
    if (!n)
        return;
    if (n->retained) {
        tm_msg_unref(n->retained);
        n->retained = NULL;
        b->n_retained--;
    }
    if (m) {
        n->retained = tm_msg_ref(m);
        b->n_retained++;
    } else {
        tm_trie_prune(b, n);
    }
}

/* Can the subtree under child c hold retained messages that a wildcard level
 * matches? Not under wildcard levels, and not under '$' topics at the first
 * level (MQTT's '$' rule). */
static bool may_hold_retained(const tm_node *c, bool first_level)
{
    if (is_level(c, '+') || is_level(c, '#'))
        return false;
    uint32_t l;
    const uint8_t *lv = level_of(c, &l);
    return !(first_level && l && lv[0] == '$');
}

/* Visit n and every descendant that holds a retained message. */
static void each_below(tm_node *n, tm_retained_cb cb, void *ud, walk_stack *st)
{
    uint32_t base = st->n;
    push(st, n, 0, false);
    while (st->n > base) {
        tm_node *x = st->e[--st->n].n;
        if (x->retained)
            cb(x->retained, ud);
        for (tm_node *c = x->child; c; c = c->next)
            if (may_hold_retained(c, false))
                push(st, c, 0, false);
    }
}

void tm_trie_retained_each(tm_broker *b, tm_str filter, tm_retained_cb cb, void *ud)
{
    if (!b->root || !b->n_retained)
        return;
    walk_stack st = {0};
    push(&st, b->root, 0, false);
    while (st.n) {
        walk_ent w = st.e[--st.n];
        if (w.done) {
            if (w.n->retained)
                cb(w.n->retained, ud);
            continue;
        }
        uint32_t lvl_len, next_off;
        bool last;
        const uint8_t *p = next_level(filter, w.off, &lvl_len, &next_off, &last);
        bool first = w.n == b->root;
        if (lvl_len == 1 && p[0] == '#') {
            /* "#" matches the parent level too ("a/#" matches "a") */
            if (!first && w.n->retained)
                cb(w.n->retained, ud);
            for (tm_node *c = w.n->child; c; c = c->next) {
                if (!may_hold_retained(c, first))
                    continue;
                each_below(c, cb, ud, &st);
            }
        } else if (lvl_len == 1 && p[0] == '+') {
            for (tm_node *c = w.n->child; c; c = c->next) {
                if (!may_hold_retained(c, first))
                    continue;
                push(&st, c, next_off, last);
            }
        } else {
            tm_node *c = child_get(b, w.n, p, lvl_len, false);
            if (c)
                push(&st, c, next_off, last);
        }
    }
    free(st.e);
}

void tm_trie_retained_all(tm_broker *b, tm_retained_cb cb, void *ud)
{
    uint32_t i = 0;
    tm_map_ent *e;
    while ((e = tm_map_next(&b->nodes, &i))) {
        tm_node *n = e->val;
        if (n->retained)
            cb(n->retained, ud);
    }
}

void tm_trie_free(tm_broker *b)
{
    uint32_t i = 0;
    tm_map_ent *e;
    while ((e = tm_map_next(&b->nodes, &i))) {
        tm_node *n = e->val;
        tm_msg_unref(n->retained);
        for (uint32_t k = 0; k < n->n_shares; k++) {
            free(n->shares[k].group);
            free(n->shares[k].members);
        }
        free(n->shares);
        free(n->subs);
        free(n);
    }
    tm_map_free(&b->nodes);
    free(b->root);
    b->root = NULL;
}
