#ifndef FRAMEPIPE_TCP_INFO_H
#define FRAMEPIPE_TCP_INFO_H

#include <stdint.h>

/// The head of Linux's `struct tcp_info` (include/uapi/linux/tcp.h), up to
/// `tcpi_delivery_rate`: glibc's <netinet/tcp.h> stops at
/// `tcpi_total_retrans` and so lacks `tcpi_bytes_acked` and
/// `tcpi_notsent_bytes`, which a viewer's goodput and progress are read
/// from. The kernel's layout only ever grows at the end, and getsockopt
/// copies min(ours, its) bytes; framepipe_tcp_info.c checks every offset
/// against the kernel header at build time.
struct framepipe_tcp_info {
    uint8_t  state;
    uint8_t  ca_state;
    uint8_t  retransmits;
    uint8_t  probes;
    uint8_t  backoff;
    uint8_t  options;
    uint8_t  wscale;
    uint8_t  flags;

    uint32_t rto;
    uint32_t ato;
    uint32_t snd_mss;
    uint32_t rcv_mss;

    uint32_t unacked;
    uint32_t sacked;
    uint32_t lost;
    uint32_t retrans;
    uint32_t fackets;

    uint32_t last_data_sent;
    uint32_t last_ack_sent;
    uint32_t last_data_recv;
    uint32_t last_ack_recv;

    uint32_t pmtu;
    uint32_t rcv_ssthresh;
    uint32_t rtt;          /* µs, smoothed */
    uint32_t rttvar;
    uint32_t snd_ssthresh;
    uint32_t snd_cwnd;
    uint32_t advmss;
    uint32_t reordering;

    uint32_t rcv_rtt;
    uint32_t rcv_space;

    uint32_t total_retrans;

    uint64_t pacing_rate;
    uint64_t max_pacing_rate;
    uint64_t bytes_acked;  /* what the link has actually taken */
    uint64_t bytes_received;
    uint32_t segs_out;
    uint32_t segs_in;

    uint32_t notsent_bytes; /* written but not yet sent: what TCP_NOTSENT_LOWAT bounds */
    uint32_t min_rtt;
    uint32_t data_segs_in;
    uint32_t data_segs_out;

    uint64_t delivery_rate;
};

#endif
