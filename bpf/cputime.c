// On-CPU time per process (tgid), from the sched:sched_switch tracepoint.
//
// Loaded by obs_tui/sources/cputime.py through bcc. This fires on every context switch of
// every CPU, so it does the least it can: one per-CPU array slot and one hash update.
//
// When sched_switch fires, the task still current on this CPU is `prev`: the time since this
// CPU last switched (`since`) was prev's, and is added to prev's tgid. The slot then records
// when and which thread (`next_pid`) was switched in, so user space can also count the time of
// a task that has been running since its last switch (a busy loop on an otherwise idle CPU
// may not be switched out for seconds): see EbpfCpuTime.read.
//
// Short-lived processes count: their time is added at every switch-out, including the last
// one, right after they exit. sched_process_exit marks a process's entry when its main thread
// exits (rare next to switches); user space reports a marked entry once more and deletes it,
// so a host that forks thousands of processes a second does not grow the map between reads.

struct since_t {
    u64 ns;   // bpf_ktime_get_ns() at the last switch on this CPU (0: not seen yet)
    u32 tid;  // the thread switched in then (0: the idle task)
};

BPF_PERCPU_ARRAY(since, struct since_t, 1);
struct total_t {
    u64 ns;
    char comm[16];  // the first thread seen: names a process that exited before user space looked
    u32 exited;     // its main thread has exited
};

BPF_HASH(cputime, u32, struct total_t, 32768);

TRACEPOINT_PROBE(sched, sched_switch) {
    u32 zero = 0;
    struct since_t *s = since.lookup(&zero);
    if (!s)
        return 0;
    u64 now = bpf_ktime_get_ns();
    u64 then = s->ns;
    s->ns = now;
    s->tid = args->next_pid;
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (then == 0 || tgid == 0)  // first switch seen on this CPU, or the idle task leaving
        return 0;
    struct total_t *total = cputime.lookup(&tgid);
    if (!total) {  // once per process: the hot path is the lookup and the add
        struct total_t init = {};
        bpf_get_current_comm(&init.comm, sizeof(init.comm));
        cputime.insert(&tgid, &init);  // BPF_NOEXIST: if another CPU raced us, its entry stays
        total = cputime.lookup(&tgid);
        if (!total)
            return 0;  // the map is full
    }
    __sync_fetch_and_add(&total->ns, now - then);  // its threads may run on several CPUs at once
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
    if ((u32)id != tgid)  // a thread other than the main one: the process lives on
        return 0;
    struct total_t *total = cputime.lookup(&tgid);
    if (total)
        total->exited = 1;
    return 0;
}
