# Sourced by the benchmark scripts: `wait_for_relay NAME [HOST] PORT` returns
# once something accepts connections on HOST:PORT (127.0.0.1 when left out),
# or stops the script after 10 s, saying which server did not start. A TCP
# connection, not /healthz, so the Python loop and the floor are waited for
# the same way as the relay.
wait_for_relay() {
    local name=$1 host=127.0.0.1 port
    if [[ $# -ge 3 ]]; then host=$2; port=$3; else port=$2; fi
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return
        sleep 0.1
    done
    echo "$name did not start on $host:$port" >&2
    exit 1
}
