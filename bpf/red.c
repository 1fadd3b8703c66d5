// RED (rate, errors, duration) of every HTTP/1.x server on the host, aggregated in kernel.
//
// Loaded by obs_tui/sources/red.py through bcc. Only tracepoints and uprobes: this kernel has
// no kprobes and refuses fentry/fexit.
//
// Cost model (BENCHMARKS.md has the figures): the socket tracepoints fire
// for every process's socket I/O, the load generator's included, so every program rejects
// uninteresting calls before touching any shared state. A tgid is interesting only when it
// is a server: it listened (seen in kernel at listen()), it was forked by a server (pre-fork
// workers), or user space found it holding a listening socket at load. That is one bit in
// the `servers` bitmap, an array lookup the verifier inlines; everything else returns there.
// No syscall tracepoint is used: enabling one puts every syscall of every process on the host
// through the tracepoint slow path.
//
// A connection is keyed by its struct sock * (or, for HTTPS, by the process's SSL *): it gets
// an entry in `conns` at its first request, so connections accepted before the probe attached
// (long-lived keep-alive) are seen from their next request, and fd numbers never need
// tracking. TCP state changes end it. HTTPS through OpenSSL needs uprobe/uretprobe pairs;
// those stash arguments per thread, but only libssl users pay for them.
//
// Only the method, the path (cut at '?', '#' or ' ': query strings carry secrets) and the
// status code leave the probe; headers and bodies are never copied.
//
// Nothing it sees is missed in silence: a response with no parsed request waiting is counted
// as a request not parsed (split across reads, pipelined, unknown method) or, when no read
// could have begun it, as lost (LOST_UNPARSED); a connection whose first bytes are a TLS
// ClientHello or the HTTP/2 preface is counted in `undecoded`; the parent of each server's
// child is kept in `forks` so fork-per-connection children count under their server.
//
// The stats hash is keyed by a 64-bit hash of the path (16-byte key): the kernel hashes and
// compares that key once per response, where a key holding the path itself cost ~100 bytes of
// jhash + memcmp + copy each time. The path's bytes go to `paths` once, when a stats entry is
// first created; user space joins the two. Two paths with the same 64-bit hash would share
// counters (first one's name): accepted, it cannot leak anything the probe did not keep.

#include <uapi/linux/ptrace.h>

// bpf_probe_read_user under a name of the probe's own. At every call site of the helper by its
// own name, bcc's rewriter asks whether the kernel has it by reading the whole of
// /proc/kallsyms anew: tens of milliseconds of compile time a call site. Every kernel this
// probe loads on has it (bpf_task_pt_regs, below, came later), so nothing needs asking. The
// prototype is bcc's own (helpers.h): the code clang makes of each call stays the same.
static int (*read_user_helper)(void *dst, u32 size, const void *unsafe_ptr) = (void *)BPF_FUNC_probe_read_user;
static int (*read_kernel)(void *dst, u32 size, const void *unsafe_ptr) = (void *)BPF_FUNC_probe_read_kernel;

// bench/red_prog_cost.py -D RED_COUNT: the probe counts its own costly operations (per CPU),
// so the bench can say how many of each a request takes.
#define COUNT_READS 0
#define COUNT_HASH 1     // hash map lookups, updates and deletes (array lookups are inlined)
#define COUNT_RESERVE 2  // ring buffer reservations
#define COUNT_TAIL 3     // tail calls
#ifdef RED_COUNT
BPF_PERCPU_ARRAY(red_counts, u64, 4);
static __always_inline void red_count(int slot) {
    u64 *v = red_counts.lookup(&slot);
    if (v)
        *v += 1;
}
static __always_inline int read_user(void *dst, u32 size, const void *unsafe_ptr) {
    red_count(COUNT_READS);
    return read_user_helper(dst, size, unsafe_ptr);
}
#else
#define red_count(slot) ((void)0)
#define read_user read_user_helper
#endif

// The constants shared with user space (PATH_LEN, HIST_*, LOST_*, METHOD_*, UNDECODED_*,
// UNPARSED_HASH, STATS_MAX, PATHS_MAX) are written once, in obs_tui/probe_constants.py; the
// loader passes them as -D flags. Defining them here too would let the two sides drift apart.
#if !defined(PATH_LEN) || !defined(HIST_UNIT_SHIFT) || !defined(HIST_SUB_BITS) || !defined(HIST_SUB) || \
    !defined(HIST_MAX_LOG) || !defined(HIST_BUCKETS) || !defined(LOST_CONNS) || !defined(LOST_STATS) || \
    !defined(LOST_SSL_ARGS) || !defined(LOST_UNMATCHED) || !defined(LOST_PATHS) || !defined(LOST_SLOTS) || \
    !defined(STATS_MAX) || !defined(PATHS_MAX) || !defined(LOST_UNPARSED) || !defined(LOST_UNDECODED) || \
    !defined(METHOD_UNPARSED) || !defined(UNPARSED_HASH) || !defined(UNDECODED_TLS) || !defined(UNDECODED_HTTP2) || \
    !defined(LOST_H2_EVENTS) || !defined(LOST_H2_CONNS) || !defined(LOST_H2_SYNC) || !defined(H2_BLOCK_MAX) || \
    !defined(H2_FRAMES) || !defined(H2_TAILS) || !defined(H2_EV_OPEN) || !defined(H2_EV_CLOSE) || !defined(H2_EV_DESYNC) || !defined(H2_EV_UPGRADE)
#error "load through obs_tui.bcc_setup.load_program: it passes obs_tui/probe_constants.py as -D flags"
#endif
#define METHOD_MAX 8  // "OPTIONS ": the longest method plus its space
#define PATH_WORDS (PATH_LEN / 8)

#define KIND_SOCK 0  // a socket, keyed by its struct sock *
#define KIND_SSL 1   // an OpenSSL connection, keyed by (tgid, SSL *)

// TCP states (include/net/tcp_states.h)
#define TCP_FIN_WAIT1 4
#define TCP_CLOSE 7
#define TCP_LAST_ACK 9
#define TCP_LISTEN 10
#define MSG_PEEK 2

struct conn_key {
    u64 ptr;   // struct sock * (kernel address) or SSL * (user address)
    u32 tgid;  // 0 for sockets: a socket's state changes run in softirq, outside its process
    u32 kind;
};

struct conn {
    u64 start_ns;   // the read that brought the request's first bytes
    u64 path_hash;
    u32 tgid;       // the process that read the request: its counters get the response
    u8 method;      // 0: no request waiting for its response
    u8 truncated;   // the path filled PATH_LEN without reaching its end
    u8 path_words;  // words of path[] that belong to this request's path (the rest is stale)
    u8 closing;     // the socket closed while its process was sending: see inet_sock_set_state
    u32 gen;        // the tgid's generation when the connection was first seen (see generations)
    u8 tls;         // an SSL * connection (KIND_SSL): its requests are https
    u8 h2;          // HTTP/2: its bytes go to the frame walker (h2_io), never to the HTTP/1 parser
    u8 pad[2];      // partial_ns and path 8-byte aligned
    u64 partial_ns; // a read that may begin a request the probe cannot parse (see on_read)
    char path[PATH_LEN];
};

struct stat_key {
    u32 tgid;
    u16 status;  // 0: connection closed before the response
    u8 method;
    u8 truncated;
    u32 gen;     // which process of that tgid: a reused pid does not add to a dead one's counts
    u8 tls;      // read and answered through libssl (url_scheme https)
    u8 pad[3];
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

struct undecoded_key {
    u32 tgid;
    u32 gen;
    u32 kind;  // UNDECODED_*
    u32 pad;
};

struct ssl_args {
    u64 ssl;
    u64 buf;
    u64 nbytes_ptr;  // size_t * of the _ex forms, 0 for SSL_read/SSL_write
};

// One bit per server tgid: 65536 * 64 covers pid_max's ceiling (2^22).
BPF_ARRAY(servers, u64, 65536);
BPF_HASH(conns, struct conn_key, struct conn, 65536);
BPF_HASH(stats, struct stat_key, struct stat_val, STATS_MAX);
BPF_HASH(paths, u64, struct path_val, PATHS_MAX);
BPF_HASH(ssl_stash, u64, struct ssl_args, 4096);
BPF_PERCPU_ARRAY(lost, u64, LOST_SLOTS);
BPF_HASH(undecoded, struct undecoded_key, u64, 16384);
// One bit per tgid that called the traced libssl: its TLS is decoded by the uprobes, so the
// ClientHellos the socket probe counted for it are not undecoded (user space sets them aside).
BPF_ARRAY(ssl_users, u64, 65536);
// Child process -> the server that forked it, so user space can attribute the requests of a
// fork-per-connection child (gone by the time it looks) to the server that forked it. LRU:
// entries of children long gone make room; threads' entries are removed as they exit.
BPF_TABLE("lru_hash", u32, u32, forks, 65536);
// Generation of a tgid: bumped when a server's process exits, so the next process given the
// same pid (PID reuse) counts under new stats keys. Only servers that exited have an entry;
// user space deletes one when no stats entry of that tgid is left.
BPF_HASH(generations, u32, u32, 65536);
// tgids that called listen() since user space last looked: it reads their /proc/PID/maps for
// TLS libraries to put uprobes on (sources/tls_uprobes.py), then deletes their entries. A
// listen() is rare, and an LRU keeps a burst of them from failing.
BPF_TABLE("lru_hash", u32, u32, listeners, 1024);
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
    red_count(COUNT_HASH);
    u32 *g = generations.lookup(&tgid);
    return g ? *g : 0;
}

static __always_inline int is_armed(void) {
    int zero = 0;
    u32 *on = armed.lookup(&zero);
    return on && *on;
}

static __always_inline u32 bucket_of(u64 ns) {
    u64 us = ns >> HIST_UNIT_SHIFT;  // 1.024 us units: a shift, not a division
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

static __always_inline void record(struct conn *c, u16 status, u64 now) {
    struct stat_key k = {.tgid = c->tgid, .status = status, .method = c->method,
                         .truncated = c->truncated, .gen = c->gen, .tls = c->tls,
                         .path_hash = c->path_hash};
    red_count(COUNT_HASH);
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

// TLS record header + handshake type of a ClientHello: 16 03 0x LL LL 01. Only a client sends
// one, so it marks a server's socket; a ServerHello (02) read by a server acting as a client does
// not match. On an SSL connection the bytes are already decrypted: no TLS inside TLS.
#define TLS_HELLO_MASK 0x0000ff000000ffffULL
#define TLS_HELLO 0x0000010000000316ULL
#define H2_PREFACE 0x5448202a20495250ULL  // "PRI * HT", the first 8 bytes of the preface
#define HTTP_SLASH 0x2f50545448ULL          // "HTTP/"

static __always_inline u32 undecoded_kind(u64 w, u32 conn_kind) {
    if (w == H2_PREFACE)
        return UNDECODED_HTTP2;
    if (conn_kind == KIND_SOCK && (w & TLS_HELLO_MASK) == TLS_HELLO)
        return UNDECODED_TLS;  // user space sets aside the servers whose libssl is traced
    return 0;
}

// Once per connection (its first bytes), so an ordinary hash is cheap enough.
static __always_inline void count_undecoded(u32 tgid, u32 kind) {
    struct undecoded_key k = {.tgid = tgid, .gen = generation_of(tgid), .kind = kind};
    u64 *v = undecoded.lookup(&k);
    if (!v) {
        u64 zero = 0;
        undecoded.insert(&k, &zero);  // NOEXIST: another CPU may have made it meanwhile
        v = undecoded.lookup(&k);
        if (!v) {
            count_lost(LOST_UNDECODED);
            return;
        }
    }
    __sync_fetch_and_add(v, 1);
}

// The connection's entry, made at its first sign of a request.
static __always_inline struct conn *conn_of(u32 tgid, struct conn_key *key) {
    red_count(COUNT_HASH);
    struct conn *c = conns.lookup(key);
    if (c)
        return c;
    struct conn fresh = {.gen = generation_of(tgid), .tgid = tgid, .tls = key->kind == KIND_SSL};
    red_count(COUNT_HASH);
    if (conns.update(key, &fresh)) {
        count_lost(LOST_CONNS);
        return 0;
    }
    red_count(COUNT_HASH);
    return conns.lookup(key);
}

// ---- HTTP/2: frame headers walked in kernel, header blocks decoded in user space ----
//
// Kept in this one section (entry points h2_start, h2_io, h2_close, called from on_read,
// on_write and on_close), and in this file: bcc rewrites map calls in the main source only.
//
// A connection is HTTP/2 from its preface (h2c with prior knowledge, or h2 inside a TLS the
// uprobes decrypt), or, for one opened before the probe attached, from a read that begins with
// a request's HEADERS frame (h2_adoptable). Its `conns` entry is flagged h2, and its bytes, read
// or written, from a socket or from a decrypting uprobe alike (red.c's on_read and on_write),
// go through h2_io: a walk over its 9-byte frame headers that keeps, per direction and across
// reads, what is left of the current frame, so DATA payloads are skipped without being read.
// Only the payloads of HEADERS and CONTINUATION frames (HPACK header blocks) and RST_STREAM's
// error code are copied out, with the frame's type, flags, stream id, direction and a
// timestamp, through the `h2_events` ring buffer. HPACK needs every block of a connection, in
// order, to keep its dynamic table, so the blocks are decoded in user space
// (obs_tui/sources/h2_streams.py), which keeps the method, path and statuses and drops the rest.
//
// Every entry program only notes what its call needs (h2_io: the connection, the buffer, its
// iovecs, and whether the call opens the connection) in a per-CPU slot; the walk itself, the
// connection's opening and every header block's event live in the walk programs alone
// (h2_walk_more), reached by a tail call once on_read/on_write return (h2_walk_tail), as only
// the entry program holds the context a tail call needs. So the large code is compiled and
// verified twice (one walk program per program type), not once per entry program.
//
// The walk over a call's frames is a bounded loop whose state lives in map values (the per-CPU
// struct h2_walk, and the direction's struct h2_dir in the connection's h2_conns entry, walked
// in place), not in registers: the verifier then finds the same state at the loop's head
// whatever path an iteration took, and verifies H2_FRAMES iterations in linear time; but each
// costs it thousands of instructions, so one program walks H2_FRAMES steps and tail-calls the
// next (h2_walk_more), up to H2_TAILS programs: H2_FRAMES * H2_TAILS steps per call. (bpf_loop
// would verify the body once, but bcc cannot load its callback: it leaves the callback's
// address 0, which the verifier refuses.)

#define H2_WIN 128           // bytes of a buffer the walk reads at once (struct h2_walk's win)
#define H2_IOVC 4            // iovecs the walk reads at once (struct h2_walk's iovc)
_Static_assert(H2_IOVC == 4, "h2_iovec's masks are H2_IOVC - 1 and 16 * 2 * H2_IOVC - 1");
_Static_assert(H2_WIN == 128, "h2_copy's and h2_step's masks are 2 * H2_WIN - 1");
#define H2_DIR_REQUEST 0   // read by the server
#define H2_DIR_RESPONSE 1  // written by the server
#define H2_HEADERS 1
#define H2_RST_STREAM 3
#define H2_CONTINUATION 9
#define H2_SKIP 0xff  // the current "frame" is the rest of the connection preface
#define H2_PREFACE_LEN 24
#define H2_STR(x) #x
#define H2_XSTR(x) H2_STR(x)
#define H2_MASK H2_XSTR(H2_MASK_VALUE)

#define H2_OPEN_NONE 0
#define H2_OPEN_PREFACE 1  // the call's bytes begin with the connection preface
#define H2_OPEN_ADOPTED 2  // a connection met mid-stream, at a request's HEADERS frame
#define H2_OPEN_UPGRADE 3  // a 101 to h2c was written: the client's preface comes next

struct h2_dir {
    u32 left;       // bytes of the current frame's payload still to come in later buffers
    u32 stream;     // the current frame's stream, length, type and flags, for those bytes
    u32 frame_len;
    u32 seq;        // events sent for this direction: user space sees a gap when one is lost
    u8 type;
    u8 flags;
    u8 hhave;       // bytes of a frame header cut by the end of a buffer, kept in hdr
    u8 sent;        // some of the current frame's payload was sent (its next event continues it)
    u32 gathered;   // of those left, bytes already sent with the frame's first (h2_gather): skipped
    u8 hdr[24];     // 9 used; room for a masked length past a variable offset
};

// One direction of a connection, keyed by its conn_key with the direction in kind's second
// byte (h2_key): the walk finds its state at a fixed offset of the map value, which the
// verifier prunes on, where one entry of both directions put it at a variable one.
struct h2_conn {
    struct h2_dir d;
    u32 tgid;  // the server process that read the connection's first bytes
    u32 gen;
};

// A vectored socket call's iovecs (sock_io), for the walk: grpc-core and nginx read and write
// frame headers and payloads in separate iovecs, where HTTP/1 looks at the first only. The
// second iovec comes with the first (one read of both), so a frame header and its payload in
// two iovecs cost no read of the iovec array in the walk.
struct h2_iov {
    u64 iov;    // the iovec array, 0 for a single buffer (the uprobes')
    u64 cnt;
    u64 total;  // bytes the call moved, all iovecs together
    u64 next[2];  // the second iovec (base, length) when cnt >= 2
};

// One call's walk, in a per-CPU slot: set up by h2_io, walked by the walk programs.
struct h2_walk {
    struct conn_key key;
    u64 buf;
    u32 n;
    u32 pos;
    u64 iov;     // the call's iovecs (sock_io), walked one after the other
    u64 chunks;
    u64 chunk;
    u64 total;   // bytes of the call not yet in a walked iovec
    // iovecs iovc_at .. iovc_at + iovc_n - 1 of the call (h2_iovec): iovec 1, read with iovec 0
    // by the entry program, then H2_IOVC at a time, so the walk and h2_gather read each once
    u64 iovc[2 * H2_IOVC][2];  // H2_IOVC used: the rest is for the verifier's mask
    u64 iovc_at;
    u64 iovc_n;
    u64 ts;      // the call's time, each of its events' timestamp
    u64 vec[2];  // scratch: an iovec, a frame header (here, not on the stack, so that every
    u8 head[16]; // iteration leaves the stack as it found it and the verifier prunes)
    u32 tgid;    // the reader, and its generation, of a connection this call opens
    u32 gen;
    u8 dir;
    u8 pending;  // set up by h2_io, not yet walked (see h2_walk_tail)
    u8 tails;    // walk programs run for this call
    u8 open;     // H2_OPEN_*: the connection begins with this call
    u8 pad[4];
    // A copy of the call's bytes [win_start, win_start + win_len) of one buffer, read from user
    // memory in one go (H2_WIN bytes at a frame header not in it, or on_read's first bytes):
    // the frame headers and small header blocks it holds cost no read of their own (h2_copy).
    // Wiped when the walk ends (h2_done): a body's bytes never outlive their call's walk.
    u64 win_start;
    u32 win_len;
    u32 pad2;
    u8 win[2 * H2_WIN];  // H2_WIN used: the rest is for the verifier's mask
};

struct h2_head {
    u64 conn;        // the conn_key: ptr, key_tgid, kind
    u64 ts;
    u32 tgid;
    u32 gen;
    u32 stream;
    u32 frame_len;   // the frame's whole payload length
    u32 seq;
    u32 key_tgid;
    u16 len;         // bytes of data[] filled
    u8 type;         // the frame's type, or an H2_EV_* pseudo type
    u8 flags;
    u8 dir;
    u8 kind;
    u8 cont;         // data continues the payload of a frame begun in an earlier buffer
    u8 missed;       // payload bytes in this buffer that were not copied (over H2_BLOCK_MAX)
    u8 last;         // the frame's payload ends in this buffer
    u8 pad[7];
};

// An event is reserved in the ring buffer and written there (no copy through a scratch
// buffer): a small one for the short blocks of a busy connection (fully indexed, or nearly),
// a large one (2 KB of the ring) for the rest, mostly a connection's first blocks.
#define H2_SMALL 128  // h2_emit masks with 127
_Static_assert(H2_SMALL == 128, "h2_emit's mask is H2_SMALL - 1");
struct h2_small {
    struct h2_head h;
    char data[H2_SMALL];  // at most H2_SMALL - 1 used
};
struct h2_large {
    struct h2_head h;
    char data[2 * H2_BLOCK_MAX];  // at most H2_BLOCK_MAX used: the rest is for the verifier's mask
};

BPF_HASH(h2_conns, struct conn_key, struct h2_conn, 2 * 16384);  // two directions a connection
BPF_RINGBUF_OUTPUT(h2_events, 4096);  // pages: 16 MiB, drained every 0.25 s by user space (sources/red.py)
BPF_PERCPU_ARRAY(h2_walks, struct h2_walk, 1);

static __always_inline struct conn_key h2_key(struct conn_key *key, u8 dir) {
    struct conn_key k = *key;
    k.kind |= (u32)dir << 8;
    return k;
}

static __always_inline void h2_forget(struct conn_key *key) {
    struct conn_key k = h2_key(key, H2_DIR_REQUEST);
    red_count(COUNT_HASH);
    h2_conns.delete(&k);
    k = h2_key(key, H2_DIR_RESPONSE);
    red_count(COUNT_HASH);
    h2_conns.delete(&k);
}

// A value the caller knows is below 9, masked where the verifier sees it: clang drops a plain
// mask it can prove redundant, and may pass the unmasked 64-bit register to the helper.
static __always_inline u64 h2_small(u64 v) {
    asm volatile("%0 &= 15" : "+r"(v));
    return v;
}

// The call's time, every event of its walk: taken at its first (a walk that sends nothing,
// over DATA frames, does without).
static __always_inline u64 h2_ts(struct h2_walk *w) {
    if (!w->ts)
        w->ts = bpf_ktime_get_ns();
    return w->ts;
}

// len bytes of the call at user address src: from the walk's window when it holds them (a
// copy of kernel memory costs less than a read of user memory), else from user memory.
static __always_inline int h2_copy(struct h2_walk *w, void *dst, u32 len, u64 src) {
    u64 at = src - w->win_start;
    if (src >= w->win_start && at + len <= w->win_len) {
        asm volatile("%0 &= 127" : "+r"(at));  // it is: the window holds H2_WIN bytes
        return read_kernel(dst, len, &w->win[at]);
    }
    return read_user(dst, len, (void *)src);
}

// The walk is over: nothing pending, and the window's copy of the call's bytes wiped.
static __always_inline void h2_done(struct h2_walk *w) {
    w->pending = 0;
    w->win_len = 0;
    u64 *win = (u64 *)w->win;
#pragma unroll
    for (int i = 0; i < H2_WIN / 8; i++)
        win[i] = 0;
}

// Iovec j of the call (base, length) into vec, from the walk's copy of the iovec array when
// it holds it, else read with the next ones (up to H2_IOVC, as many as the call has). 0: found.
static __always_inline int h2_iovec(struct h2_walk *w, u64 j, u64 *vec) {
    if (j - w->iovc_at >= w->iovc_n) {
        u64 k = w->chunks - j < H2_IOVC ? w->chunks - j : H2_IOVC;
        u64 size = 16 * k;
        asm volatile("%0 &= 127" : "+r"(size));
        if (read_user(w->iovc, size, (void *)(w->iov + 16 * j)))
            return -1;
        w->iovc_at = j;
        w->iovc_n = k;
    }
    u64 i = j - w->iovc_at;
    asm volatile("%0 &= 3" : "+r"(i));
    vec[0] = w->iovc[i][0];
    vec[1] = w->iovc[i][1];
    return 0;
}

// An event of the connection w->key (tgid, gen: its server) with avail bytes of user memory
// at src (0 for the probe's own events, which carry none).
static __always_inline void h2_emit(struct h2_walk *w, u32 tgid, u32 gen, u32 seq, u8 type, u8 flags,
                                    u32 stream, u32 frame_len, u8 cont, u8 last, u64 src, u32 avail) {
    struct h2_head h = {.conn = w->key.ptr, .key_tgid = w->key.tgid, .kind = w->key.kind, .ts = h2_ts(w),
                        .tgid = tgid, .gen = gen, .stream = stream, .frame_len = frame_len,
                        .seq = seq, .type = type, .flags = flags, .dir = w->dir, .cont = cont,
                        .last = last};
    // no wakeup: user space drains the ring on a timer (sources/red.py), where a wakeup per
    // event would cost an irq_work here and a poll return there for every header block
#ifdef RED_H2_NO_BLOCKS
    if (avail)
        return;  // bench/red_prog_cost.py -D RED_H2_NO_BLOCKS: the walk without its block events
#endif
    void *e;
    u64 len;
    if (avail < H2_SMALL) {
        red_count(COUNT_RESERVE);
        e = h2_events.ringbuf_reserve(sizeof(struct h2_small));
        len = avail;
        asm volatile("%0 &= 127" : "+r"(len));
    } else {
        red_count(COUNT_RESERVE);
        e = h2_events.ringbuf_reserve(sizeof(struct h2_large));
        len = avail < H2_BLOCK_MAX ? avail : H2_BLOCK_MAX;
        asm volatile("%0 &= " H2_MASK : "+r"(len));
        h.missed = avail > len;
    }
    if (!e) {
        count_lost(LOST_H2_EVENTS);
        return;
    }
    if (len && h2_copy(w, (char *)e + sizeof(struct h2_head), len, src)) {
        len = 0;
        h.missed = 1;
    }
    h.len = len;
    __builtin_memcpy(e, &h, sizeof(h));
    h2_events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

// A frame's payload that begins in this buffer (avail bytes at src) and goes on in the call's
// next iovecs, sent as one event: grpc-core writes a header block in pieces (a header's name
// from one slice, its value from another), an iovec each. Up to H2_GATHER more iovecs are
// read into the same event, so user space gets the whole block in one event when the call
// holds it (last set); what is not gathered goes as the frame's next events, as before.
// Returns the bytes taken from later iovecs: the walk skips them when it gets there.
#define H2_GATHER 6

// h2_gather's reads into an event reserved with room for 2 * (mask + 1) bytes of data: every
// piece's offset and length masked where the verifier sees them. Returns the bytes read.
static __always_inline u32 h2_gather_into(struct h2_walk *w, char *data, const u32 mask, u32 frame_len, u64 src,
                                          u32 avail) {
    u64 len = avail;
    asm volatile("%0 &= %1" : "+r"(len) : "i"(mask));
    if (h2_copy(w, data, len, src))
        return 0;
    u32 off = len, need = frame_len - len;
    u64 j = w->chunk + 1;
    for (int i = 0; i < H2_GATHER; i++) {
        if (!need || j >= w->chunks)
            break;
        u64 vec[2];
        if (h2_iovec(w, j, vec))
            break;
        u64 take = vec[1] < need ? vec[1] : need;
        asm volatile("%0 &= %1" : "+r"(take) : "i"(mask));
        u64 at = off;
        asm volatile("%0 &= %1" : "+r"(at) : "i"(mask));
        if (read_user(data + at, take, (void *)vec[0]))
            break;  // what came before it goes now; the rest as the frame's next events
        off = at + take;
        need -= take;
        j++;
    }
    return off;
}

// A frame's payload of frame_len < H2_BLOCK_MAX bytes that begins in this buffer (avail bytes
// at src) and goes on in the call's next iovecs. Returns the bytes sent from later iovecs.
static __always_inline u32 h2_gather(struct h2_walk *w, struct h2_conn *h, struct h2_dir *d, u8 type, u8 flags,
                                     u32 stream, u32 frame_len, u64 src, u32 avail) {
#ifdef RED_H2_NO_BLOCKS
    return 0;  // as h2_emit's: no block events
#endif
    char *e;
    u32 off;
    red_count(COUNT_RESERVE);
    if (frame_len < H2_SMALL / 2) {
        e = h2_events.ringbuf_reserve(sizeof(struct h2_small));
        off = e ? h2_gather_into(w, e + sizeof(struct h2_head), H2_SMALL / 2 - 1, frame_len, src, avail) : 0;
    } else {
        e = h2_events.ringbuf_reserve(sizeof(struct h2_large));
        off = e ? h2_gather_into(w, e + sizeof(struct h2_head), H2_BLOCK_MAX - 1, frame_len, src, avail) : 0;
    }
    if (!e) {
        count_lost(LOST_H2_EVENTS);
        ++d->seq;  // the gap tells user space
        return 0;
    }
    struct h2_head head = {.conn = w->key.ptr, .key_tgid = w->key.tgid, .kind = w->key.kind, .ts = h2_ts(w),
                           .tgid = h->tgid, .gen = h->gen, .stream = stream, .frame_len = frame_len,
                           .seq = ++d->seq, .type = type, .flags = flags, .dir = w->dir, .cont = d->sent,
                           .last = off == frame_len, .len = off, .missed = !off};
    __builtin_memcpy(e, &head, sizeof(head));
    h2_events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return off > avail ? off - avail : 0;
}

#define H2_SENT_TYPE(t) ((t) == H2_HEADERS || (t) == H2_CONTINUATION || (t) == H2_RST_STREAM)

// One frame whose 9-byte header is at p and whose payload begins at buf + pos. A header block
// or error code is left to the next step (h2_step sends it from where it is, the payload's
// first bytes in this buffer or the next: an empty event is never sent for a frame header
// that ends its buffer, as grpc-core's and nginx's do); any other payload is skipped.
static __always_inline void h2_frame(struct h2_walk *w, struct h2_conn *h, struct h2_dir *d, u8 *p) {
    u32 len = ((u32)p[0] << 16) | ((u32)p[1] << 8) | p[2];
    u8 type = p[3], flags = p[4];
    u32 stream = (((u32)p[5] & 0x7f) << 24) | ((u32)p[6] << 16) | ((u32)p[7] << 8) | p[8];
    u32 at = w->pos, n = w->n;
    u32 avail = n - at < len ? n - at : len;
    d->type = type;
    d->flags = flags;
    d->stream = stream;
    d->frame_len = len;
    d->sent = 0;
    d->gathered = 0;
    if (H2_SENT_TYPE(type)) {
        d->left = len;
        if (!len)
            h2_emit(w, h->tgid, h->gen, ++d->seq, type, flags, stream, 0, 0, 1, 0, 0);
        return;
    }
    d->left = len - avail;
    w->pos = at + avail;
}

// The loop's body, one step of the walk: the next iovec when the buffer is done, else what the
// last buffer left (a cut frame header, the rest of a frame's payload), else the next frame.
// Returns 1 when the call's bytes are all walked (a frame header cut by their end is kept for
// the next call).
static __always_inline int h2_step(struct h2_walk *w, struct h2_conn *h, struct h2_dir *d) {
    u64 buf = w->buf;
    if (w->pos >= w->n) {
        if (w->chunk + 1 >= w->chunks || !w->total)
            return 1;
        w->chunk++;
        if (h2_iovec(w, w->chunk, w->vec))
            return 1;
        w->buf = w->vec[0];
        w->n = w->vec[1] < w->total ? w->vec[1] : w->total;
        w->total -= w->n;
        w->pos = 0;
        return 0;
    }
    u32 rest = w->n - w->pos;
    if (d->hhave) {
        u32 have = d->hhave, need = 9 - have;
        if (have > 8 || need > 8)
            return 1;
        if (need > rest) {
            h2_copy(w, &d->hdr[h2_small(have)], h2_small(rest), buf + w->pos);
            d->hhave = have + rest;
            w->pos = w->n;
            return 0;
        }
        h2_copy(w, &d->hdr[h2_small(have)], h2_small(need), buf + w->pos);
        d->hhave = 0;
        w->pos += need;
        __builtin_memcpy(w->head, d->hdr, 16);
        h2_frame(w, h, d, w->head);
        return 0;
    }
    if (d->left) {
        u32 take = d->left < rest ? d->left : rest;
        u8 t = d->type;
        if (d->gathered) {
            take = take < d->gathered ? take : d->gathered;  // sent already, with the frame's start
            d->gathered -= take;
        } else if (H2_SENT_TYPE(t)) {
            // a payload cut by its iovec's end whose rest is in this call: one event (h2_gather)
            if (!d->sent && take < d->left && w->iov && d->frame_len < H2_BLOCK_MAX && d->left - take <= w->total)
                d->gathered = h2_gather(w, h, d, t, d->flags, d->stream, d->frame_len, buf + w->pos, take);
            else
                h2_emit(w, h->tgid, h->gen, ++d->seq, t, d->flags, d->stream, d->frame_len, d->sent,
                        take == d->left, buf + w->pos, take);
        }
        d->sent = 1;
        d->left -= take;
        w->pos += take;
        return 0;
    }
    if (rest < 9) {
        h2_copy(w, d->hdr, h2_small(rest), buf + w->pos);
        d->hhave = rest;
        w->pos = w->n;
        return 0;
    }
    u64 at = buf + w->pos - w->win_start;
    if (buf + w->pos < w->win_start || at + 9 > w->win_len) {
        // not in the window: the next H2_WIN bytes of the buffer (or its rest) come into it
        u64 take = rest < H2_WIN ? rest : H2_WIN;
        asm volatile("%0 &= 255" : "+r"(take));
        if (read_user(w->win, take, (void *)(buf + w->pos)))
            return 1;
        w->win_start = buf + w->pos;
        w->win_len = take;
        at = 0;
    }
    asm volatile("%0 &= 127" : "+r"(at));
    __builtin_memcpy(w->head, &w->win[at], 16);
    w->pos += 9;
    h2_frame(w, h, d, w->head);
    return 0;
}

// The walk's programs: one tail-calls the next (the same program, through a prog array of its
// own program type) until the call's bytes are walked, H2_FRAMES steps each. A call takes at
// most H2_TAILS of them (the kernel's limit on tail calls is 33): a buffer holding more frames
// than that loses the connection, counted as a lost event (LOST_H2_SYNC), never in silence.
BPF_PROG_ARRAY(h2_walk_tp_progs, 1);  // raw tracepoints (sock_io)
BPF_PROG_ARRAY(h2_walk_up_progs, 1);  // uprobes (the decrypting TLS probes)

// One read or write of one direction of an HTTP/2 connection, from offset pos of buf (or of
// the call's first iovec), noted in the per-CPU walk slot for the walk programs (open: the
// connection begins here). No map of the connection is read: the walk program does that.
static __always_inline void h2_io(struct conn_key *key, u64 buf, long n, u8 dir, u32 pos, struct h2_iov *v,
                                  u8 open, u32 tgid, u32 gen, u64 *seed) {
    int zero = 0;
    struct h2_walk *w = h2_walks.lookup(&zero);
    if (!w)
        return;
    if (w->pending)
        count_lost(LOST_H2_SYNC);  // an entry point that never walked what it set up
    w->key = *key;
    w->dir = dir;
    w->buf = buf;
    w->n = n;  // the first iovec's part, as on_read/on_write were given it
    w->pos = pos;
    w->iov = v->iov;
    w->chunk = 0;
    w->chunks = v->cnt > 1 ? v->cnt : 1;
    w->total = v->total > (u64)n ? v->total - n : 0;
    w->iovc[0][0] = v->next[0];  // iovec 1, read with iovec 0
    w->iovc[0][1] = v->next[1];
    w->iovc_at = 1;
    w->iovc_n = v->cnt > 1;
    w->tails = 0;
    w->open = open;
    w->tgid = tgid;
    w->gen = gen;
    w->ts = 0;  // taken at the call's first event (h2_ts)
    w->win_start = buf;
    w->win_len = 0;
    if (seed) {  // on_read's first bytes of the buffer: the window's first content
        __builtin_memcpy(w->win, seed, REQ_WORDS * 8);
        w->win_len = n < REQ_WORDS * 8 ? n : REQ_WORDS * 8;
    }
    w->pending = 1;
}

// The request a 101 to h2c answered (H2_OPEN_UPGRADE), as stream 1's (H2_EV_UPGRADE: its
// method in flags, its path in data, its start as the time): HTTP/2 answers it on stream 1.
static __always_inline void h2_upgraded(struct h2_walk *w) {
    red_count(COUNT_HASH);
    struct conn *c = conns.lookup(&w->key);
    if (!c || !c->method)
        return;
    red_count(COUNT_RESERVE);
    struct h2_small *e = h2_events.ringbuf_reserve(sizeof(struct h2_small));
    if (!e) {
        count_lost(LOST_H2_EVENTS);
        c->method = 0;
        return;
    }
    u8 words = c->path_words;
    struct h2_head h = {.conn = w->key.ptr, .key_tgid = w->key.tgid, .kind = w->key.kind, .ts = c->start_ns,
                        .tgid = w->tgid, .gen = w->gen, .stream = 1, .type = H2_EV_UPGRADE,
                        .flags = c->method, .missed = c->truncated, .last = 1, .len = words * 8};
    e->h = h;
    u64 *dst = (u64 *)e->data, *src = (u64 *)c->path;
#pragma unroll
    for (int i = 0; i < PATH_LEN / 8; i++)
        dst[i] = i < words ? src[i] : 0;
    h2_events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    c->method = 0;  // no longer waiting as HTTP/1
}

// The connection becomes HTTP/2 (in the walk program, before its first frames are walked):
// its h2_conns entry, and the event that tells user space (flags: 1 when adopted mid-stream,
// its HPACK tables begun before the probe looked). The rest of a preface cut by the end of the
// read is skipped as a frame's payload would be; after a 101 to h2c, the whole preface is.
static __always_inline void h2_open(struct h2_walk *w) {
    struct h2_conn fresh = {.tgid = w->tgid, .gen = w->gen};
    u8 adopted = w->open == H2_OPEN_ADOPTED, upgrade = w->open == H2_OPEN_UPGRADE;
    w->open = H2_OPEN_NONE;
    struct conn_key k = h2_key(&w->key, H2_DIR_RESPONSE);
    red_count(COUNT_HASH);
    if (h2_conns.update(&k, &fresh)) {
        count_lost(LOST_H2_CONNS);
        return;
    }
    if (upgrade) {
        fresh.d.left = H2_PREFACE_LEN;
        fresh.d.type = H2_SKIP;
    } else if (!adopted && w->n < H2_PREFACE_LEN) {
        fresh.d.left = H2_PREFACE_LEN - w->n;
        fresh.d.type = H2_SKIP;
    }
    k = h2_key(&w->key, H2_DIR_REQUEST);
    red_count(COUNT_HASH);
    if (h2_conns.update(&k, &fresh)) {
        h2_forget(&w->key);
        count_lost(LOST_H2_CONNS);
        return;
    }
    h2_emit(w, w->tgid, w->gen, 0, H2_EV_OPEN, adopted, 0, 0, 0, 1, 0, 0);
    if (upgrade)
        h2_upgraded(w);
}

// The walk cannot go on: the connection's frame boundaries are lost, and its open streams.
static __always_inline void h2_lose(struct h2_walk *w, struct h2_conn *h, struct h2_dir *d) {
    h2_done(w);
    count_lost(LOST_H2_SYNC);
    h2_emit(w, h->tgid, h->gen, ++d->seq, H2_EV_DESYNC, 0, 0, 0, 0, 1, 0, 0);
    h2_forget(&w->key);
}

static __always_inline void h2_walk_again(void *ctx, int uprobe) {
    red_count(COUNT_TAIL);
    if (uprobe)
        h2_walk_up_progs.call(ctx, 0);
    else
        h2_walk_tp_progs.call(ctx, 0);
}

// H2_FRAMES steps of the pending walk on the direction's state in place; then the next
// program goes on (ctx: the caller's program type), or the walk is done.
static __always_inline int h2_walk_more(void *ctx, int uprobe) {
    int zero = 0;
    struct h2_walk *w = h2_walks.lookup(&zero);
    if (!w || !w->pending)
        return 0;
    if (w->open) {
        // the connection's opening, then its walk from a clean stack in the next program
        h2_open(w);
        h2_walk_again(ctx, uprobe);
        h2_done(w);
        count_lost(LOST_H2_SYNC);
        return 0;
    }
    struct conn_key k = h2_key(&w->key, w->dir);
    red_count(COUNT_HASH);
    struct h2_conn *h = h2_conns.lookup(&k);
    if (!h) {
        h2_done(w);  // lost (table full, frame boundaries): counted when it happened
        return 0;
    }
    struct h2_dir *d = &h->d;
#pragma clang loop unroll(disable)
    for (int i = 0; i < H2_FRAMES; i++) {
        if (h2_step(w, h, d)) {
            h2_done(w);
            return 0;
        }
    }
    if (++w->tails < H2_TAILS)
        h2_walk_again(ctx, uprobe);
    h2_lose(w, h, d);  // H2_TAILS programs were not enough, or the tail call failed
    return 0;
}

int h2_walk_tp(struct bpf_raw_tracepoint_args *ctx) { return h2_walk_more(ctx, 0); }
int h2_walk_up(struct pt_regs *ctx) { return h2_walk_more(ctx, 1); }

// Called by every entry program after on_read/on_write: the walk they set up, if any. A tail
// call that fails here (the prog array empty: not loaded as obs_tui/sources/red.py does) loses
// the connection, counted; no event says so, as the walk programs alone send them.
static __always_inline void h2_walk_tail(void *ctx, int uprobe) {
    int zero = 0;
    struct h2_walk *w = h2_walks.lookup(&zero);
    if (!w || !w->pending)
        return;
#ifdef RED_H2_NO_WALK
    h2_done(w);  // bench/red_prog_cost.py -D RED_H2_NO_WALK: the entry programs' share alone
    return;
#endif
    h2_walk_again(ctx, uprobe);
    h2_done(w);
    count_lost(LOST_H2_SYNC);
    h2_forget(&w->key);
}

// Whether the first bytes read from a connection the probe has not seen are a client's
// HEADERS frame (a connection opened before the probe attached): a whole frame of sane length
// with no flags but END_STREAM and END_HEADERS, an odd (client) stream, and a block that
// begins as a request's does: with a pseudo-header of the static table's :authority, :method,
// :path or :scheme (indices 1..7), indexed or as a literal's name, or with an entry of the
// dynamic table (index 62 on), where a busy client's block begins once every field of it is
// indexed (grpc-core's do). A response's block begins with the static table's :status
// (8..14), so a server acting as an HTTP/2 client (a proxy reading its upstream) does not take
// those responses for requests.
static __always_inline int h2_adoptable(u64 *req, long n) {
    u8 *p = (u8 *)req;
    u32 len = ((u32)p[0] << 16) | ((u32)p[1] << 8) | p[2];
    if (p[3] != H2_HEADERS || len == 0 || len > 16384 || 9 + (long)len > n)
        return 0;
    if (p[4] & ~0x05)
        return 0;  // PADDED or PRIORITY: byte 9 is not the block's
    if (!(p[8] & 1) || (p[5] & 0x80))
        return 0;
    u8 b = p[9], idx = 0;
    if (b & 0x80)
        idx = b & 0x7f;  // indexed field (127: 127 on)
    else if ((b & 0xc0) == 0x40)
        idx = b & 0x3f;  // literal with incremental indexing, indexed name (63: 63 on)
    else if ((b & 0xe0) == 0 && (b & 0x0f) != 0x0f)
        idx = b & 0x0f;  // literal without indexing or never indexed, indexed name
    return (idx >= 1 && idx <= 7) || idx >= 62;
}

// A server read that names no HTTP/1 method, on an HTTP/2 connection or one that becomes
// HTTP/2 now (its preface, or adopted at a request's HEADERS frame): its bytes go to the walk
// (h2_io). Returns 0 when they do, -1 for anything else (HTTP/1 goes on as before).
static __always_inline int h2_start(u32 tgid, struct conn_key *key, u64 buf, long n, u64 *req, u32 undecoded,
                                    struct h2_iov *v) {
    u8 open = H2_OPEN_NONE;
    struct conn *c;
    if (undecoded == UNDECODED_HTTP2) {
        struct conn_key k = h2_key(key, H2_DIR_REQUEST);
        red_count(COUNT_HASH);
        struct h2_conn *h = h2_conns.lookup(&k);
        if (h && h->d.type == H2_SKIP && h->d.left == H2_PREFACE_LEN) {
            // the client's preface after an h2c upgrade (H2_OPEN_UPGRADE): the walk skips it
            h2_io(key, buf, n, H2_DIR_REQUEST, 0, v, H2_OPEN_NONE, 0, 0, req);
            return 0;
        }
        open = H2_OPEN_PREFACE;
    } else if (undecoded) {
        return -1;
    } else {
        red_count(COUNT_HASH);
        c = conns.lookup(key);
        if (c) {
            if (!c->h2)
                return -1;
            h2_io(key, buf, n, H2_DIR_REQUEST, 0, v, H2_OPEN_NONE, 0, 0, req);
            return 0;
        }
        if (!h2_adoptable(req, n))
            return -1;
        open = H2_OPEN_ADOPTED;
    }
    c = conn_of(tgid, key);
    if (!c)
        return -1;
    c->h2 = 1;
    c->method = 0;
    c->partial_ns = 0;
    u32 pos = open == H2_OPEN_PREFACE ? (n < H2_PREFACE_LEN ? n : H2_PREFACE_LEN) : 0;
    h2_io(key, buf, n, H2_DIR_REQUEST, pos, v, open, tgid, c->gen, req);
    return 0;
}

static __always_inline void h2_close(struct conn_key *key) {
    struct conn_key k = h2_key(key, H2_DIR_REQUEST);
    red_count(COUNT_HASH);
    struct h2_conn *h = h2_conns.lookup(&k);
    if (!h)
        return;
    int zero = 0;
    struct h2_walk *w = h2_walks.lookup(&zero);
    if (w) {
        // the slot's key, dir and ts are this event's: a walk pending in it was walked
        // already (h2_walk_tail runs before any close of the same entry program)
        w->key = *key;
        w->dir = H2_DIR_REQUEST;
        w->ts = bpf_ktime_get_ns();
        h2_emit(w, h->tgid, h->gen, 0, H2_EV_CLOSE, 0, 0, 0, 0, 1, 0, 0);
    }
    h2_forget(key);
}

// HTTP/1.1's upgrade to h2c (RFC 7540, 3.2): a request answered "101 Switching Protocols"
// with "Upgrade: h2c" is answered again on HTTP/2 stream 1, and the client's preface follows.
// The connection becomes HTTP/2 at that write (on_write), its HPACK tables new (trusted),
// expecting the preface (h2_open, H2_OPEN_UPGRADE); the request's method, path and start go
// to user space as stream 1's request (h2_upgraded), so it is counted once, over HTTP/2, with
// the status stream 1 gets. The 101's header is looked at in its first H2_UPGRADE_SCAN bytes
// (a WebSocket 101 has no "h2c"); returns where the HTTP/2 frames begin in the buffer (after
// its blank line, or the buffer's end when that is not among those bytes: then from the next
// write), or -1 for a 101 to anything else.
#define H2_UPGRADE_SCAN 256
#define H2_CRLFCRLF 0x0a0d0a0dU
#define H2_H2C_CR 0x0d633268U  // "h2c\r"
static __always_inline long h2_upgrade(u64 buf, long n) {
    long end = n;
    int h2c = 0;
    for (int i = 0; i < H2_UPGRADE_SCAN && i + 4 <= n; i++) {
        u32 word = 0;
        if (read_user(&word, sizeof(word), (void *)(buf + i)))
            break;
        h2c |= word == H2_H2C_CR;
        if (word == H2_CRLFCRLF) {
            end = i + 4;
            break;
        }
    }
    return h2c ? end : -1;
}

// ---- HTTP/1 and the hooks into HTTP/2 ----

// Bytes a server read: a request begins if they start with a method. A connection not yet
// known (accepted before the probe attached, or an SSL* that no accept names) is tracked from
// its first request.
//
// A read that may begin a request but names no method the probe knows (shorter than 8
// bytes: a request line sent a few bytes at a time; or starting with a capital letter: an
// unknown method) marks the connection, so the response that follows is counted, as a
// request not parsed, from that read (on_write). Body reads rarely start with a capital
// letter, and those that do cost one lookup. A request pipelined behind another in the same
// read has no read of its own: its response comes with no request waiting, and its latency is
// from the read that brought both.
static __always_inline void on_read(u32 tgid, struct conn_key *key, u64 buf, long n, struct h2_iov *v) {
    if (!is_armed())
        return;
    // Zeroed: bytes past the read's end must read as NUL, an end of path.
    u64 req[REQ_WORDS] = {};
    u32 len = n > sizeof(req) ? sizeof(req) : (u32)n;
    if (len > sizeof(req) || read_user(req, len, (void *)buf))
        return;
    u32 off = 0;
    // a request line is at least "GET / HTTP/1.0\r\n"; a shorter read is part of one
    int method = n >= 8 ? parse_method(req[0], &off) : 0;
    if (!method) {
        // header continuation, body, TLS records: not the start of a request; but the first
        // bytes of a connection the probe cannot decode are counted, never missed in silence
        u32 kind = n >= 8 ? undecoded_kind(req[0], key->kind) : 0;
        if (h2_start(tgid, key, buf, n, req, kind, v) == 0) {
            // HTTP/2: walked by the entry program's tail call (h2_walk_tail)
        } else if (kind) {
            count_undecoded(tgid, kind);
        } else if ((u8)((u8)req[0] - 'A') < 26 && (req[0] & 0xffffffffffULL) != HTTP_SLASH) {
            // a capital letter, but not a response read by a server acting as a client
            struct conn *c = conn_of(tgid, key);
            if (c && !c->method && !c->partial_ns) {
                c->partial_ns = bpf_ktime_get_ns();
                c->tgid = tgid;
            }
        }
        return;
    }
    struct conn *c = conn_of(tgid, key);
    if (!c)
        return;
    if (c->h2) {  // a frame's payload that happens to begin like a request line
        h2_io(key, buf, n, H2_DIR_REQUEST, 0, v, H2_OPEN_NONE, 0, 0, req);
        return;
    }
    if (c->method)
        count_lost(LOST_UNMATCHED);
    c->start_ns = bpf_ktime_get_ns();
    c->partial_ns = 0;
    c->tgid = tgid;
    c->closing = 0;  // a closing entry whose socket address came back with a new connection
    c->method = method;
    take_path(c, req, off, n - off);
}

// The status of a response's first bytes ("HTTP/1.x NNN"), or 0.
static __always_inline u16 response_status(u64 buf) {
    char head[12] = {};
    if (read_user(head, sizeof(head), (void *)buf))
        return 0;
    if (head[0] != 'H' || head[1] != 'T' || head[2] != 'T' || head[3] != 'P' || head[4] != '/' ||
        head[5] != '1' || head[6] != '.' || head[8] != ' ')
        return 0;
    u16 status = 0;
#pragma unroll
    for (int i = 9; i < 12; i++) {
        if (head[i] < '0' || head[i] > '9')
            return 0;
        status = status * 10 + (head[i] - '0');
    }
    return status;
}

// Bytes a server wrote (n <= 0: the write failed): "HTTP/1.x NNN" ends the waiting request.
// One call of record (and of response_status) whichever way the response is counted: every
// entry program that writes inlines on_write, so each call site is compiled once per program.
static __always_inline void on_write(struct conn_key *key, u64 buf, long n, struct h2_iov *v) {
    red_count(COUNT_HASH);
    struct conn *c = conns.lookup(key);
    if (c && c->h2) {
        if (n > 0)
            h2_io(key, buf, n, H2_DIR_RESPONSE, 0, v, H2_OPEN_NONE, 0, 0, 0);
        return;
    }
    u16 status = n >= 12 ? response_status(buf) : 0;
    if (!c || !c->method) {
        // Body bytes, or a response with no parsed request waiting (see on_read): counted as a
        // request not parsed when a read that began it was seen, as lost otherwise. Never
        // silent. Costs one 12-byte read on the writes that take this branch.
        if (status < 200 || !is_armed())
            return;
        u64 start = c ? (c->partial_ns ? c->partial_ns : c->start_ns) : 0;
        if (!start) {
            count_lost(LOST_UNPARSED);
            return;
        }
        c->method = METHOD_UNPARSED;
        c->path_hash = UNPARSED_HASH;
        c->path_words = 0;
        c->truncated = 0;
        c->start_ns = start;  // the next pipelined response's request came in the same read
        c->partial_ns = 0;
    } else if (status < 200) {  // 1xx is interim (100 Continue): the final response follows
        if (status == 101) {
            long at = h2_upgrade(buf, n);
            if (at >= 0) {
                // HTTP/2 from here; the waiting request stays in c for the walk (h2_upgraded)
                c->h2 = 1;
                c->partial_ns = 0;
                h2_io(key, buf, n, H2_DIR_RESPONSE, at, v, H2_OPEN_UPGRADE, c->tgid, c->gen, 0);
                return;
            }
        }
        if (!c->closing)
            return;
        status = 0;  // the write that closed the connection was no response
    }
    record(c, status, bpf_ktime_get_ns());
    c->method = 0;
    if (c->closing)
        conns.delete(key);
}

// The connection ended, or its server closed it: a request still waiting for its response is
// counted as closed before it (status 0). `forget` drops the entry (the socket is gone).
static __always_inline void on_close(struct conn_key *key, int forget) {
    red_count(COUNT_HASH);
    struct conn *c = conns.lookup(key);
    if (!c)
        return;  // most sockets: not a server's connection that carried a request
    if (c->h2 && forget)
        h2_close(key);
    if (c->method) {
        record(c, 0, bpf_ktime_get_ns());
        c->method = 0;
    }
    if (forget)
        conns.delete(key);
}

static __always_inline void note_listener(u32 tgid) {
    u32 one = 1;
    listeners.update(&tgid, &one);
}

static __always_inline void mark_server(u32 tgid) {
    u32 word = tgid >> 6;
    u64 *bits = servers.lookup(&word);
    if (bits && !(*bits & (1ULL << (tgid & 63))))
        __sync_fetch_and_or(bits, 1ULL << (tgid & 63));
}

// ---- plain sockets: the socket layer's tracepoints ----
//
// sock_recv_length / sock_send_length fire inside sock_recvmsg / sock_sendmsg, for socket I/O
// only, whatever the syscall. Syscall tracepoints would do, but enabling any one of them puts
// every syscall of every process on the host through the tracepoint slow path; these cost
// nothing outside socket I/O. They are attached raw (no perf record is built per event).
// The user buffer is not among their arguments: it is read from the syscall's arguments in
// the task's saved user registers (bpf_task_pt_regs), and the syscall number says their shape.

#define ARG_PLAIN 0  // (fd, buf, len, ...): read write recvfrom sendto
#define ARG_IOV 1    // (fd, const struct iovec *, cnt): readv writev
#define ARG_MSG 2    // (fd, struct msghdr *, flags): recvmsg sendmsg

// x86-64 syscall numbers
#define NR_READ 0
#define NR_WRITE 1
#define NR_READV 19
#define NR_WRITEV 20
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47
#define NR_SENDFILE 40

// The current task's saved user registers: the syscall's number (orig_ax) and arguments.
// bpf_task_pt_regs returns a BTF pointer: loads through it are plain (fault-safe) loads the
// verifier allows, cheaper per call than a bpf_probe_read_kernel of the same bytes.
static __always_inline struct pt_regs *user_regs(void) {
    struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
    return (struct pt_regs *)bpf_task_pt_regs(task);
}

static __always_inline int sock_io(void *ctx, u64 sk, long ret, int is_write) {
#ifdef RED_EMPTY
    return 0;  // bench/red_prog_cost.py -D RED_EMPTY: the tracepoints' and bpf_stats' own cost
#endif
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!is_server(tgid))
        return 0;
    struct h2_iov v = {};
    if (ret <= 0) {
        if (is_write) {  // a failed send may have been the one that closed the socket
            struct conn_key key = {.ptr = sk, .tgid = 0, .kind = KIND_SOCK};
            on_write(&key, 0, 0, &v);
        }
        return 0;
    }
    struct pt_regs *regs = user_regs();
    u64 nr = regs->orig_ax;
    u64 arg1 = regs->si;
    int kind;
    if (nr == NR_READ || nr == NR_RECVFROM || nr == NR_WRITE || nr == NR_SENDTO)
        kind = ARG_PLAIN;
    else if (nr == NR_READV || nr == NR_WRITEV)
        kind = ARG_IOV;
    else if (nr == NR_RECVMSG || nr == NR_SENDMSG)
        kind = ARG_MSG;
    else
        return 0;  // sendfile/splice carry bodies; recvmmsg, io_uring: not parsed
    u64 buf = arg1;
    long n = ret;
    if (kind != ARG_PLAIN) {
        u64 vec[2] = {arg1, regs->dx};  // the iovecs and their count
        if (kind == ARG_MSG && read_user(vec, sizeof(vec), (void *)(arg1 + 16)))
            return 0;  // msghdr.msg_iov and msg_iovlen, side by side
        // the first two iovecs in one read (an HTTP/2 frame's header and payload, often);
        // the first alone when the second is not there
        u64 iov[4] = {};
        if (vec[1] < 2 || read_user(iov, sizeof(iov), (void *)vec[0])) {
            if (read_user(iov, 16, (void *)vec[0]))
                return 0;
            vec[1] = 1;
        }
        v.iov = vec[0];
        v.cnt = vec[1];
        v.total = ret;
        v.next[0] = iov[2];
        v.next[1] = iov[3];
        buf = iov[0];
        if ((long)iov[1] < n)
            n = iov[1];  // only the first iovec is parsed
    }
#ifdef RED_LOCATE_ONLY
    return buf == 0;  // bench/red_overhead.py --floor locate: stop once the buffer is found
#endif
    struct conn_key key = {.ptr = sk, .tgid = 0, .kind = KIND_SOCK};
    if (is_write)
        on_write(&key, buf, n, &v);
    else
        // (a server reading a file that starts with "GET /" would be counted as a request too:
        // accepted, as Beyla's protocol detection accepts it)
        on_read(tgid, &key, buf, n, &v);
    h2_walk_tail(ctx, 0);
    return 0;
}

// TP_PROTO(struct sock *sk, int ret, int flags)
RAW_TRACEPOINT_PROBE(sock_recv_length) {
    if ((int)ctx->args[2] & MSG_PEEK)
        return 0;  // the same bytes come again
    return sock_io(ctx, ctx->args[0], (int)ctx->args[1], 0);
}

RAW_TRACEPOINT_PROBE(sock_send_length) { return sock_io(ctx, ctx->args[0], (int)ctx->args[1], 1); }

static __always_inline int is_send(u64 nr) {
    return nr == NR_WRITE || nr == NR_WRITEV || nr == NR_SENDTO || nr == NR_SENDMSG || nr == NR_SENDFILE;
}

// TP_PROTO(const struct sock *sk, const int oldstate, const int newstate). listen() runs in
// the listening process: it becomes a server. A server-side close (FIN_WAIT1, or LAST_ACK
// after the client's FIN) with a request pending is a request closed before its response;
// TCP_CLOSE is every full socket's last state (timewait included), so its entry goes.
//
// One exception. On loopback a segment is delivered inside the sender's syscall: a response
// written to a client that already closed draws the client's RST, and the socket reaches
// TCP_CLOSE before sock_send_length fires for that very response. So a TCP_CLOSE that
// happens inside the owner's own send only marks the connection closing; on_write settles it.
RAW_TRACEPOINT_PROBE(inet_sock_set_state) {
    int state = (int)ctx->args[2];
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (state == TCP_LISTEN) {
        mark_server(tgid);
        note_listener(tgid);
        return 0;
    }
    if (state != TCP_FIN_WAIT1 && state != TCP_LAST_ACK && state != TCP_CLOSE)
        return 0;
    struct conn_key key = {.ptr = ctx->args[0], .tgid = 0, .kind = KIND_SOCK};
    red_count(COUNT_HASH);
    struct conn *c = conns.lookup(&key);
    if (!c)
        return 0;  // most sockets: no request was ever seen on them
    if (state == TCP_CLOSE && c->method && c->tgid == tgid) {
        if (is_send(user_regs()->orig_ax)) {
            c->closing = 1;
            return 0;
        }
    }
    on_close(&key, state == TCP_CLOSE);
    return 0;
}

// Pre-forking servers (nginx, gunicorn, php-fpm) listen, then fork the workers that serve:
// a server's children are servers. The classic tracepoint names the child by pid; for a new
// thread that is a thread id, whose bit is then set needlessly (a cost, never a miscount).
//
// A server that forks one child per connection (Python's ForkingMixIn, inetd-style) has its
// requests read and answered by children that exit at once: `forks` remembers each child's
// parent so user space can count them under the server (sources/red.py, _owner). A thread's
// entry is made too (this tracepoint cannot tell) and removed at its exit.
TRACEPOINT_PROBE(sched, sched_process_fork) {
    u32 parent = bpf_get_current_pid_tgid() >> 32;
    if (is_server(parent)) {
        u32 child = args->child_pid;
        mark_server(child);
        forks.update(&child, &parent);
    }
    return 0;
}

// A server process exits: the next process given its pid is another service. Its bit is
// cleared (it becomes a server again by listening, or by a server's fork) and its generation
// moves on. A server's thread exiting clears the bit its creation set (sched_process_fork).
// Runs for every thread exit on the host; all but servers' return after one array load.
TRACEPOINT_PROBE(sched, sched_process_exit) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, pid = (u32)id;
    if (!is_server(pid))
        return 0;
    u32 word = pid >> 6;
    u64 *bits = servers.lookup(&word);
    if (bits)
        __sync_fetch_and_and(bits, ~(1ULL << (pid & 63)));
    if (pid != tgid) {
        forks.delete(&pid);
        return 0;
    }
    bits = ssl_users.lookup(&word);  // the next process on this pid may use another TLS
    if (bits && (*bits & (1ULL << (pid & 63))))
        __sync_fetch_and_and(bits, ~(1ULL << (pid & 63)));
    u32 one = 1;
    u32 *g = generations.lookup(&tgid);
    if (g)
        __sync_fetch_and_add(g, 1);
    else if (generations.update(&tgid, &one))
        count_lost(LOST_STATS);
    return 0;
}

// ---- HTTPS through OpenSSL: uprobes on libssl.so.3 ----
//
// The same programs serve every ELF object that exports OpenSSL's or BoringSSL's SSL_read and
// SSL_write: Node's binary, which bundles its own OpenSSL, or a server's own copy of libssl
// (sources/tls_uprobes.py finds them in the servers' memory maps).

// A decrypted read or write, or an SSL's end, is handled by one program, tls_io, which every
// TLS uprobe reaches by a tail call with the call noted in a per-CPU slot: on_read, on_write
// and on_close are then compiled and verified once for all the TLS probes (OpenSSL's and Go's)
// instead of once in each of them. That tail call counts against the kernel's 33 with the
// walk's H2_TAILS (32): 33 in all, the kernel's limit (a walk cut there is lost, counted).
#define TLS_READ 0
#define TLS_WRITE 1
#define TLS_CLOSE 2

struct tls_call {
    struct conn_key key;
    u64 buf;
    long n;
    u32 tgid;
    u32 op;  // TLS_*
};

BPF_PERCPU_ARRAY(tls_calls, struct tls_call, 1);
BPF_PROG_ARRAY(tls_io_progs, 1);  // tls_io, put there by obs_tui/sources/red.py

static __always_inline void tls_note(struct pt_regs *ctx, struct conn_key *key, u64 buf, long n, u32 op) {
    int zero = 0;
    struct tls_call *t = tls_calls.lookup(&zero);
    if (!t)
        return;
    t->key = *key;
    t->buf = buf;
    t->n = n;
    t->tgid = key->tgid;
    t->op = op;
    red_count(COUNT_TAIL);
    tls_io_progs.call(ctx, 0);
    count_lost(LOST_SSL_ARGS);  // the tail call failed: tls_io not loaded as red.py does
}

int tls_io(struct pt_regs *ctx) {
    int zero = 0;
    struct tls_call *t = tls_calls.lookup(&zero);
    if (!t)
        return 0;
    struct conn_key key = t->key;
    struct h2_iov single = {};
    if (t->op == TLS_CLOSE) {
        on_close(&key, 1);
        return 0;
    }
    if (t->op == TLS_WRITE)
        on_write(&key, t->buf, t->n, &single);
    else
        on_read(t->tgid, &key, t->buf, t->n, &single);
    h2_walk_tail(ctx, 1);  // an HTTP/2 connection's frames are walked after on_read/on_write
    return 0;
}

// The process's TLS goes through traced code: the ClientHellos the socket probe counted for it
// are not undecoded (user space sets them aside). Servers only: a server's exit clears its bit
// (sched_process_exit), so a pid reused by another program never inherits it.
static __always_inline void mark_ssl_user(u32 tgid) {
    u32 word = tgid >> 6;
    u64 *bits = ssl_users.lookup(&word);
    if (bits && !(*bits & (1ULL << (tgid & 63))) && is_server(tgid))
        __sync_fetch_and_or(bits, 1ULL << (tgid & 63));
}

static __always_inline int ssl_enter(struct pt_regs *ctx, u64 nbytes_ptr) {
    u64 id = bpf_get_current_pid_tgid();
    mark_ssl_user(id >> 32);
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
    // SSL_read/SSL_write and the _ex forms return an int: only eax is set, so a -1 (want
    // read, error) is 0xffffffff in the 64-bit register, a read of 4 GB if taken as long
    long ret = (int)PT_REGS_RC(ctx);
    long n = ret;
    if (args.nbytes_ptr) {
        if ((int)ret != 1)
            return 0;  // the _ex forms return 1 on success and the count through a pointer
        u64 got = 0;
        if (read_user(&got, sizeof(got), (void *)args.nbytes_ptr))
            return 0;
        n = got;
    }
    if (n <= 0)
        return 0;
    u32 tgid = id >> 32;
    struct conn_key key = {.ptr = args.ssl, .tgid = tgid, .kind = KIND_SSL};
    tls_note(ctx, &key, args.buf, n, is_write ? TLS_WRITE : TLS_READ);
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
    struct conn_key key = {.ptr = PT_REGS_PARM1(ctx), .tgid = tgid, .kind = KIND_SSL};
    tls_note(ctx, &key, 0, 0, TLS_CLOSE);
    return 0;
}

// ---- HTTPS through Go's crypto/tls: uprobes at the entry and at every RET ----
//
// (*tls.Conn).Read and Write, found in the binary's symbol table, each RET found by
// disassembling them (sources/tls_targets.py). Never uretprobes: they rewrite the return
// address on the stack, which Go moves and inspects (golang/go#22008), and crash the program.
// Go 1.17+ register ABI on amd64: at entry the receiver (*tls.Conn) is in RAX, the buffer's
// pointer in RBX and its length in RCX; at a RET, n is in RAX. R14 always holds the running
// goroutine (g): a goroutine may move to another thread between entry and return, so the
// entry's arguments wait keyed by g, not by thread. The *tls.Conn names the connection, as an
// SSL * does (KIND_SSL), and its Close ends it, as SSL_free does. Clients skip it all.

struct go_stash_key {
    u64 g;
    u32 tgid;
    u32 pad;
};

// A goroutine waiting in Read for the next request on a keep-alive connection holds its entry
// until the request comes: one per idle connection.
BPF_HASH(go_tls_stash, struct go_stash_key, struct ssl_args, 65536);
// net/http reads one byte in the background while a handler runs (to notice a client going
// away): when the next request arrives then, its first byte comes alone, and the rest in the
// next Read, into the bufio buffer just after that byte. The byte waits here, per connection,
// and the next Read is parsed from one byte before its buffer when that byte is there and
// they begin a request line together. Every read still goes to on_read as it came, so a
// decoder of other protocols sees each byte once.
BPF_TABLE("lru_hash", struct conn_key, u8, go_tls_lone_byte, 16384);

static __always_inline int go_tls_enter(struct pt_regs *ctx) {
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!is_server(tgid))
        return 0;
    mark_ssl_user(tgid);
    struct go_stash_key k = {.g = ctx->r14, .tgid = tgid};
    struct ssl_args a = {.ssl = ctx->ax, .buf = ctx->bx};
    // a stack growth re-runs the entry of the same call: the same key, overwritten
    if (go_tls_stash.update(&k, &a))
        count_lost(LOST_SSL_ARGS);
    return 0;
}

// A Read's bytes, with net/http's lone background byte joined back (go_tls_lone_byte).
static __always_inline void go_tls_on_read(struct pt_regs *ctx, struct conn_key *key, u64 buf, long n) {
    if (n == 1) {
        u8 first = 0;
        if (!read_user(&first, 1, (void *)buf))
            go_tls_lone_byte.update(key, &first);
    } else {
        u8 *lone = go_tls_lone_byte.lookup(key);
        if (lone) {
            u64 joined = 0;
            u32 off = 0;
            u8 want = *lone;
            go_tls_lone_byte.delete(key);
            if (n >= 7 && !read_user(&joined, sizeof(joined), (void *)(buf - 1)) &&
                (u8)joined == want && parse_method(joined, &off)) {
                buf -= 1;
                n += 1;
            }
        }
    }
    tls_note(ctx, key, buf, n, TLS_READ);
}

static __always_inline int go_tls_return(struct pt_regs *ctx, int is_write) {
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    struct go_stash_key k = {.g = ctx->r14, .tgid = tgid};
    struct ssl_args *a = go_tls_stash.lookup(&k);
    if (!a)
        return 0;  // entered before the probe attached, or not a server
    struct ssl_args args = *a;
    go_tls_stash.delete(&k);
    long n = (long)ctx->ax;
    if (n <= 0)
        return 0;
    struct conn_key key = {.ptr = args.ssl, .tgid = tgid, .kind = KIND_SSL};
    if (is_write)
        tls_note(ctx, &key, args.buf, n, TLS_WRITE);
    else
        go_tls_on_read(ctx, &key, args.buf, n);
    return 0;
}

int go_tls_read_enter(struct pt_regs *ctx) { return go_tls_enter(ctx); }
int go_tls_write_enter(struct pt_regs *ctx) { return go_tls_enter(ctx); }
int go_tls_read_return(struct pt_regs *ctx) { return go_tls_return(ctx, 0); }
int go_tls_write_return(struct pt_regs *ctx) { return go_tls_return(ctx, 1); }

int go_tls_close_enter(struct pt_regs *ctx) {
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!is_server(tgid))
        return 0;
    struct conn_key key = {.ptr = ctx->ax, .tgid = tgid, .kind = KIND_SSL};
    go_tls_lone_byte.delete(&key);
    tls_note(ctx, &key, 0, 0, TLS_CLOSE);
    return 0;
}
