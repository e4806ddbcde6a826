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
 * Control protocol: one SOCK_SEQPACKET message per command, ASCII.
 *   fabric -> pump   "pair <id>" + 2 fds (client, upstream)   take over a connection
 *                    "close <id>"                             reset both sides (RST)
 *   pump -> fabric   "closed <id> <bytes_up> <bytes_down>"    a pair is over, for any reason
 * EOF on the control socket means the fabric is gone: reset every pair and
 * exit, so a dead fabric never leaves a pump (or half-proxied sessions) behind.
 *
 * Usage: pump <control-fd>
 */
#define _GNU_SOURCE
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum { CLIENT, UPSTREAM };  /* the two ends of a pair */

#define MAX_EVENTS 64
#define CONTROL_MSG 64       /* longest control message, NUL included */

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

struct pair {
    uint64_t id;
    struct end end[2];
    struct flow flow[2];     /* flow[s] carries bytes from end[s] to end[!s] */
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

/* Close both sockets; with `reset`, as RSTs (SO_LINGER 0), which is how a
 * dropped session or a dead host looks to the peers. */
static void end_pair(struct pair *p, bool reset)
{
    static const struct linger rst = { .l_onoff = 1, .l_linger = 0 };
    for (int s = CLIENT; s <= UPSTREAM; s++) {
        /* Leave the epoll set before close(): the fabric may not have closed
         * its copy of the fd yet, and epoll forgets a socket only when the
         * last copy goes, which would leave events pointing at freed memory. */
        watch(&p->end[s], 0);
        if (reset)
            setsockopt(p->end[s].fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
        close(p->end[s].fd);
        free(p->flow[s].pending);
        p->flow[s].pending = NULL;
        p->flow[s].len = 0;
    }
    p->over = true;
    if (p->prev)
        p->prev->next = p->next;
    else
        live = p->next;
    if (p->next)
        p->next->prev = p->prev;
    report(p);  /* freed once the fabric has been told (flush_reports) */
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
        f->eof = true;
        pass_eof(p, s);
        return;
    }
    ssize_t w = write(p->end[!s].fd, scratch, n);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            end_pair(p, true);
            return;
        }
        w = 0;
    }
    f->delivered += w;
    if (w < n) {
        f->pending = malloc(n - w);
        if (f->pending == NULL) {
            end_pair(p, true);
            return;
        }
        memcpy(f->pending, scratch + w, n - w);
        f->off = 0;
        f->len = n - w;
    }
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

static void take_pair(uint64_t id, const int *fds, int nfds)
{
    struct pair *p = calloc(1, sizeof *p);
    if (p == NULL)
        die("out of memory");
    p->id = id;
    if (nfds != 2) {
        /* The fds did not arrive (at our fd limit the kernel drops them):
         * the fabric must still hear that this connection is over. */
        fprintf(stderr, "fabric pump: pair %" PRIu64 " arrived with %d fds\n", id, nfds);
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        p->over = true;
        report(p);
        return;
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
    while (live)
        end_pair(live, true);
    exit(0);
}

static void control_in(void)
{
    for (;;) {
        char text[CONTROL_MSG];
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(2 * sizeof(int))];
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

        int fds[2], nfds = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            int count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (int i = 0; i < count; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if (nfds < 2)
                    fds[nfds++] = fd;
                else
                    close(fd);
            }
        }

        uint64_t id;
        if (sscanf(text, "pair %" SCNu64, &id) == 1) {
            take_pair(id, fds, nfds);
            continue;
        }
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        if (sscanf(text, "close %" SCNu64, &id) == 1) {
            struct pair *p = find(id);
            if (p)  /* else it ended on its own and its report is on the way */
                end_pair(p, true);
        } else {
            fprintf(stderr, "fabric pump: unknown command %.*s\n", (int)n, text);
        }
    }
}

/* Tell the fabric about every pair that is over, then free it.  Never blocks:
 * if the fabric is slow to read, the rest waits for EPOLLOUT while the bytes
 * of every other pair keep moving. */
static void flush_reports(void)
{
    while (reports) {
        struct pair *p = reports;
        char msg[CONTROL_MSG];
        int len = snprintf(msg, sizeof msg, "closed %" PRIu64 " %" PRIu64 " %" PRIu64,
                           p->id, p->flow[CLIENT].delivered, p->flow[UPSTREAM].delivered);
        if (send(control.fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            reset_all_and_exit();  /* EPIPE and the like: the fabric is gone */
        }
        reports = p->report_next;
        if (reports == NULL)
            reports_tail = &reports;
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
