/*
 * netref: the Linux side of Cohort's reference measurements, run in a
 * Linux guest on the same harness, for what no stock tool measures:
 * one-byte (MSG-byte) request/response against Cohort's echo (iperf3 has
 * no request/response mode), transfers whose SHA-256 is checked end to end
 * against Cohort's pattern, and a sink that answers as Cohort's does (for
 * Cohort's own stream app). Stream throughput is measured with Debian's
 * iperf3 instead (tests/xen/linux-guest/init, ref.role=client; the lab's
 * cohort-iperf3.sh and cohort-bench.sh). It speaks what Cohort's services
 * speak:
 *
 *   netref serve SINK-PORT ECHO-PORT
 *       a TCP sink and a TCP echo. The sink reads a connection to EOF and
 *       answers as Cohort's does, "<bytes> <sha256hex>\n" (the SHA-256 of
 *       every byte, lower-case hex), unless the stream opens with Cohort's
 *       "count only" magic "cohort-n" (8 bytes, not counted): then it
 *       hashes nothing and answers "<bytes> -\n", as Cohort's does
 *   netref stream-check HOST PORT BYTES
 *       sends BYTES of Cohort's xorshift64 pattern (what its stream app
 *       sends; no magic) and requires the sink's answer to be exactly
 *       "<BYTES> <sha256 of what was sent>"; exit status 0 only then
 *   netref rr HOST PORT COUNT MSG PATH CLOCK
 *       COUNT request/response transactions of MSG bytes with an echo;
 *       prints transactions/s and the median round trip
 *   netref no-gso IFACE
 *       turns TSO and GSO off on IFACE (what `ethtool -K IFACE tso off
 *       gso off` does), so the kernel sends standard-size frames
 *   netref selftest
 *       SHA-256 against FIPS 180-4's examples and the pattern's first words
 *
 * Measurements print one BENCH line each, like the guest's, with the
 * guest's CLOCK_MONOTONIC (virtual under -icount). What the lab's
 * scenarios check is printed as Cohort's guests print it, one
 * `EVENT {json}` line each (schema: figures::Event, in
 * kernel/figures/src/result.rs; keys in its order): `listening` (serve,
 * once both ports listen), `sink` (each stream the sink answered),
 * `stream` (stream-check: its outcome, mismatch included) and `rr`. The
 * lines starting `netref:` are for people.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "netref: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void bench(const char *name, const char *path, double value, const char *unit, const char *clock)
{
    printf("BENCH {\"name\":\"%s\",\"path\":\"%s\",\"value\":%.3f,\"unit\":\"%s\",\"clock\":\"%s\"}\n",
           name, path, value, unit, clock);
    fflush(stdout);
}

/* Writes s[0..n) as a JSON string, quotes included: printable ASCII as it
 * is but for the quote and backslash, every other byte (a peer's answer
 * may hold anything) as \u00XX, so the line stays one line of ASCII. */
static void json_str(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c > 0x7e)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_full(int fd, char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int listen_on(int port)
{
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY) };
    if (fd < 0)
        die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 8) < 0)
        die("bind/listen");
    return fd;
}

/* Connects, retrying for 60 s while the peer is not up yet. */
static int connect_to(const char *host, int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "netref: bad address %s\n", host);
        exit(2);
    }
    double deadline = now_s() + 60;
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            die("socket");
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            return fd;
        close(fd);
        if (now_s() > deadline)
            die("connect");
        usleep(200000);
    }
}

/*
 * SHA-256 (FIPS 180-4, sections 4.1.2, 4.2.2, 5.1.1, 5.3.3 and 6.2).
 */
struct sha256 {
    uint32_t h[8];
    uint8_t block[64];
    size_t used;         /* bytes in block */
    uint64_t length;     /* message bytes so far */
};

/* The first 32 bits of the fractional parts of the cube roots of the
 * first 64 primes (section 4.2.2). */
static const uint32_t SHA256_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_init(struct sha256 *s)
{
    /* The first 32 bits of the fractional parts of the square roots of
     * the first 8 primes (section 5.3.3). */
    static const uint32_t h0[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    };
    memcpy(s->h, h0, sizeof h0);
    s->used = 0;
    s->length = 0;
}

/* One 512-bit block (section 6.2.2). */
static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = s1 + w[t - 7] + s0 + w[t - 16];
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + S1 + ch + SHA256_K[t] + w[t];
        uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + maj;
        hh = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

static void sha256_update(struct sha256 *s, const void *data, size_t n)
{
    const uint8_t *p = data;
    s->length += n;
    if (s->used > 0) {
        size_t take = 64 - s->used < n ? 64 - s->used : n;
        memcpy(s->block + s->used, p, take);
        s->used += take;
        p += take;
        n -= take;
        if (s->used < 64)
            return;
        sha256_block(s->h, s->block);
        s->used = 0;
    }
    for (; n >= 64; p += 64, n -= 64)
        sha256_block(s->h, p);
    memcpy(s->block, p, n);
    s->used = n;
}

/* Pads (section 5.1.1: a 1 bit, zeros, the length in bits as 64 bits
 * big-endian) and writes the digest as 64 lower-case hex digits. */
static void sha256_hex(struct sha256 *s, char out[65])
{
    uint64_t bits = s->length * 8;
    uint8_t pad[72] = { 0x80 };
    size_t zeros = (s->used < 56 ? 56 : 120) - s->used;
    for (int i = 0; i < 8; i++)
        pad[zeros + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(s, pad, zeros + 8);
    for (int i = 0; i < 8; i++)
        snprintf(out + 8 * i, 9, "%08x", s->h[i]);
}

/* Cohort's stream pattern (kernel/src/net/pattern.rs): each 8-byte word is
 * the next state of xorshift64 from a fixed seed, little-endian. */
struct pattern {
    uint64_t x;
};

static void pattern_init(struct pattern *p) { p->x = 0x9e3779b97f4a7c15ULL; }

/* Fills buf (a multiple of 8 bytes) with the next words. */
static void pattern_fill(struct pattern *p, uint8_t *buf, size_t n)
{
    for (size_t i = 0; i + 8 <= n; i += 8) {
        p->x ^= p->x << 13;
        p->x ^= p->x >> 7;
        p->x ^= p->x << 17;
        for (int b = 0; b < 8; b++)
            buf[i + b] = (uint8_t)(p->x >> (8 * b));
    }
}

static int selftest(void)
{
    static const struct { const char *msg; size_t repeat; const char *digest; } cases[] = {
        /* FIPS 180-4's examples (NIST's "SHA256.pdf"): one block, two blocks,
         * and a million "a" given in pieces that straddle blocks. */
        { "", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { "abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
        { "aaaaaaaaaaaaaaaaaaaaaaaaa", 40000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
    };
    int failed = 0;
    char hex[65];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sha256 s;
        sha256_init(&s);
        for (size_t r = 0; r < cases[i].repeat; r++)
            sha256_update(&s, cases[i].msg, strlen(cases[i].msg));
        sha256_hex(&s, hex);
        if (strcmp(hex, cases[i].digest) != 0) {
            fprintf(stderr, "netref: selftest: sha256 of %zu x \"%s\" is %s, expected %s\n", cases[i].repeat,
                    cases[i].msg, hex, cases[i].digest);
            failed = 1;
        }
    }
    /* The pattern: its first word, and the SHA-256 of its first MiB (both
     * worked out apart from this program, from pattern.rs's definition). */
    static const uint8_t first[8] = { 0xad, 0x4d, 0xf3, 0x0b, 0xae, 0x77, 0x1b, 0xdc };
    static uint8_t buf[1 << 20];
    struct pattern p;
    struct sha256 s;
    pattern_init(&p);
    pattern_fill(&p, buf, sizeof buf);
    sha256_init(&s);
    sha256_update(&s, buf, sizeof buf);
    sha256_hex(&s, hex);
    if (memcmp(buf, first, sizeof first) != 0
        || strcmp(hex, "f29fb072131fcfc725b5ec446ad19960b2b1b4fd78a3cbf5867009111fe602e0") != 0) {
        fprintf(stderr, "netref: selftest: Cohort's pattern differs (first MiB sha256 %s)\n", hex);
        failed = 1;
    }
    if (failed) {
        fprintf(stderr, "netref: selftest: FAILED\n");
        return 1;
    }
    printf("netref: selftest: sha256 and pattern ok\n");
    return 0;
}

/* What Cohort's sink takes as "count only" (CheckKind::Count's magic). */
static const char COUNT_MAGIC[8] = { 'c', 'o', 'h', 'o', 'r', 't', '-', 'n' };

/* Reads one connection to EOF; answers "<bytes> <sha256hex>\n", or
 * "<bytes> -\n" for a stream that opens with COUNT_MAGIC (not counted). */
static void sink_one(int fd)
{
    static char buf[65536];
    unsigned long long total = 0;
    char head[sizeof COUNT_MAGIC];
    size_t head_len = 0;
    int count_only = 0;
    struct sha256 s;
    ssize_t r;
    sha256_init(&s);
    while ((r = read(fd, buf, sizeof buf)) > 0 || (r < 0 && errno == EINTR)) {
        char *p = buf;
        size_t n = r > 0 ? (size_t)r : 0;
        total += n;
        /* The first 8 bytes say whether this stream wants a digest. */
        if (head_len < sizeof head) {
            size_t take = sizeof head - head_len < n ? sizeof head - head_len : n;
            memcpy(head + head_len, p, take);
            head_len += take;
            p += take;
            n -= take;
            if (head_len < sizeof head)
                continue;
            count_only = memcmp(head, COUNT_MAGIC, sizeof head) == 0;
            if (count_only)
                total -= sizeof head; /* Like Cohort's sink, the magic is not counted. */
            else
                sha256_update(&s, head, sizeof head);
        }
        if (!count_only)
            sha256_update(&s, p, n);
    }
    int n;
    char hex[65];
    if (count_only) {
        n = snprintf(buf, sizeof buf, "%llu -\n", total); /* Cohort's sink says "-" for no digest */
    } else {
        if (head_len < sizeof head) /* shorter than the magic: all of it is data */
            sha256_update(&s, head, head_len);
        sha256_hex(&s, hex);
        n = snprintf(buf, sizeof buf, "%llu %s\n", total, hex);
    }
    write_all(fd, buf, (size_t)n);
    printf("netref: sink: %llu bytes, answered %.*s", total, n, buf);
    if (count_only)
        printf("EVENT {\"kind\":\"sink\",\"bytes\":%llu,\"check\":\"count\",\"digest\":null}\n", total);
    else
        printf("EVENT {\"kind\":\"sink\",\"bytes\":%llu,\"check\":\"sha256\",\"digest\":\"%s\"}\n", total, hex);
    fflush(stdout);
}

/* At most this many connections per service are served at once; one more
 * waits in the listen backlog until a child ends. The study's clients
 * hold at most 8 flows to one server. */
#define MAX_CHILDREN 32

/* Accepts connections on LFD for ever, each served by SERVE in a child of
 * its own: a client may hold several at once (Cohort's app=mix sends
 * concurrent flows to one server), up to MAX_CHILDREN. Children that
 * ended are reaped; a child that is not ours (NOT_OURS, the sink's server
 * beside the echo's) is not counted. Children end with the server. */
static void serve_each(int lfd, void (*serve)(int fd), const char *service, pid_t not_ours)
{
    int live = 0;
    for (;;) {
        pid_t gone;
        errno = 0;
        while ((gone = waitpid(-1, NULL, live >= MAX_CHILDREN ? 0 : WNOHANG)) > 0)
            if (gone != not_ours && live > 0)
                live--;
        if (live >= MAX_CHILDREN && errno == ECHILD)
            live = 0; /* no child left to wait for: the count was wrong */
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pid_t child = fork();
        if (child == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            close(lfd);
            serve(fd);
            close(fd);
            _exit(0);
        }
        if (child > 0 && ++live == MAX_CHILDREN) {
            printf("EVENT {\"kind\":\"busy\",\"service\":\"%s\",\"connections\":%d}\n", service, live);
            fflush(stdout);
        }
        /* The parent's copy (if fork failed, the peer sees it closed). */
        close(fd);
    }
}

static void echo_one(int fd)
{
    static char buf[65536];
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        if (write_all(fd, buf, (size_t)r) < 0)
            break;
}

/* Sends BYTES of Cohort's pattern, as its stream app does, and requires
 * the sink's answer to be "<BYTES> <sha256 of what was sent>". */
static int stream_check(const char *host, int port, unsigned long long bytes)
{
    static uint8_t buf[65536];
    char answer[256], expected[128], hex[65];
    struct pattern pat;
    struct sha256 s;
    pattern_init(&pat);
    sha256_init(&s);
    int fd = connect_to(host, port);
    double t0 = now_s();
    for (unsigned long long left = bytes; left > 0;) {
        size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
        pattern_fill(&pat, buf, (n + 7) & ~(size_t)7); /* a last partial word is cut */
        sha256_update(&s, buf, n);
        if (write_all(fd, (const char *)buf, n) < 0)
            die("stream-check write");
        left -= n;
    }
    shutdown(fd, SHUT_WR);
    ssize_t got = 0, r;
    while (got < (ssize_t)sizeof answer - 1
           && ((r = read(fd, answer + got, sizeof answer - 1 - (size_t)got)) > 0 || (r < 0 && errno == EINTR)))
        got += r > 0 ? r : 0;
    double secs = now_s() - t0;
    close(fd);
    answer[got > 0 ? got : 0] = 0;
    int complete = strchr(answer, '\n') != NULL;
    answer[strcspn(answer, "\n")] = 0;
    sha256_hex(&s, hex);
    snprintf(expected, sizeof expected, "%llu %s", bytes, hex);
    int match = complete && strcmp(answer, expected) == 0;
    printf("netref: stream-check: %llu bytes, sha256 %s in %.3f s; the sink answered `%s`%s (%s)\n", bytes, hex,
           secs, answer, complete ? "" : " (no full line)", match ? "match" : "MISMATCH");
    /* The answer's two words, as Cohort's stream app reads them (a count
     * that is not a decimal number is 0); `match` is the exact comparison
     * above. */
    size_t count_len = strcspn(answer, " ");
    unsigned long long sink_bytes = 0;
    if (count_len > 0 && count_len <= 19 && strspn(answer, "0123456789") == count_len)
        sink_bytes = strtoull(answer, NULL, 10);
    const char *digest = answer + count_len + strspn(answer + count_len, " ");
    printf("EVENT {\"kind\":\"stream\",\"path\":\"netfront\",\"bytes\":%llu,\"seconds\":%.6f,\"mbit_per_s\":%.3f,"
           "\"check\":\"sha256\",\"sent_digest\":\"%s\",\"sink_bytes\":%llu,\"sink_digest\":",
           bytes, secs, secs > 0 ? (double)bytes * 8 / secs / 1e6 : 0.0, hex, sink_bytes);
    json_str(digest, strcspn(digest, " "));
    printf(",\"match\":%s,\"frames\":null}\n", match ? "true" : "false");
    fflush(stdout);
    return match ? 0 : 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int rr(const char *host, int port, int count, int msg, const char *path, const char *clock)
{
    char *out = malloc((size_t)msg), *in = malloc((size_t)msg);
    double *lat = malloc(sizeof(double) * (size_t)count);
    int one = 1;
    if (!out || !in || !lat)
        die("malloc");
    memset(out, 0x5a, (size_t)msg);
    int fd = connect_to(host, port);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    double t0 = now_s();
    for (int i = 0; i < count; i++) {
        double s = now_s();
        if (write_all(fd, out, (size_t)msg) < 0 || read_full(fd, in, (size_t)msg) < 0)
            die("rr");
        if (memcmp(in, out, (size_t)msg) != 0) {
            fprintf(stderr, "netref: rr: the echo changed the data\n");
            return 1;
        }
        lat[i] = now_s() - s;
    }
    double secs = now_s() - t0;
    close(fd);
    double sum = 0;
    for (int i = 0; i < count; i++)
        sum += lat[i];
    qsort(lat, (size_t)count, sizeof *lat, cmp_double);
    /* Percentiles as Cohort's rr picks them: the sorted sample at
     * count * q / 100. */
    double p50 = lat[count / 2] * 1e6, p99 = lat[(int)((long long)count * 99 / 100)] * 1e6, per_s = count / secs;
    printf("netref: rr: %d transactions of %d bytes in %.3f s, %.0f/s, p50 %.1f us\n", count, msg, secs, per_s, p50);
    printf("EVENT {\"kind\":\"rr\",\"path\":");
    json_str(path, strlen(path));
    printf(",\"transactions\":%d,\"seconds\":%.6f,\"per_second\":%.3f,\"mean_us\":%.3f,\"p50_us\":%.3f,"
           "\"p99_us\":%.3f,\"frames\":null}\n",
           count, secs, per_s, sum / count * 1e6, p50, p99);
    bench("net.tcp_rr", path, per_s, "transactions/s", clock);
    bench("net.tcp_rr_latency_p50", path, p50, "us", clock);
    return 0;
}

static int no_gso(const char *iface)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    const unsigned cmds[] = { ETHTOOL_STSO, ETHTOOL_SGSO };
    if (fd < 0)
        die("socket");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        struct ethtool_value ev = { .cmd = cmds[i], .data = 0 };
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", iface);
        ifr.ifr_data = (char *)&ev;
        if (ioctl(fd, SIOCETHTOOL, &ifr) < 0)
            die("SIOCETHTOOL");
    }
    close(fd);
    printf("netref: TSO and GSO off on %s\n", iface);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    /* serve_each counts its children by reaping them: an ignored SIGCHLD
     * (inherited through exec) would reap them for it. */
    signal(SIGCHLD, SIG_DFL);
    if (argc == 4 && strcmp(argv[1], "serve") == 0) {
        int sink_port = atoi(argv[2]), echo_port = atoi(argv[3]);
        int sink_fd = listen_on(sink_port), echo_fd = listen_on(echo_port);
        printf("netref: sink on %d, echo on %d\n", sink_port, echo_port);
        printf("EVENT {\"kind\":\"listening\",\"service\":\"sink\",\"port\":%d}\n", sink_port);
        printf("EVENT {\"kind\":\"listening\",\"service\":\"echo\",\"port\":%d}\n", echo_port);
        fflush(stdout);
        pid_t sink = fork();
        if (sink == 0) {
            /* The sink ends with the echo (a test on the host stops both). */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            close(echo_fd);
            serve_each(sink_fd, sink_one, "sink", 0);
        }
        close(sink_fd);
        serve_each(echo_fd, echo_one, "echo", sink);
    } else if (argc == 3 && strcmp(argv[1], "no-gso") == 0) {
        return no_gso(argv[2]);
    } else if (argc == 5 && strcmp(argv[1], "stream-check") == 0) {
        return stream_check(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10));
    } else if (argc == 2 && strcmp(argv[1], "selftest") == 0) {
        return selftest();
    } else if (argc == 8 && strcmp(argv[1], "rr") == 0) {
        int count = atoi(argv[4]), msg = atoi(argv[5]);
        if (count < 1 || msg < 1) {
            fprintf(stderr, "netref: rr: COUNT and MSG must be positive\n");
            return 2;
        }
        return rr(argv[2], atoi(argv[3]), count, msg, argv[6], argv[7]);
    }
    fprintf(stderr, "usage: netref serve SINK-PORT ECHO-PORT | stream-check HOST PORT BYTES\n"
                    "       | rr HOST PORT COUNT MSG PATH CLOCK | no-gso IFACE | selftest\n");
    return 2;
}
