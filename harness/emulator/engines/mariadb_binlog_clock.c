/* The binlog clock: when each byte of a MariaDB server's own binary log was written.
 *
 * MariaDB stamps binlog events to the second, and a ROW-format transaction carries no finer
 * time anywhere, so a point-in-time restore cannot tell, inside a second, which transactions
 * began before the point.  This library, preloaded into mariadbd (LD_PRELOAD), wraps write():
 * after every write to a file named <base>.<digits> (the server's binlog, base from
 * GAMEDAY_BINLOG_BASE, default "binlog") it appends one record to the clock file named by
 * GAMEDAY_BINLOG_CLOCK, before the write returns to the server:
 *
 *     struct { uint32 file_number; uint32 reserved; uint64 end_offset; int64 realtime_ns; }
 *
 * little-endian, 24 bytes: by realtime_ns the binlog file held end_offset bytes.  A
 * transaction is copied to the binlog during its COMMIT, after its statements began and before
 * the server acknowledges it (the semi-sync wait, the storage-engine commit and the OK packet
 * all come later), so the first record covering its end is an instant between its start and
 * its acknowledgement: cutting the history at "what the binlog held at T" keeps every commit
 * acknowledged by T and nothing that began after T.  Records are in write order (binlog writes
 * are serialised by the server), so times are non-decreasing and a reader can bisect them.
 *
 * Nothing else changes: without GAMEDAY_BINLOG_CLOCK, or if the clock cannot be opened, every
 * call passes straight through.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MAX_FD 4096

struct fd_kind {
    dev_t dev;
    ino_t ino;
    int known;       /* the entry describes (dev, ino) */
    int binlog;      /* that file is a binlog file */
    uint32_t number; /* its number: binlog.000042 -> 42 */
};

static ssize_t (*real_write)(int, const void *, size_t);
static struct fd_kind kinds[MAX_FD];
static const char *clock_path;
static char base[64] = "binlog";
static size_t base_len = 6;
static int clock_fd = -1;
static int clock_failed;

__attribute__((constructor)) static void binlog_clock_init(void) {
    real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    clock_path = getenv("GAMEDAY_BINLOG_CLOCK");
    const char *b = getenv("GAMEDAY_BINLOG_BASE");
    if (b && *b && strlen(b) < sizeof(base)) {
        strcpy(base, b);
        base_len = strlen(base);
    }
}

/* Is this file a binlog file (base.digits)?  Sets its number. */
static int classify(int fd, uint32_t *number) {
    char link[64], path[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    if (strncmp(name, base, base_len) != 0 || name[base_len] != '.')
        return 0;
    const char *digits = name + base_len + 1;
    if (!*digits)
        return 0;
    uint64_t value = 0;
    for (const char *c = digits; *c; c++) {
        if (*c < '0' || *c > '9')
            return 0;
        value = value * 10 + (uint64_t)(*c - '0');
    }
    *number = (uint32_t)value;
    return 1;
}

static void stamp(int fd) {
    if (fd < 0 || fd >= MAX_FD || clock_failed)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    struct fd_kind *kind = &kinds[fd];
    if (!kind->known || kind->dev != st.st_dev || kind->ino != st.st_ino) { /* new, or the fd was reused */
        uint32_t number = 0;
        kind->binlog = classify(fd, &number);
        kind->number = number;
        kind->dev = st.st_dev;
        kind->ino = st.st_ino;
        kind->known = 1;
    }
    if (!kind->binlog)
        return;
    off_t end = lseek(fd, 0, SEEK_CUR);
    if (end < 0)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (clock_fd < 0) {
        clock_fd = open(clock_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (clock_fd < 0) {
            clock_failed = 1;
            return;
        }
    }
    unsigned char record[24];
    uint32_t reserved = 0;
    uint64_t offset = (uint64_t)end;
    int64_t ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
    memcpy(record, &kind->number, 4); /* x86-64 and arm64 are little-endian */
    memcpy(record + 4, &reserved, 4);
    memcpy(record + 8, &offset, 8);
    memcpy(record + 16, &ns, 8);
    real_write(clock_fd, record, sizeof(record));
}

ssize_t write(int fd, const void *buf, size_t count) {
    if (!real_write)
        binlog_clock_init();
    ssize_t written = real_write(fd, buf, count);
    if (written > 0 && clock_path) {
        int saved = errno;
        stamp(fd);
        errno = saved;
    }
    return written;
}
