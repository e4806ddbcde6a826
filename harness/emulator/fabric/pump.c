/*
 * The fabric's fast path: a byte pump for client endpoints.
 *
 * Why it exists: forwarding in Python costs a callback, a bytes object and a
 * transport write per chunk, which made the emulated cluster endpoint slower
 * than pgbouncer.  Here a chunk costs one read() and one write().
 *
 * The Python fabric still decides everything: it accepts the client, picks the
 * upstream (stale DNS, round robin), connects it, and only then hands both
 * sockets over.  From then on this loop moves the bytes, passes half-closes on
 * and reports when the pair is over.
 *
 * MySQL endpoints ("mysql" pairs) are followed packet by packet on the way in:
 * every client packet is judged whole before it is forwarded, and the first
 * one the Python session must see (a COM_QUERY that mentions one of the
 * "needles", case-insensitively, or a COM_CHANGE_USER) makes the pump hand the
 * whole connection back to the fabric, with what it still holds and what it
 * learnt on the way (the handshake response, the server's capabilities and
 * status flags).  The server's bytes are only observed, for those flags.
 *
 * Control protocol: one SOCK_SEQPACKET message per command, ASCII.
 *   fabric -> pump   "pair <id>" + 2 fds (client, upstream)   take over a connection
 *                    "mysql <id>" + 2 fds                     the same, following MySQL
 *                    "needles <word>..."                      what makes a MySQL query Python's
 *                    "close <id>"                             reset both sides (RST)
 *                    "yield <id>"                             hand a pair back now ("back")
 *                    "resume <id> <greeted> <awaiting> <status> <server_caps> <n_answer> <n_response>"
 *                        + 3 fds (client, upstream, memfd)    a MySQL pair Python is done with,
 *                        as "back" gave it (the memfd: the awaited answer's start, the response)
 *   pump -> fabric   "closed <id> <bytes_up> <bytes_down>"    a pair is over, for any reason
 *                    "back <id> <bytes_up> <bytes_down> <greeted> <awaiting> <status>
 *                     <server_caps> <n_to_server> <n_to_client> <n_unjudged> <n_answer>
 *                     <n_response>" + 3 fds (client, upstream, memfd)
 *                        a MySQL pair is the fabric's again; the memfd holds, in this order,
 *                        bytes judged but not yet taken by the server, bytes for the client,
 *                        client bytes not judged yet, the start of the answer being
 *                        awaited, and the client's handshake response payload.
 * EOF on the control socket means the fabric is gone: reset every pair and
 * exit, so a dead fabric never leaves a pump (or half-proxied sessions) behind.
 *
 * Usage: pump <control-fd>
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum { CLIENT, UPSTREAM };  /* the two ends of a pair */

#define MAX_EVENTS 64
#define CONTROL_MSG 512      /* longest control message, NUL included */
#define MAX_NEEDLES 32

/* MySQL, as much as the pump follows of it (see mysql_protocol.py / mysql_session.py). */
#define MY_MAX_PACKET 0xFFFFFFu      /* a payload this long continues: passed unjudged */
#define MY_COM_QUERY 0x03
#define MY_COM_CHANGE_USER 0x11
#define MY_COM_RESET_CONNECTION 0x1F
#define MY_CLIENT_COMPRESS 0x20u
#define MY_CLIENT_PROTOCOL_41 0x200u
#define MY_CLIENT_SSL 0x800u
#define MY_STATUS_AUTOCOMMIT 0x0002
#define MY_OBSERVED (4 + 1024)       /* the start of a server packet kept to read its flags */

struct pair;

/* One socket.  epoll's data.ptr points here; `events` is what epoll watches
 * now, 0 meaning "not in the epoll set". */
struct end {
    struct pair *pair;       /* NULL for the control socket */
    int fd;
    uint32_t events;
};

/* The bytes read from one end on their way to the other. */
struct flow {
    char *pending;           /* read, but not yet taken by the destination */
    size_t off, len;
    uint64_t delivered;      /* bytes the destination has taken: the fabric's counters */
    bool eof;                /* the source sent FIN... */
    bool shut;               /* ...and it went on to the destination (shutdown SHUT_WR) */
};

/* What a MySQL pair knows; mirrors the Python session's fields of the same names. */
struct mysql {
    char *held;              /* client bytes read but not judged yet (a packet's start) */
    size_t held_len, held_cap;
    uint64_t passthrough;    /* bytes left of a 16 MiB+ packet, forwarded unjudged */
    bool raw;                /* TLS, compression or a pre-4.1 client: bytes only */
    char *response;          /* the client's handshake response payload, for Python */
    size_t response_len;
    bool greeted;            /* the server's greeting has been read */
    bool awaiting;           /* the next server packet starts the answer to a COM_QUERY */
    char observed[MY_OBSERVED];  /* the greeting's or the awaited answer's start */
    size_t observed_len;
    uint16_t status;         /* the server's status flags (autocommit, in transaction) */
    uint32_t server_caps;
};

struct pair {
    uint64_t id;
    struct end end[2];
    struct flow flow[2];     /* flow[s] carries bytes from end[s] to end[!s] */
    struct mysql *my;        /* NULL unless the pair follows MySQL */
    int back_fd;             /* >= 0: handed back; the memfd goes with the "back" report */
    char *back_text;         /* that report */
    bool over;               /* sockets closed; kept only until "closed" is sent */
    struct pair *prev, *next;    /* live pairs */
    struct pair *report_next;    /* pairs that are over and not reported yet */
};

static int epfd;
static struct end control = { .pair = NULL, .fd = -1 };
static struct pair *live;
static struct pair *reports, **reports_tail = &reports;
/* Every read lands here first; only what a destination refuses is copied out,
 * so an idle pair costs a few hundred bytes, not a buffer per direction. */
static char scratch[1 << 18];
/* What makes a MySQL query Python's: lower-case words, and which bytes may start one. */
static char *needles[MAX_NEEDLES];
static size_t needle_len[MAX_NEEDLES];
static int needle_count;
static bool needle_start[256];

static void die(const char *what)
{
    fprintf(stderr, "fabric pump: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Make epoll watch exactly `want` on this end.  A socket with nothing to wait
 * for leaves the epoll set altogether: EPOLLHUP is reported whatever the mask,
 * and a half-closed socket whose data we are not reading would spin. */
static void watch(struct end *e, uint32_t want)
{
    if (want == e->events)
        return;  /* the steady state: no syscall */
    struct epoll_event ev = { .events = want, .data.ptr = e };
    int op = want == 0 ? EPOLL_CTL_DEL : e->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(epfd, op, e->fd, &ev) < 0)
        die("epoll_ctl");
    e->events = want;
}

/* Read an end while its flow has room (nothing pending, no EOF): that is the
 * backpressure.  Wait for it to be writable while bytes for it are pending. */
static void rewatch(struct pair *p)
{
    for (int s = CLIENT; s <= UPSTREAM; s++) {
        uint32_t want = 0;
        if (!p->flow[s].eof && p->flow[s].len == 0)
            want |= EPOLLIN;
        if (p->flow[!s].len > 0)
            want |= EPOLLOUT;
        watch(&p->end[s], want);
    }
}

static void report(struct pair *p)
{
    p->report_next = NULL;
    *reports_tail = p;
    reports_tail = &p->report_next;
}

/* The pair leaves the pump: out of epoll, buffers freed, reported (and freed
 * once the fabric has been told: flush_reports).  Its sockets are the caller's. */
static void retire(struct pair *p)
{
    for (int s = CLIENT; s <= UPSTREAM; s++) {
        /* Leave the epoll set before close(): the fabric may not have closed
         * its copy of the fd yet, and epoll forgets a socket only when the
         * last copy goes, which would leave events pointing at freed memory. */
        watch(&p->end[s], 0);
        free(p->flow[s].pending);
        p->flow[s].pending = NULL;
        p->flow[s].len = 0;
    }
    if (p->my) {
        free(p->my->held);
        free(p->my->response);
        free(p->my);
        p->my = NULL;
    }
    p->over = true;
    if (p->prev)
        p->prev->next = p->next;
    else
        live = p->next;
    if (p->next)
        p->next->prev = p->prev;
    report(p);
}

/* Close both sockets; with `reset`, as RSTs (SO_LINGER 0), which is how a
 * dropped session or a dead host looks to the peers. */
static void end_pair(struct pair *p, bool reset)
{
    static const struct linger rst = { .l_onoff = 1, .l_linger = 0 };
    for (int s = CLIENT; s <= UPSTREAM; s++) {
        watch(&p->end[s], 0);
        if (reset)
            setsockopt(p->end[s].fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
        close(p->end[s].fd);
    }
    retire(p);
}

/* Flow s is at EOF with nothing pending: pass the FIN on.  When both ways are
 * shut the pair is over, closed gracefully. */
static void pass_eof(struct pair *p, int s)
{
    shutdown(p->end[!s].fd, SHUT_WR);  /* a failure surfaces on the next read or write */
    p->flow[s].shut = true;
    if (p->flow[!s].shut)
        end_pair(p, false);
}

/* Write what flow s holds back to its destination. */
static void flush(struct pair *p, int s)
{
    struct flow *f = &p->flow[s];
    ssize_t n = write(p->end[!s].fd, f->pending + f->off, f->len);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            end_pair(p, true);
        return;
    }
    f->delivered += n;
    f->off += n;
    f->len -= n;
    if (f->len == 0) {
        free(f->pending);
        f->pending = NULL;
        f->off = 0;
        if (f->eof)
            pass_eof(p, s);
    }
}

/* Write n bytes read from end s straight on; keep what the destination refuses
 * (nothing is pending when this is called: ends are read only then).
 * False when that ended the pair. */
static bool forward(struct pair *p, int s, const char *buf, size_t n)
{
    struct flow *f = &p->flow[s];
    if (n == 0)
        return true;
    ssize_t w = write(p->end[!s].fd, buf, n);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            end_pair(p, true);
            return false;
        }
        w = 0;
    }
    f->delivered += w;
    if ((size_t)w < n) {
        f->pending = malloc(n - w);
        if (f->pending == NULL) {
            end_pair(p, true);
            return false;
        }
        memcpy(f->pending, buf + w, n - w);
        f->off = 0;
        f->len = n - w;
    }
    return true;
}

/* ---- MySQL ------------------------------------------------------------ */

static uint32_t le(const char *at, int bytes)
{
    uint32_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | (unsigned char)at[i];
    return v;
}

/* Does the query text mention a needle (ASCII case-insensitively)?  One pass;
 * only bytes that can start a needle are looked at further. */
static bool mentions(const char *q, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!needle_start[(unsigned char)q[i]])
            continue;
        for (int k = 0; k < needle_count; k++)
            if (needle_len[k] <= n - i && strncasecmp(q + i, needles[k], needle_len[k]) == 0)
                return true;
    }
    return false;
}

static void set_needles(const char *words)
{
    for (int k = 0; k < needle_count; k++)
        free(needles[k]);
    needle_count = 0;
    memset(needle_start, 0, sizeof needle_start);
    char *copy = strdup(words), *save = NULL;
    for (char *w = strtok_r(copy, " ", &save); w && needle_count < MAX_NEEDLES; w = strtok_r(NULL, " ", &save)) {
        for (char *c = w; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        needles[needle_count] = strdup(w);
        needle_len[needle_count++] = strlen(w);
        needle_start[(unsigned char)w[0]] = true;
        needle_start[(unsigned char)toupper((unsigned char)w[0])] = true;
    }
    free(copy);
}

/* One whole client packet: does the Python session need it?  Packets that are
 * not commands (sequence > 0) pass; the first one after the greeting is the
 * handshake response, kept for Python and read for TLS or compression. */
static bool needs_python(struct mysql *m, const char *packet, size_t len)
{
    const char *payload = packet + 4;
    if (packet[3] != 0) {
        if (packet[3] == 1 && m->response == NULL && m->greeted && len >= 4) {
            if ((m->response = malloc(len)) != NULL) {
                memcpy(m->response, payload, len);
                m->response_len = len;
            }
            uint32_t caps = le(payload, 4);
            if (!(caps & MY_CLIENT_PROTOCOL_41) || (caps & MY_CLIENT_SSL) || (caps & m->server_caps & MY_CLIENT_COMPRESS))
                m->raw = true;
        }
        return false;
    }
    if (len == 0)
        return false;
    switch ((unsigned char)payload[0]) {
    case MY_COM_CHANGE_USER:
        return true;  /* Python notes the new user */
    case MY_COM_RESET_CONNECTION:
        m->status = MY_STATUS_AUTOCOMMIT;
        return false;
    case MY_COM_QUERY:
        if (mentions(payload + 1, len - 1))
            return true;
        m->awaiting = true;
        m->observed_len = 0;
        return false;
    default:
        return false;
    }
}

/* The greeting: the server's capabilities and initial status flags. */
static void read_greeting(struct mysql *m, const char *payload, size_t len)
{
    const char *nul = len > 1 ? memchr(payload + 1, 0, len - 1) : NULL;
    if (nul == NULL)
        return;
    const char *rest = nul + 1;
    size_t left = payload + len - rest;
    m->server_caps = left >= 15 ? le(rest + 13, 2) : left == 14 ? le(rest + 13, 1) : 0;
    if (left >= 20) {
        m->status = (uint16_t)le(rest + 16, 2);
        m->server_caps |= le(rest + 18, 2) << 16;
    }
}

/* An OK packet's body: skip affected rows and last insert id, read the flags. */
static void read_ok(struct mysql *m, const unsigned char *body, size_t len)
{
    size_t at = 0;
    for (int i = 0; i < 2; i++) {
        if (at >= len)
            return;
        at += body[at] == 0xFC ? 3 : body[at] == 0xFD ? 4 : body[at] == 0xFE ? 9 : 1;
    }
    if (at + 2 <= len)
        m->status = (uint16_t)(body[at] | body[at + 1] << 8);
}

/* The server's bytes, observed on their way: the greeting, then the first
 * packet of each answer to a forwarded query (an OK carries the status). */
static void observe(struct mysql *m, const char *data, size_t n)
{
    if (m->raw || (m->greeted && !m->awaiting))
        return;
    size_t take = n < MY_OBSERVED - m->observed_len ? n : MY_OBSERVED - m->observed_len;
    memcpy(m->observed + m->observed_len, data, take);
    m->observed_len += take;
    if (m->observed_len < 4)
        return;
    size_t len = le(m->observed, 3);
    bool full = m->observed_len == MY_OBSERVED;
    if (!m->greeted) {
        if (m->observed_len >= 4 + len || full) {
            read_greeting(m, m->observed + 4, m->observed_len - 4 < len ? m->observed_len - 4 : len);
            m->greeted = true;
            m->observed_len = 0;
        }
        return;
    }
    if (m->observed_len < 5)
        return;
    if (m->observed[4] != 0 || len > 1024) {
        m->awaiting = false;  /* a result set or an error */
        return;
    }
    if (m->observed_len < 4 + len)
        return;
    m->awaiting = false;
    read_ok(m, (const unsigned char *)m->observed + 5, len - 1);
}

static bool write_all(int fd, const char *at, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, at, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        at += n;
        len -= (size_t)n;
    }
    return true;
}

/* Give a MySQL pair back to the fabric: its sockets, and in a memfd whatever
 * the pump holds of it (see the header), so that Python goes on exactly where
 * the pump stopped.  `unjudged` may point into m->held: it is copied first. */
static void hand_back(struct pair *p, const char *unjudged, size_t n)
{
    struct mysql *m = p->my;
    struct flow *up = &p->flow[CLIENT], *down = &p->flow[UPSTREAM];
    size_t answer = m->awaiting ? m->observed_len : 0;
    const char *parts[] = { up->pending ? up->pending + up->off : "", down->pending ? down->pending + down->off : "",
                            unjudged, m->observed, m->response ? m->response : "" };
    size_t lens[] = { up->len, down->len, n, answer, m->response_len };
    int fd = memfd_create("fabric-pump-back", MFD_CLOEXEC);
    bool ok = fd >= 0;
    for (int i = 0; ok && i < 5; i++)
        ok = write_all(fd, parts[i], lens[i]);
    char text[CONTROL_MSG];
    snprintf(text, sizeof text, "back %" PRIu64 " %" PRIu64 " %" PRIu64 " %d %d %u %" PRIu32 " %zu %zu %zu %zu %zu",
             p->id, up->delivered, down->delivered, m->greeted, m->awaiting, m->status, m->server_caps,
             lens[0], lens[1], lens[2], lens[3], lens[4]);
    if (ok)
        ok = (p->back_text = strdup(text)) != NULL;
    if (!ok) {
        fprintf(stderr, "fabric pump: cannot hand pair %" PRIu64 " back: %s\n", p->id, strerror(errno));
        if (fd >= 0)
            close(fd);
        end_pair(p, true);
        return;
    }
    p->back_fd = fd;
    retire(p);  /* the sockets stay open until the report has carried them */
}

static bool hold(struct mysql *m, size_t need)
{
    if (need <= m->held_cap)
        return true;
    size_t cap = m->held_cap ? m->held_cap : 4096;
    while (cap < need)
        cap *= 2;
    char *grown = realloc(m->held, cap);
    if (grown == NULL)
        return false;
    m->held = grown;
    m->held_cap = cap;
    return true;
}

/* n client bytes of a MySQL pair are in scratch: forward every whole packet
 * the pump may pass, keep a partial one, or hand the pair back at the first
 * packet Python must see. */
static void mysql_in(struct pair *p, size_t n)
{
    struct mysql *m = p->my;
    const char *buf = scratch;
    size_t len = n;
    if (m->held_len > 0) {
        if (!hold(m, m->held_len + n)) {
            end_pair(p, true);
            return;
        }
        memcpy(m->held + m->held_len, scratch, n);
        m->held_len += n;
        buf = m->held;
        len = m->held_len;
    }
    size_t judged = 0;
    bool python = false;
    while (judged < len && !python) {
        if (m->raw) {
            judged = len;
        } else if (m->passthrough > 0) {
            size_t take = len - judged < m->passthrough ? len - judged : m->passthrough;
            judged += take;
            m->passthrough -= take;
        } else if (len - judged < 4) {
            break;
        } else {
            size_t plen = le(buf + judged, 3);
            if (plen == MY_MAX_PACKET)
                m->passthrough = 4 + (uint64_t)plen;
            else if (len - judged < 4 + plen)
                break;
            else if (needs_python(m, buf + judged, plen))
                python = true;
            else
                judged += 4 + plen;
        }
    }
    if (!forward(p, CLIENT, buf, judged))
        return;
    size_t rest = len - judged;
    if (python) {
        hand_back(p, buf + judged, rest);
        return;
    }
    if (buf == m->held) {
        memmove(m->held, m->held + judged, rest);
    } else if (rest > 0) {
        if (!hold(m, rest)) {
            end_pair(p, true);
            return;
        }
        memcpy(m->held, buf + judged, rest);
    }
    m->held_len = rest;
}

/* End s is readable: one read, written straight on; keep what is refused. */
static void pump_in(struct pair *p, int s)
{
    struct flow *f = &p->flow[s];
    ssize_t n = read(p->end[s].fd, scratch, sizeof scratch);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            end_pair(p, true);  /* e.g. ECONNRESET: mirror the reset on the other side */
        return;
    }
    if (n == 0) {
        f->eof = true;  /* a partial MySQL packet held is dropped, as the Python session would */
        pass_eof(p, s);
        return;
    }
    if (p->my && s == CLIENT) {
        mysql_in(p, (size_t)n);
        return;
    }
    if (p->my)
        observe(p->my, scratch, (size_t)n);
    forward(p, s, scratch, (size_t)n);
}

static void on_event(struct end *e, uint32_t events)
{
    struct pair *p = e->pair;
    int s = e == &p->end[UPSTREAM] ? UPSTREAM : CLIENT;
    if (p->over)
        return;  /* ended earlier in this batch of events */
    if (events & EPOLLERR) {
        end_pair(p, true);
        return;
    }
    /* EPOLLHUP: try whatever we wait for; the read or write then says EOF or error. */
    if ((events & (EPOLLOUT | EPOLLHUP)) && p->flow[!s].len > 0)
        flush(p, !s);
    if (!p->over && (events & (EPOLLIN | EPOLLHUP)) && !p->flow[s].eof && p->flow[s].len == 0)
        pump_in(p, s);
    if (!p->over)
        rewatch(p);
}

static struct pair *take_pair(uint64_t id, const int *fds, int nfds, bool mysql)
{
    struct pair *p = calloc(1, sizeof *p);
    if (p == NULL || (mysql && (p->my = calloc(1, sizeof *p->my)) == NULL))
        die("out of memory");
    p->id = id;
    p->back_fd = -1;
    if (p->my)
        p->my->status = MY_STATUS_AUTOCOMMIT;
    if (nfds != 2) {
        /* The fds did not arrive (at our fd limit the kernel drops them):
         * the fabric must still hear that this connection is over. */
        fprintf(stderr, "fabric pump: pair %" PRIu64 " arrived with %d fds\n", id, nfds);
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        free(p->my);
        p->my = NULL;
        p->over = true;
        report(p);
        return NULL;
    }
    for (int s = CLIENT; s <= UPSTREAM; s++) {
        p->end[s] = (struct end){ .pair = p, .fd = fds[s] };
        fcntl(fds[s], F_SETFL, fcntl(fds[s], F_GETFL) | O_NONBLOCK);
    }
    p->next = live;
    if (live)
        live->prev = p;
    live = p;
    rewatch(p);
    return p;
}

/* A MySQL pair back from Python: what it knew, so the next handback tells it again. */
static void take_resumed(uint64_t id, int *fds, int nfds, const char *text)
{
    int greeted, awaiting;
    unsigned status, caps;
    size_t n_answer, n_response;
    int memfd = nfds == 3 ? fds[2] : -1;
    if (sscanf(text, "resume %*s %d %d %u %u %zu %zu", &greeted, &awaiting, &status, &caps,
               &n_answer, &n_response) != 6 || n_answer > MY_OBSERVED) {
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        fprintf(stderr, "fabric pump: bad resume %s\n", text);
        take_pair(id, fds, 0, true);  /* only to report it over */
        return;
    }
    struct pair *p = take_pair(id, fds, nfds == 3 ? 2 : nfds, true);
    if (p != NULL) {
        struct mysql *m = p->my;
        m->greeted = greeted;
        m->awaiting = awaiting;
        m->status = (uint16_t)status;
        m->server_caps = caps;
        m->response = n_response ? malloc(n_response) : NULL;
        if (pread(memfd, m->observed, n_answer, 0) != (ssize_t)n_answer ||
            (n_response && (m->response == NULL || pread(memfd, m->response, n_response, n_answer) != (ssize_t)n_response))) {
            fprintf(stderr, "fabric pump: cannot read pair %" PRIu64 "'s state\n", id);
            end_pair(p, true);
        } else {
            m->observed_len = n_answer;
            m->response_len = n_response;
        }
    }
    if (memfd >= 0)
        close(memfd);
}

static struct pair *find(uint64_t id)
{
    for (struct pair *p = live; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

/* The fabric is gone: its sessions die with it, as with a crashed proxy host. */
static void reset_all_and_exit(void)
{
    static const struct linger rst = { .l_onoff = 1, .l_linger = 0 };
    while (live)
        end_pair(live, true);
    for (struct pair *p = reports; p; p = p->report_next)
        if (p->back_fd >= 0)  /* handed back, but the fabric never took them */
            for (int s = CLIENT; s <= UPSTREAM; s++)
                setsockopt(p->end[s].fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
    exit(0);
}

static void control_in(void)
{
    for (;;) {
        char text[CONTROL_MSG];
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(3 * sizeof(int))];
        } cbuf;
        struct iovec iov = { .iov_base = text, .iov_len = sizeof text - 1 };
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = cbuf.buf, .msg_controllen = sizeof cbuf.buf,
        };
        ssize_t n = recvmsg(control.fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            die("control socket");
        }
        if (n == 0)
            reset_all_and_exit();
        text[n] = '\0';

        int fds[3], nfds = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            int count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (int i = 0; i < count; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if (nfds < 3)
                    fds[nfds++] = fd;
                else
                    close(fd);
            }
        }

        uint64_t id;
        if (sscanf(text, "pair %" SCNu64, &id) == 1 || sscanf(text, "mysql %" SCNu64, &id) == 1) {
            if (nfds == 3)
                close(fds[--nfds]);
            take_pair(id, fds, nfds, text[0] == 'm');
            continue;
        }
        if (sscanf(text, "resume %" SCNu64, &id) == 1) {
            take_resumed(id, fds, nfds, text);
            continue;
        }
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        if (sscanf(text, "close %" SCNu64, &id) == 1) {
            struct pair *p = find(id);
            if (p)  /* else it ended on its own and its report is on the way */
                end_pair(p, true);
        } else if (sscanf(text, "yield %" SCNu64, &id) == 1) {
            struct pair *p = find(id);
            if (p && p->my)  /* else its "closed" report is on the way */
                hand_back(p, p->my->held, p->my->held_len);
        } else if (strncmp(text, "needles ", 8) == 0) {
            set_needles(text + 8);
        } else {
            fprintf(stderr, "fabric pump: unknown command %.*s\n", (int)n, text);
        }
    }
}

/* "closed", or "back" with the pair's sockets and its memfd. */
static ssize_t send_report(struct pair *p)
{
    char msg[CONTROL_MSG];
    struct iovec iov = { .iov_base = msg };
    struct msghdr hdr = { .msg_iov = &iov, .msg_iovlen = 1 };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(3 * sizeof(int))];
    } cbuf;
    if (p->back_fd < 0) {
        iov.iov_len = snprintf(msg, sizeof msg, "closed %" PRIu64 " %" PRIu64 " %" PRIu64,
                               p->id, p->flow[CLIENT].delivered, p->flow[UPSTREAM].delivered);
    } else {
        int fds[3] = { p->end[CLIENT].fd, p->end[UPSTREAM].fd, p->back_fd };
        iov.iov_base = p->back_text;
        iov.iov_len = strlen(p->back_text);
        hdr.msg_control = cbuf.buf;
        hdr.msg_controllen = sizeof cbuf.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&hdr);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof fds);
        memcpy(CMSG_DATA(c), fds, sizeof fds);
    }
    return sendmsg(control.fd, &hdr, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Tell the fabric about every pair that is over, then free it.  Never blocks:
 * if the fabric is slow to read, the rest waits for EPOLLOUT while the bytes
 * of every other pair keep moving. */
static void flush_reports(void)
{
    while (reports) {
        struct pair *p = reports;
        if (send_report(p) < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            reset_all_and_exit();  /* EPIPE and the like: the fabric is gone */
        }
        reports = p->report_next;
        if (reports == NULL)
            reports_tail = &reports;
        if (p->back_fd >= 0) {  /* the fabric has its own copies now */
            close(p->end[CLIENT].fd);
            close(p->end[UPSTREAM].fd);
            close(p->back_fd);
            free(p->back_text);
        }
        free(p);
    }
    watch(&control, EPOLLIN | (reports ? EPOLLOUT : 0));
}

int main(int argc, char **argv)
{
    char *rest;
    if (argc != 2 || (control.fd = (int)strtol(argv[1], &rest, 10)) < 0 || *rest != '\0') {
        fprintf(stderr, "usage: %s <control-fd>\n", argv[0]);
        return 2;
    }
    /* A peer that vanishes mid-write must be an EPIPE for one pair, not a signal for all. */
    signal(SIGPIPE, SIG_IGN);
    /* Two fds per connection: take all the headroom the hard limit allows. */
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    watch(&control, EPOLLIN);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct end *e = events[i].data.ptr;
            if (e == &control) {
                if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    control_in();
            } else {
                on_event(e, events[i].events);
            }
        }
        /* Also frees the pairs that ended in this batch, now that no event can name them. */
        flush_reports();
    }
}
