/* The floor for fan-out: the least a program can do to put one frame in
 * front of N WebSocket viewers. It accepts the WebSocket handshake (so
 * `framepipe-bench load` can drive it like the relay), and for each frame a
 * streamer sends it builds the viewer message once, as one buffer holding
 * the WebSocket header and payload, and send()s that buffer to every viewer
 * socket. No validation, no per-viewer state beyond a partly sent buffer,
 * no framework: what is left is the kernel's cost of the sends.
 *
 * A viewer still busy with the previous frame skips the new one, so one
 * slow socket never blocks the others. Single-threaded, epoll.
 *
 * Build: cc -O2 -o floor_broadcast floor_broadcast.c -lcrypto
 * Run:   ./floor_broadcast PORT [zerocopy]
 * With `zerocopy`, viewer sockets get SO_ZEROCOPY and frames are sent with
 * MSG_ZEROCOPY: the kernel pins the buffer instead of copying it, and says
 * on the socket's error queue when it is done with it (and whether it had
 * to copy after all, as for a receiver on this machine). Buffers are kept
 * until then; the completions are counted and printed at exit (SIGTERM).
 * Viewers: /ws/viewer (JSON, the data URL as the original dashboard gets
 * it) or /ws/viewer?format=binary; streamers: /ws/stream/ID, binary JPEG or
 * the JSON data-URL format.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum kind { HANDSHAKE, VIEWER, STREAMER };

struct message {
    int refs;
    size_t len;
    unsigned char data[];
};

struct conn {
    int fd;
    enum kind kind;
    int binary;             /* a viewer's format */
    char stream[72];        /* a streamer's id */
    unsigned long long seq;
    unsigned char *in;      /* inbound bytes not yet parsed */
    size_t in_len, in_cap;
    struct message *pending; /* a viewer's partly sent frame */
    size_t sent;
};

#define MAX_CONNS 4096
static struct conn *conns[MAX_CONNS];
static int epfd;
static int zerocopy;
/* With zerocopy: recent frames kept alive until the kernel is surely done with them. */
#define KEPT 256
static struct message *kept[KEPT];
static unsigned kept_next;
static unsigned long long completions, copied, zc_sends;

static void on_term(int sig) {
    (void)sig;
    if (zerocopy) fprintf(stderr, "zerocopy sends %llu, completions %llu, of which copied %llu\n", zc_sends, completions, copied);
    _exit(0);
}

/* Reads the completions MSG_ZEROCOPY leaves on a socket's error queue. */
static void read_completions(int fd) {
    char control[128];
    for (;;) {
        struct msghdr msg = {.msg_control = control, .msg_controllen = sizeof control};
        if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            struct sock_extended_err *err = (struct sock_extended_err *)CMSG_DATA(cm);
            if (err->ee_origin != SO_EE_ORIGIN_ZEROCOPY) continue;
            unsigned long long n = (unsigned long long)(err->ee_data - err->ee_info + 1);
            completions += n;
            if (err->ee_code & SO_EE_CODE_ZEROCOPY_COPIED) copied += n;
        }
    }
}

static void release(struct message *m) {
    if (m && --m->refs == 0) free(m);
}

static void drop(struct conn *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    release(c->pending);
    conns[c->fd] = NULL;
    free(c->in);
    free(c);
}

/* One WebSocket message from the server (unmasked): header and payload in one buffer. */
static struct message *frame(int opcode, const void *prefix, size_t prefix_len, const void *body, size_t body_len,
                             const void *suffix, size_t suffix_len) {
    size_t payload = prefix_len + body_len + suffix_len;
    size_t header = payload < 126 ? 2 : payload < 65536 ? 4 : 10;
    struct message *m = malloc(sizeof *m + header + payload);
    m->refs = 1;
    m->len = header + payload;
    unsigned char *p = m->data;
    *p++ = 0x80 | opcode;
    if (payload < 126) {
        *p++ = (unsigned char)payload;
    } else if (payload < 65536) {
        *p++ = 126;
        *p++ = payload >> 8;
        *p++ = payload & 0xff;
    } else {
        *p++ = 127;
        for (int i = 7; i >= 0; i--) *p++ = (payload >> (8 * i)) & 0xff;
    }
    memcpy(p, prefix, prefix_len);
    memcpy(p + prefix_len, body, body_len);
    memcpy(p + prefix_len + body_len, suffix, suffix_len);
    return m;
}

static void want_output(struct conn *c, int on) {
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.fd = c->fd};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends what is left of the viewer's pending frame; 0 when done. */
static int flush_pending(struct conn *c) {
    while (c->sent < c->pending->len) {
        int flags = MSG_NOSIGNAL | MSG_DONTWAIT | (zerocopy ? MSG_ZEROCOPY : 0);
        ssize_t n = send(c->fd, c->pending->data + c->sent, c->pending->len - c->sent, flags);
        if (zerocopy && n >= 0) zc_sends++;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
            return -1;
        }
        c->sent += (size_t)n;
    }
    release(c->pending);
    c->pending = NULL;
    return 0;
}

static void offer(struct conn *c, struct message *m) {
    if (c->pending) return; /* still sending the previous frame: skip this one */
    c->pending = m;
    m->refs++;
    c->sent = 0;
    int left = flush_pending(c);
    if (left < 0) drop(c);
    else if (left > 0) want_output(c, 1);
}

static void broadcast(struct conn *streamer, int text, const unsigned char *payload, size_t len) {
    const unsigned char *jpeg = payload;
    size_t jpeg_len = len;
    const unsigned char *url = NULL;
    size_t url_len = 0;
    unsigned char *encoded = NULL;
    if (text) {
        /* {"type":"frame","frame":"data:image/jpeg;base64,…",…}: take the data URL as it is. */
        const char *key = "\"frame\":\"";
        unsigned char *at = memmem(payload, len, key, strlen(key));
        if (!at) return;
        url = at + strlen(key);
        const unsigned char *end = memchr(url, '"', len - (size_t)(url - payload));
        if (!end) return;
        url_len = (size_t)(end - url);
    }
    char header[200];
    int header_len = snprintf(header, sizeof header, "{\"type\":\"frame\",\"stream_id\":\"%s\",\"seq\":%llu,\"quality\":\"full\"",
                              streamer->stream, streamer->seq++);
    struct message *json = NULL, *binary = NULL;
    for (int fd = 0; fd < MAX_CONNS; fd++) {
        struct conn *c = conns[fd];
        if (!c || c->kind != VIEWER) continue;
        if (c->binary && !binary) {
            if (text) continue; /* binary viewers of a JSON streamer: not in these scenarios */
            unsigned char prefix[2 + 200];
            prefix[0] = (header_len + 1) >> 8;
            prefix[1] = (header_len + 1) & 0xff;
            memcpy(prefix + 2, header, header_len);
            prefix[2 + header_len] = '}';
            binary = frame(2, prefix, 3 + header_len, jpeg, jpeg_len, "", 0);
        }
        if (!c->binary && !json) {
            char prefix[260];
            int n = snprintf(prefix, sizeof prefix, "%s,\"frame\":\"%s", header, url ? "" : "data:image/jpeg;base64,");
            if (!url) {
                encoded = malloc(4 * ((jpeg_len + 2) / 3) + 1);
                url_len = (size_t)EVP_EncodeBlock(encoded, jpeg, (int)jpeg_len);
                url = encoded;
            }
            json = frame(1, prefix, (size_t)n, url, url_len, "\"}", 2);
        }
        offer(c, c->binary ? binary : json);
    }
    if (zerocopy) {
        /* The kernel may still read these after send() returned: keep them a while. */
        for (int i = 0; i < 2; i++) {
            struct message *m = i ? binary : json;
            if (!m) continue;
            release(kept[kept_next % KEPT]);
            kept[kept_next++ % KEPT] = m;
        }
    } else {
        release(json);
        release(binary);
    }
    free(encoded);
}

static void handshake(struct conn *c) {
    c->in[c->in_len] = 0;
    char *end = strstr((char *)c->in, "\r\n\r\n");
    if (!end) return;
    char path[256] = "";
    sscanf((char *)c->in, "GET %255s", path);
    char *key = strcasestr((char *)c->in, "Sec-WebSocket-Key:");
    if (!key) { drop(c); return; }
    key += strlen("Sec-WebSocket-Key:");
    while (*key == ' ') key++;
    char accept_in[128];
    int key_len = (int)strcspn(key, "\r\n");
    snprintf(accept_in, sizeof accept_in, "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key_len, key);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((unsigned char *)accept_in, strlen(accept_in), digest);
    unsigned char accept[64];
    EVP_EncodeBlock(accept, digest, SHA_DIGEST_LENGTH);
    char reply[256];
    int n = snprintf(reply, sizeof reply,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
    send(c->fd, reply, (size_t)n, MSG_NOSIGNAL);
    size_t used = (size_t)(end + 4 - (char *)c->in);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    if (strncmp(path, "/ws/stream/", 11) == 0) {
        c->kind = STREAMER;
        snprintf(c->stream, sizeof c->stream, "%.64s", path + 11);
    } else {
        c->kind = VIEWER;
        c->binary = strstr(path, "format=binary") != NULL;
        int one = 1;
        if (zerocopy && setsockopt(c->fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one) < 0) perror("SO_ZEROCOPY");
        free(c->in); /* what a viewer sends is discarded unread */
        c->in = NULL;
        c->in_len = c->in_cap = 0;
        char hello[128];
        int len = snprintf(hello, sizeof hello, "{\"type\":\"viewer_connected\",\"viewer_id\":\"v-%d\",\"active_streams\":[]}", c->fd);
        struct message *m = frame(1, hello, (size_t)len, "", 0, "", 0);
        offer(c, m);
        release(m);
    }
}

/* Parses the streamer's (masked) frames and broadcasts each data frame. */
static void streamer_input(struct conn *c) {
    for (;;) {
        if (c->in_len < 2) return;
        unsigned char *p = c->in;
        int opcode = p[0] & 0x0f;
        uint64_t len = p[1] & 0x7f;
        size_t at = 2;
        if (len == 126) {
            if (c->in_len < 4) return;
            len = ((uint64_t)p[2] << 8) | p[3];
            at = 4;
        } else if (len == 127) {
            if (c->in_len < 10) return;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | p[2 + i];
            at = 10;
        }
        int masked = p[1] & 0x80;
        size_t total = at + (masked ? 4 : 0) + len;
        if (c->in_len < total) return;
        unsigned char *payload = p + at + (masked ? 4 : 0);
        if (masked)
            for (uint64_t i = 0; i < len; i++) payload[i] ^= p[at + (i & 3)];
        if (opcode == 8) { drop(c); return; }
        if (opcode == 1 || opcode == 2) broadcast(c, opcode == 1, payload, len);
        memmove(c->in, c->in + total, c->in_len - total);
        c->in_len -= total;
    }
}

static void readable(struct conn *c) {
    int fd = c->fd;
    /* A viewer's pongs need little room; a streamer's frames get room as they come. */
    size_t room = c->kind == STREAMER ? 65536 : 4096;
    for (;;) {
        if (c->in_cap - c->in_len < room) {
            c->in_cap = c->in_cap * 2 + room;
            c->in = realloc(c->in, c->in_cap + 1);
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) { drop(c); return; }
        if (n < 0) break;
        c->in_len += (size_t)n;
        if (c->kind == VIEWER) c->in_len = 0; /* pongs and such: nothing to do */
    }
    if (c->kind == HANDSHAKE) handshake(c);
    if (conns[fd] == c && c->kind == STREAMER) streamer_input(c);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 8190;
    zerocopy = argc > 2 && strcmp(argv[2], "zerocopy") == 0;
    signal(SIGTERM, on_term);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 1024) < 0) {
        perror("listen");
        return 1;
    }
    epfd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev);
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(epfd, events, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int client;
                while ((client = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (client >= MAX_CONNS) { close(client); continue; }
                    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *c = calloc(1, sizeof *c);
                    c->fd = client;
                    conns[client] = c;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = client};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, client, &cev);
                }
                continue;
            }
            struct conn *c = conns[fd];
            if (!c) continue;
            if (events[i].events & EPOLLOUT && c->pending) {
                int left = flush_pending(c);
                if (left < 0) { drop(c); continue; }
                if (left == 0) want_output(c, 0);
            }
            if (zerocopy && events[i].events & EPOLLERR) read_completions(fd);
            if (events[i].events & (EPOLLIN | EPOLLHUP) || (!zerocopy && events[i].events & EPOLLERR)) readable(c);
        }
    }
}
