#include <stddef.h>
#include <linux/tcp.h>
#include "framepipe_tcp_info.h"

// The copy must match the kernel's layout field for field.
#define SAME(ours, kernels) \
    _Static_assert(offsetof(struct framepipe_tcp_info, ours) == offsetof(struct tcp_info, kernels), #ours " is misplaced")
SAME(rto, tcpi_rto);
SAME(unacked, tcpi_unacked);
SAME(last_ack_recv, tcpi_last_ack_recv);
SAME(rtt, tcpi_rtt);
SAME(rttvar, tcpi_rttvar);
SAME(snd_cwnd, tcpi_snd_cwnd);
SAME(total_retrans, tcpi_total_retrans);
SAME(pacing_rate, tcpi_pacing_rate);
SAME(bytes_acked, tcpi_bytes_acked);
SAME(segs_out, tcpi_segs_out);
SAME(notsent_bytes, tcpi_notsent_bytes);
SAME(min_rtt, tcpi_min_rtt);
SAME(delivery_rate, tcpi_delivery_rate);
