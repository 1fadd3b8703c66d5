// RED (rate, errors, duration) of every HTTP/1.x server on the host, aggregated in kernel.
//
// Loaded by obs_tui/sources/red.py through bcc. Only syscall tracepoints and uprobes: this
// kernel has no kprobes and refuses fentry/fexit.
//
// Cost model (measured, DESIGN.md section 3): syscall tracepoints fire for every process, the
// load generator included, so every program rejects uninteresting calls before touching any
// shared state. A tgid becomes interesting only when it accepts a socket or, as user space
// finds once at load, holds a listening socket (one bit in the `servers` bitmap,
// an array lookup the verifier inlines). Everything else returns after one array load.
// A server's connection gets an entry in `conns` at accept, or at its first request when it
// was accepted before the probe attached (long-lived keep-alive connections).
//
// Syscall arguments are read at sys_exit from the task's saved user registers
// (bpf_task_pt_regs), so there are no sys_enter programs and no per-thread stash map on the
// hot path. HTTPS through OpenSSL needs uprobe/uretprobe pairs; those stash arguments per
// thread, but only libssl users pay for them.
//
// Only the method, the path (cut at '?', '#' or ' ': query strings carry secrets) and the
// status code leave the probe; headers and bodies are never copied.
//
// The stats hash is keyed by a 64-bit hash of the path (16-byte key): the kernel hashes and
// compares that key once per response, where a key holding the path itself cost ~100 bytes of
// jhash + memcmp + copy each time. The path's bytes go to `paths` once, when a stats entry is
// first created; user space joins the two. Two paths with the same 64-bit hash would share
// counters (first one's name): accepted, it cannot leak anything the probe did not keep.

#include <uapi/linux/ptrace.h>

#ifndef PATH_LEN
#define PATH_LEN 96  // a multiple of 8: the path is scanned a word at a time
#endif
#define METHOD_MAX 8  // "OPTIONS ": the longest method plus its space
#define PATH_WORDS (PATH_LEN / 8)
#define HIST_SUB_BITS 4
#define HIST_SUB (1 << HIST_SUB_BITS)
// log-linear buckets over 1.024 us units: 16 per power of two up to 2^26 units (69 s); see
// obs_tui/analysis/histogram.py, which must agree with bucket_of().
#define HIST_MAX_LOG 26
#define HIST_BUCKETS ((HIST_MAX_LOG - HIST_SUB_BITS + 1) * HIST_SUB + HIST_SUB)

// Index of the lost counters; user space sums them into red.lost_events.
#define LOST_CONNS 0      // conns map full at accept: that connection's requests are not seen
#define LOST_STATS 1      // stats map full: a finished request could not be counted
#define LOST_SSL_ARGS 2   // per-thread SSL argument stash full: one SSL call not seen
#define LOST_UNMATCHED 3  // a request began while the previous one had no response seen
#define LOST_PATHS 4      // paths map full: a new path's requests could not be counted
#define LOST_SLOTS 5

#define SSL_FD 0xffffffffu
#define REUSE_WINDOW_NS 100000ULL  // see on_close

struct conn_key {
    u32 tgid;
    u32 fd;   // SSL_FD for connections keyed by their SSL*
    u64 ssl;  // 0 for plain sockets
};

struct conn {
    u64 accepted_ns;
    u64 start_ns;   // exit of the read that brought the request's first bytes
    u64 path_hash;
    u8 method;      // 0: no request waiting for its response
    u8 truncated;   // the path filled PATH_LEN without reaching its end
    u8 path_words;  // words of path[] that belong to this request's path (the rest is stale)
    u8 pad;
    u32 gen;        // the tgid's generation when the connection was first seen (see generations)
    char path[PATH_LEN];
};

struct stat_key {
    u32 tgid;
    u16 status;  // 0: connection closed before the response
    u8 method;
    u8 truncated;
    u32 gen;     // which process of that tgid: a reused pid does not add to a dead one's counts
    u32 pad;
    u64 path_hash;
};

struct path_val {
    char path[PATH_LEN];  // NUL-padded unless it fills PATH_LEN (then truncated)
};

struct stat_val {
    u64 count;
    u64 sum_ns;
    u64 hist[HIST_BUCKETS];
};

struct ssl_args {
    u64 ssl;
    u64 buf;
    u64 nbytes_ptr;  // size_t * of the _ex forms, 0 for SSL_read/SSL_write
};

// One bit per tgid that has accepted a socket: 65536 * 64 covers pid_max's ceiling (2^22).
BPF_ARRAY(servers, u64, 65536);
BPF_HASH(conns, struct conn_key, struct conn, 65536);
BPF_HASH(stats, struct stat_key, struct stat_val, 16384);
BPF_HASH(paths, u64, struct path_val, 16384);
BPF_HASH(ssl_stash, u64, struct ssl_args, 4096);
BPF_PERCPU_ARRAY(lost, u64, LOST_SLOTS);
// Generation of a tgid: bumped when a server's process exits, so the next process given the
// same pid (PID reuse) counts under new stats keys. Only servers that exited have an entry;
// user space deletes one when no stats entry of that tgid is left.
BPF_HASH(generations, u32, u32, 65536);
// Set by user space once every program is attached. bcc attaches them one at a time (in name
// order) while servers keep serving: a request read before the response programs were
// attached would have its response missed and count as LOST_UNMATCHED. Only the request side
// checks it, so nothing starts until everything can finish.
BPF_ARRAY(armed, u32, 1);
// Zeroed template: a stat_val is too big for the 512-byte BPF stack.
BPF_PERCPU_ARRAY(zero_stat, struct stat_val, 1);

static __always_inline void count_lost(int slot) {
    u64 *v = lost.lookup(&slot);
    if (v)
        *v += 1;  // per-CPU: no atomics needed
}

static __always_inline int is_server(u32 tgid) {
    u32 word = tgid >> 6;
    u64 *bits = servers.lookup(&word);
    return bits && (*bits & (1ULL << (tgid & 63)));
}

static __always_inline u32 generation_of(u32 tgid) {
    u32 *g = generations.lookup(&tgid);
    return g ? *g : 0;
}

static __always_inline u32 bucket_of(u64 ns) {
    u64 us = ns >> 10;  // 1.024 us units: a shift, not a division
    if (us < HIST_SUB)
        return us;
    u32 e = bpf_log2l(us) - 1;  // bcc's bpf_log2l is floor(log2) + 1; e >= HIST_SUB_BITS here
    if (e > HIST_MAX_LOG)
        return HIST_BUCKETS - 1;
    u32 sub = (us >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
    return (e - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

// Method code and request-line offset of the path, from the first 8 bytes of a read.
static __always_inline int parse_method(u64 w, u32 *off) {
    // little-endian: the first byte is the lowest
    if ((w & 0xffffffff) == 0x20544547) { *off = 4; return 1; }            // "GET "
    if ((w & 0xffffffffff) == 0x2054534f50) { *off = 5; return 2; }        // "POST "
    if ((w & 0xffffffff) == 0x20545550) { *off = 4; return 3; }            // "PUT "
    if ((w & 0xffffffffffff) == 0x204843544150) { *off = 6; return 4; }    // "PATCH "
    if ((w & 0xffffffffffffff) == 0x204554454c4544) { *off = 7; return 5; } // "DELETE "
    if ((w & 0xffffffffff) == 0x2044414548) { *off = 5; return 6; }        // "HEAD "
    if (w == 0x20534e4f4954504f) { *off = 8; return 7; }                   // "OPTIONS "
    return 0;
}

// Publish a path's bytes under its hash, before the first stats entry that names it, so user
// space never sees a stats key whose path is missing. Runs only when a stats entry is new.
static __always_inline int publish_path(struct conn *c) {
    struct path_val p;
    u64 *dst = (u64 *)p.path, *src = (u64 *)c->path;
    // path[] past path_words holds an earlier request's path on this connection: not copied.
#pragma unroll
    for (int i = 0; i < PATH_LEN / 8; i++)
        dst[i] = i < c->path_words ? src[i] : 0;
    int err = paths.insert(&c->path_hash, &p);
    return err == -EEXIST ? 0 : err;  // NOEXIST: the first writer of a hash wins
}

static __always_inline void record(u32 tgid, struct conn *c, u16 status, u64 now) {
    struct stat_key k = {.tgid = tgid, .status = status, .method = c->method,
                         .truncated = c->truncated, .gen = c->gen, .path_hash = c->path_hash};
    struct stat_val *v = stats.lookup(&k);
    if (!v) {
        int zero = 0;
        struct stat_val *z = zero_stat.lookup(&zero);
        if (!z)
            return;
        if (publish_path(c)) {
            count_lost(LOST_PATHS);
            return;
        }
        // NOEXIST: another CPU may have created it meanwhile; the lookup below finds that one.
        stats.insert(&k, z);
        v = stats.lookup(&k);
        if (!v) {
            count_lost(LOST_STATS);
            return;
        }
    }
    u64 dur = now - c->start_ns;
    u64 b = bucket_of(dur);
    __sync_fetch_and_add(&v->count, 1);
    __sync_fetch_and_add(&v->sum_ns, dur);
    // Keep clang from bounds-checking a copy of b and indexing with the unchecked original.
    asm volatile("" : "+r"(b));
    if (b < HIST_BUCKETS)
        __sync_fetch_and_add(&v->hist[b], 1);
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
// High bit set in each byte of w equal to the byte c (the lowest flagged byte is always exact;
// borrows can only flag bytes above a real match, which we never look at).
#define BYTE_EQ(w, c) (((w ^ (ONES * (c))) - ONES) & ~(w ^ (ONES * (c))) & HIGHS)

// One read of the request's start (method + up to PATH_LEN bytes of path) into the stack; the
// path is then taken a word at a time, each word assembled from two aligned words of the
// buffer (the path starts 4..8 bytes in), cut at its end (' ', '?', '#', NUL), and stops at
// the word holding the end: "/" costs one word. Only the path's words reach the connection, so
// the query string and what follows never stay in a map. The path's hash is built on the way.
#define REQ_WORDS (METHOD_MAX / 8 + PATH_LEN / 8 + 1)

static __always_inline void take_path(struct conn *c, u64 *req, u32 off, long avail) {
    u64 *dst = (u64 *)c->path;
    u32 sh = off * 8;  // 32..64
    u64 h = 0x9e3779b97f4a7c15ULL;
    int found = 0;
    int words = PATH_WORDS;
#pragma unroll
    for (int i = 0; i < PATH_WORDS; i++) {
        // (x >> (sh - 1)) >> 1: a shift by 64 (OPTIONS) must give 0, not x
        u64 w = ((req[i] >> (sh - 1)) >> 1) | (req[i + 1] << (64 - sh));
        u64 m = BYTE_EQ(w, ' ') | BYTE_EQ(w, '?') | BYTE_EQ(w, '#') | BYTE_EQ(w, 0);
        if (m) {
            u64 low = m & -m;  // the 0x80 bit of the first end byte
            u64 k = (((low >> 7) * 0x0001020304050607ULL) >> 56) & 7;  // its index in the word
            w &= (1ULL << (k * 8)) - 1;
            found = 1;
        }
        dst[i] = w;
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        if (found) {
            words = i + 1;
            break;
        }
    }
    c->path_hash = h;
    c->path_words = words;
    c->truncated = !found && avail > PATH_LEN;
}

// Bytes a server read: a request begins if they start with a method. A connection not yet
// known (accepted before the probe attached, or an SSL* that no accept names) is tracked from
// its first request.
static __always_inline void on_read(struct conn_key *key, u64 buf, long n) {
    if (n < 8)
        return;  // a request line is at least "GET / HTTP/1.0\r\n"
    int zero = 0;
    u32 *on = armed.lookup(&zero);
    if (!on || !*on)
        return;
    // Zeroed: bytes past the read's end must read as NUL, an end of path.
    u64 req[REQ_WORDS] = {};
    u32 len = n > sizeof(req) ? sizeof(req) : (u32)n;
    if (len > sizeof(req) || bpf_probe_read_user(req, len, (void *)buf))
        return;
    u32 off = 0;
    int method = parse_method(req[0], &off);
    if (!method)
        return;  // header continuation, body, TLS records: not the start of a request
    struct conn *c = conns.lookup(key);
    if (!c) {
        struct conn fresh = {.gen = generation_of(key->tgid)};
        if (conns.update(key, &fresh)) {
            count_lost(LOST_CONNS);
            return;
        }
        c = conns.lookup(key);
        if (!c)
            return;
    }
    if (c->method)
        count_lost(LOST_UNMATCHED);
    c->start_ns = bpf_ktime_get_ns();
    c->method = method;
    take_path(c, req, off, n - off);
}

// Bytes a server wrote: "HTTP/1.x NNN" ends the waiting request.
static __always_inline void on_write(u32 tgid, struct conn_key *key, u64 buf, long n) {
    if (n < 12)
        return;
    struct conn *c = conns.lookup(key);
    if (!c || !c->method)
        return;  // body bytes, or no request seen on this connection
    char head[12] = {};
    if (bpf_probe_read_user(head, sizeof(head), (void *)buf))
        return;
    if (head[0] != 'H' || head[1] != 'T' || head[2] != 'T' || head[3] != 'P' || head[4] != '/' ||
        head[5] != '1' || head[6] != '.' || head[8] != ' ')
        return;
    u16 status = 0;
#pragma unroll
    for (int i = 9; i < 12; i++) {
        if (head[i] < '0' || head[i] > '9')
            return;
        status = status * 10 + (head[i] - '0');
    }
    if (status < 200)
        return;  // 1xx is interim (100 Continue): the final response follows
    record(tgid, c, status, bpf_ktime_get_ns());
    c->method = 0;
}

// window: a connection accepted less than this long ago with no request yet may be a new one
// that reused the fd number between the close and its exit tracepoint (another thread's
// accept): keep it. If it was really the closed one, it is harmless and the next accept of
// that fd number overwrites it.
static __always_inline void on_close(u32 tgid, struct conn_key *key, u64 window) {
    struct conn *c = conns.lookup(key);
    if (!c)
        return;  // most closes (files, pipes): no clock read for them
    if (!c->method && window && c->accepted_ns > bpf_ktime_get_ns() - window)
        return;
    if (c->method)
        record(tgid, c, 0, bpf_ktime_get_ns());  // closed before its response
    conns.delete(key);
}

// ---- plain sockets: syscall tracepoints ----

#define ARG_PLAIN 0  // (fd, buf, len, ...): read write recvfrom sendto
#define ARG_IOV 1    // (fd, const struct iovec *, cnt): readv writev
#define ARG_MSG 2    // (fd, struct msghdr *, flags): recvmsg sendmsg

static __always_inline int sock_io(u32 tgid, long ret, int kind, int is_write, u64 fd, u64 arg1) {
    struct conn_key key = {.tgid = tgid, .fd = (u32)fd, .ssl = 0};
    u64 buf = arg1;
    long n = ret;
    if (kind != ARG_PLAIN) {
        u64 iov_ptr = arg1;
        if (kind == ARG_MSG && bpf_probe_read_user(&iov_ptr, sizeof(iov_ptr), (void *)(arg1 + 16)))
            return 0;  // msghdr.msg_iov
        u64 iov[2] = {};
        if (bpf_probe_read_user(iov, sizeof(iov), (void *)iov_ptr))
            return 0;
        buf = iov[0];
        if ((long)iov[1] < n)
            n = iov[1];  // only the first iovec is parsed
    }
    if (is_write)
        on_write(tgid, &key, buf, n);
    else
        // (a server reading a file that starts with "GET /" would be counted as a request too:
        // accepted, as Beyla's protocol detection accepts it)
        on_read(&key, buf, n);
    return 0;
}

// The two first syscall arguments (x86-64: di, si).
struct sys_args {
    u64 di;
    u64 si;
};

static __always_inline int on_accept(long fd) {
    if (fd < 0)
        return 0;
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    struct conn_key key = {.tgid = tgid, .fd = (u32)fd, .ssl = 0};
    struct conn fresh = {.accepted_ns = bpf_ktime_get_ns(), .gen = generation_of(tgid)};
    // Overwrites what a previous owner of this fd number left (close not seen).
    if (conns.update(&key, &fresh)) {
        count_lost(LOST_CONNS);
        return 0;
    }
    u32 word = tgid >> 6;
    u64 *bits = servers.lookup(&word);
    if (bits && !(*bits & (1ULL << (tgid & 63))))
        __sync_fetch_and_or(bits, 1ULL << (tgid & 63));
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_accept) { return on_accept(args->ret); }
TRACEPOINT_PROBE(syscalls, sys_exit_accept4) { return on_accept(args->ret); }
// The user registers saved at syscall entry still hold the arguments at exit.
static __always_inline struct sys_args saved_args(void) {
    struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
    // bpf_task_pt_regs returns a BTF pointer: the loads below are plain (fault-safe) loads the
    // verifier allows, ~40 ns cheaper per call than a bpf_probe_read_kernel of the same bytes.
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
    struct sys_args r = {.di = regs->di, .si = regs->si};
    return r;
}

static __always_inline int io_exit(long ret, int kind, int is_write) {
    if (ret <= 0)
        return 0;
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!is_server(tgid))
        return 0;
    struct sys_args r = saved_args();
    return sock_io(tgid, ret, kind, is_write, r.di, r.si);
}

// One classic tracepoint per syscall rather than one raw_syscalls:sys_exit program: the raw
// one runs on every syscall of every process (13 runs per request under wrk -> nginx) and
// measured slower overall (bench/red_overhead.py, BENCHMARKS.md).
TRACEPOINT_PROBE(syscalls, sys_exit_read) { return io_exit(args->ret, ARG_PLAIN, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_recvfrom) { return io_exit(args->ret, ARG_PLAIN, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_readv) { return io_exit(args->ret, ARG_IOV, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_recvmsg) { return io_exit(args->ret, ARG_MSG, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_write) { return io_exit(args->ret, ARG_PLAIN, 1); }
TRACEPOINT_PROBE(syscalls, sys_exit_sendto) { return io_exit(args->ret, ARG_PLAIN, 1); }
TRACEPOINT_PROBE(syscalls, sys_exit_writev) { return io_exit(args->ret, ARG_IOV, 1); }
TRACEPOINT_PROBE(syscalls, sys_exit_sendmsg) { return io_exit(args->ret, ARG_MSG, 1); }
// sendfile carries response bodies only; the status line was already written by write/writev,
// so it needs no program (one fewer tracepoint on the hot path).

// close is handled at exit too: any sys_enter program puts every syscall of every process
// through the tracepoint's enter path, measured at ~7 % of nginx's CPU per request.
TRACEPOINT_PROBE(syscalls, sys_exit_close) {
    if (args->ret != 0)
        return 0;
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!is_server(tgid))
        return 0;
    struct sys_args r = saved_args();
    struct conn_key key = {.tgid = tgid, .fd = (u32)r.di, .ssl = 0};
    on_close(tgid, &key, REUSE_WINDOW_NS);
    return 0;
}

// A server process exits: the next process given its pid is another service. Its bit is
// cleared (it becomes a server again by accepting) and its generation moves on. Runs for every
// thread exit on the host; all but a server's last thread return after one array load.
TRACEPOINT_PROBE(sched, sched_process_exit) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
    if ((u32)id != tgid || !is_server(tgid))
        return 0;
    u32 word = tgid >> 6;
    u64 *bits = servers.lookup(&word);
    if (bits)
        __sync_fetch_and_and(bits, ~(1ULL << (tgid & 63)));
    u32 one = 1;
    u32 *g = generations.lookup(&tgid);
    if (g)
        __sync_fetch_and_add(g, 1);
    else if (generations.update(&tgid, &one))
        count_lost(LOST_STATS);
    return 0;
}

// ---- HTTPS through OpenSSL: uprobes on libssl.so.3 ----

static __always_inline int ssl_enter(struct pt_regs *ctx, u64 nbytes_ptr) {
    u64 id = bpf_get_current_pid_tgid();
    struct ssl_args a = {.ssl = PT_REGS_PARM1(ctx), .buf = PT_REGS_PARM2(ctx), .nbytes_ptr = nbytes_ptr};
    if (ssl_stash.update(&id, &a))
        count_lost(LOST_SSL_ARGS);
    return 0;
}

static __always_inline int ssl_exit(struct pt_regs *ctx, int is_write) {
    u64 id = bpf_get_current_pid_tgid();
    struct ssl_args *a = ssl_stash.lookup(&id);
    if (!a)
        return 0;
    struct ssl_args args = *a;
    ssl_stash.delete(&id);
    long ret = PT_REGS_RC(ctx);
    long n = ret;
    if (args.nbytes_ptr) {
        if ((int)ret != 1)
            return 0;  // the _ex forms return 1 on success and the count through a pointer
        u64 got = 0;
        if (bpf_probe_read_user(&got, sizeof(got), (void *)args.nbytes_ptr))
            return 0;
        n = got;
    }
    if (n <= 0)
        return 0;
    u32 tgid = id >> 32;
    struct conn_key key = {.tgid = tgid, .fd = SSL_FD, .ssl = args.ssl};
    if (is_write)
        on_write(tgid, &key, args.buf, n);
    else
        on_read(&key, args.buf, n);
    return 0;
}

int ssl_read_enter(struct pt_regs *ctx) { return ssl_enter(ctx, 0); }
int ssl_read_ex_enter(struct pt_regs *ctx) { return ssl_enter(ctx, PT_REGS_PARM4(ctx)); }
int ssl_write_enter(struct pt_regs *ctx) { return ssl_enter(ctx, 0); }
int ssl_write_ex_enter(struct pt_regs *ctx) { return ssl_enter(ctx, PT_REGS_PARM4(ctx)); }
int ssl_read_exit(struct pt_regs *ctx) { return ssl_exit(ctx, 0); }
int ssl_write_exit(struct pt_regs *ctx) { return ssl_exit(ctx, 1); }

int ssl_free_enter(struct pt_regs *ctx) {
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    struct conn_key key = {.tgid = tgid, .fd = SSL_FD, .ssl = PT_REGS_PARM1(ctx)};
    on_close(tgid, &key, 0);
    return 0;
}
