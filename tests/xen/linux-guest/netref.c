/*
 * netref: the Linux side of Cohort's reference measurements, run in a
 * Linux guest on the same harness. It speaks what Cohort's services speak:
 *
 *   netref serve SINK-PORT ECHO-PORT
 *       a TCP sink (reads to EOF, answers "<bytes>\n") and a TCP echo
 *   netref stream HOST PORT BYTES PATH CLOCK
 *       sends BYTES to a sink, waits for its answer; prints Mbit/s. The
 *       stream opens with Cohort's "count only" magic (8 bytes, not
 *       counted), so a Cohort sink counts as this one does instead of
 *       hashing: both ends measure the path, not a digest
 *   netref rr HOST PORT COUNT MSG PATH CLOCK
 *       COUNT request/response transactions of MSG bytes with an echo;
 *       prints transactions/s and the median round trip
 *       (then the kernel's view of the connection: tcp_info)
 *   netref no-gso IFACE
 *       turns TSO and GSO off on IFACE (what `ethtool -K IFACE tso off
 *       gso off` does), so the kernel sends standard-size frames
 *
 * Measurements print one BENCH line each, like the guest's, with the
 * guest's CLOCK_MONOTONIC (virtual under -icount).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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

/* What Cohort's sink takes as "count only" (CheckKind::Count's magic). */
static const char COUNT_MAGIC[8] = { 'c', 'o', 'h', 'o', 'r', 't', '-', 'n' };

static void sink(int lfd)
{
    static char buf[65536];
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        unsigned long long total = 0;
        char head[sizeof COUNT_MAGIC];
        size_t head_len = 0;
        ssize_t r;
        while ((r = read(fd, buf, sizeof buf)) > 0) {
            total += (unsigned long long)r;
            for (ssize_t i = 0; i < r && head_len < sizeof head; i++)
                head[head_len++] = buf[i];
        }
        /* Like Cohort's sink, the magic is not counted. */
        if (head_len == sizeof head && memcmp(head, COUNT_MAGIC, sizeof head) == 0)
            total -= sizeof head;
        int n = snprintf(buf, sizeof buf, "%llu\n", total);
        write_all(fd, buf, (size_t)n);
        close(fd);
        printf("netref: sink: %llu bytes\n", total);
        fflush(stdout);
    }
}

static void echo(int lfd)
{
    static char buf[65536];
    for (;;) {
        int one = 1, fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ssize_t r;
        while ((r = read(fd, buf, sizeof buf)) > 0)
            if (write_all(fd, buf, (size_t)r) < 0)
                break;
        close(fd);
    }
}

/* What the sending kernel saw of a connection: its window, round trip and
 * what limited it (busy time split by what held it back). */
static void tcp_info_line(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return;
    printf("netref: tcp_info: mss %u cwnd %u ssthresh %u rtt %u us (min %u, var %u) peer window %u "
           "retrans %u segs out %u in %u busy %llu us: rwnd-limited %llu us, sndbuf-limited %llu us; "
           "delivery %.1f Mbit/s; wscale %u/%u\n",
           ti.tcpi_snd_mss, ti.tcpi_snd_cwnd, ti.tcpi_snd_ssthresh, ti.tcpi_rtt, ti.tcpi_min_rtt, ti.tcpi_rttvar,
           ti.tcpi_snd_wnd, ti.tcpi_total_retrans, ti.tcpi_segs_out, ti.tcpi_segs_in,
           (unsigned long long)ti.tcpi_busy_time, (unsigned long long)ti.tcpi_rwnd_limited,
           (unsigned long long)ti.tcpi_sndbuf_limited, (double)ti.tcpi_delivery_rate * 8 / 1e6,
           ti.tcpi_snd_wscale, ti.tcpi_rcv_wscale);
}

static int stream(const char *host, int port, unsigned long long bytes, const char *path, const char *clock)
{
    static char buf[65536];
    char answer[256];
    memset(buf, 0x5a, sizeof buf);
    int fd = connect_to(host, port);
    double t0 = now_s();
    if (write_all(fd, COUNT_MAGIC, sizeof COUNT_MAGIC) < 0)
        die("stream write");
    for (unsigned long long left = bytes; left > 0;) {
        size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
        if (write_all(fd, buf, n) < 0)
            die("stream write");
        left -= n;
    }
    shutdown(fd, SHUT_WR);
    ssize_t got = 0, r;
    while (got < (ssize_t)sizeof answer - 1 && (r = read(fd, answer + got, sizeof answer - 1 - (size_t)got)) > 0)
        got += r;
    double secs = now_s() - t0;
    tcp_info_line(fd);
    close(fd);
    answer[got > 0 ? got : 0] = 0;
    answer[strcspn(answer, "\n")] = 0;
    if (strtoull(answer, NULL, 10) != bytes) {
        fprintf(stderr, "netref: stream: sent %llu bytes, the sink answered `%s`\n", bytes, answer);
        return 1;
    }
    double mbit = (double)bytes * 8 / secs / 1e6;
    printf("netref: stream: %llu bytes in %.3f s, %.1f Mbit/s (sink answered `%s`)\n", bytes, secs, mbit, answer);
    bench("net.tcp_stream", path, mbit, "Mbit/s", clock);
    return 0;
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
    qsort(lat, (size_t)count, sizeof *lat, cmp_double);
    double p50 = lat[count / 2] * 1e6, per_s = count / secs;
    printf("netref: rr: %d transactions of %d bytes in %.3f s, %.0f/s, p50 %.1f us\n", count, msg, secs, per_s, p50);
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
    if (argc == 4 && strcmp(argv[1], "serve") == 0) {
        int sink_fd = listen_on(atoi(argv[2])), echo_fd = listen_on(atoi(argv[3]));
        printf("netref: sink on %s, echo on %s\n", argv[2], argv[3]);
        fflush(stdout);
        if (fork() == 0)
            sink(sink_fd);
        echo(echo_fd);
    } else if (argc == 3 && strcmp(argv[1], "no-gso") == 0) {
        return no_gso(argv[2]);
    } else if (argc == 7 && strcmp(argv[1], "stream") == 0) {
        return stream(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10), argv[5], argv[6]);
    } else if (argc == 8 && strcmp(argv[1], "rr") == 0) {
        int count = atoi(argv[4]), msg = atoi(argv[5]);
        if (count < 1 || msg < 1) {
            fprintf(stderr, "netref: rr: COUNT and MSG must be positive\n");
            return 2;
        }
        return rr(argv[2], atoi(argv[3]), count, msg, argv[6], argv[7]);
    }
    fprintf(stderr, "usage: netref serve SINK-PORT ECHO-PORT | stream HOST PORT BYTES PATH CLOCK | rr HOST PORT COUNT MSG PATH CLOCK | no-gso IFACE\n");
    return 2;
}
