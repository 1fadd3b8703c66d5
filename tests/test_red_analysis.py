"""prev/cur probe samples -> RedSection: windows, first tick, errors, aborted, lost."""

from obs_tui.analysis import histogram as h
from obs_tui.analysis.red import red_section
from obs_tui.raw import RedRaw, ServiceInfo, StatEntry, StatKey

INFO = {7: ServiceInfo("api", "api --port 80", (80,))}


def entry(count, ms):
    return StatEntry(count, int(count * ms * 1e6), ((h.bucket_of(int(ms * 1e6)), count),))


def raw(stats, lost=0):
    return RedRaw(lost_events=lost, stats=stats, services=INFO, patterns=("/u/{id}",))


def test_window_is_cur_minus_prev():
    prev = raw({StatKey(7, "GET", 200, "/u/1"): entry(10, 2.0)}, lost=1)
    cur = raw(
        {
            StatKey(7, "GET", 200, "/u/1"): entry(30, 2.0),
            StatKey(7, "GET", 503, "/u/2"): entry(5, 40.0),
            StatKey(7, "POST", 0, "/u/3"): entry(2, 1.0),
        },
        lost=4,
    )
    section = red_section(prev, cur, 5.0)
    (svc,) = section.services
    assert (svc.pid, svc.comm, svc.ports) == (7, "api", (80,))
    assert (svc.requests, svc.errors, svc.aborted) == (25, 5, 2)
    assert svc.rps == 5.0 and svc.error_ratio == 0.2
    assert dict(svc.status_classes) == {"2xx": 20, "5xx": 5}
    assert abs(svc.p50_ms - 2.0) < 0.2 and abs(svc.p99_ms - 40.0) < 3
    assert section.lost_events == 3 and section.lost_since_attach == 4
    routes = {(r.method, r.route): r for r in svc.routes}
    assert routes[("GET", "/u/{id}")].requests == 25 and routes[("POST", "/u/{id}")].aborted == 2


def test_first_tick_counts_since_attach_with_zero_rates():
    section = red_section(None, raw({StatKey(7, "GET", 200, "/"): entry(3, 1.0)}, lost=2), 0.0)
    assert section.services[0].requests == 3 and section.services[0].rps == 0.0
    assert section.lost_events == 2


def test_reset_counters_and_unknown_pids_do_not_break():
    prev = raw({StatKey(7, "GET", 200, "/"): entry(100, 1.0)}, lost=9)
    cur = RedRaw(
        lost_events=0,
        stats={StatKey(7, "GET", 200, "/"): entry(4, 1.0), StatKey(99, "?", 200, "\x00"): entry(1, 1.0)},
        services=INFO,
    )
    section = red_section(prev, cur, 1.0)
    by_pid = {s.pid: s for s in section.services}
    assert by_pid[7].requests == 4 and by_pid[99].comm == "?" and section.lost_events == 0


def test_routes_total_keep_quiet_routes_with_counts_since_attach():
    prev = raw(
        {StatKey(7, "GET", 200, "/u/1"): entry(10, 2.0), StatKey(7, "GET", 200, "/health"): entry(50, 0.5)}
    )
    cur = raw(
        {
            StatKey(7, "GET", 200, "/u/1"): entry(30, 2.0),
            StatKey(7, "GET", 500, "/u/2"): entry(4, 9.0),
            StatKey(7, "GET", 200, "/health"): entry(50, 0.5),
        }
    )  # quiet in this window
    (svc,) = red_section(prev, cur, 1.0).services
    window = {(r.method, r.route): r.requests for r in svc.routes}
    total = {(r.method, r.route): (r.requests, r.errors) for r in svc.routes_total}
    assert window == {("GET", "/u/{id}"): 24}
    assert total == {("GET", "/u/{id}"): (34, 4), ("GET", "/health"): (50, 0)}
    health = next(r for r in svc.routes_total if r.route == "/health")
    assert abs(health.p50_ms - 0.5) < 0.05


def test_unchanged_entry_object_is_an_empty_window_but_stays_in_totals():
    same = entry(12, 3.0)
    key = StatKey(7, "GET", 200, "/u/9")
    (svc,) = red_section(raw({key: same}), raw({key: same}), 1.0).services
    assert svc.requests == 0 and svc.routes == ()
    assert [(r.route, r.requests) for r in svc.routes_total] == [("/u/{id}", 12)]


# ---- counted or flagged: forked children, undecoded connections, unparsed requests ----------


def test_a_fork_per_connection_child_serves_for_its_server_a_named_worker_does_not():
    from obs_tui.raw import serves_for

    server = ServiceInfo("python3", "python3 app.py", (8080,))
    assert serves_for(None, server)  # gone before anyone looked: its server's
    assert serves_for(ServiceInfo("python3", "python3 app.py", (8080,)), server)
    master = ServiceInfo("nginx", "nginx: master process nginx", (80,))
    assert not serves_for(ServiceInfo("nginx", "nginx: worker process", (80,)), master)
    assert not serves_for(ServiceInfo("php", "php-cgi", ()), server)  # another program
    assert not serves_for(None, ServiceInfo("python3", "python3 app.py", ()))  # not listening


def test_entries_add_up_counts_sums_and_buckets():
    a, b = entry(3, 2.0), entry(2, 40.0)
    total = a + b
    assert (total.count, total.sum_ns) == (5, a.sum_ns + b.sum_ns)
    assert dict(total.hist) == {**dict(a.hist), **dict(b.hist)}
    assert (a + a).hist == ((a.hist[0][0], 6),)


def test_undecoded_connections_give_a_row_with_window_and_totals():
    from obs_tui.analysis.derived import undecoded_counts

    info = {**INFO, 8: ServiceInfo("app", "./app", (443,))}
    prev = RedRaw(0, {}, info, undecoded={(8, "tls"): 4})
    cur = RedRaw(
        0,
        {StatKey(7, "GET", 200, "/"): entry(2, 1.0)},
        info,
        undecoded={(8, "tls"): 10, (8, "http2"): 1, (7, "http2"): 2},
        undecoded_reasons={8: "/app: Go binary without a symbol table"},
    )
    by_pid = {s.pid: s for s in red_section(prev, cur, 1.0).services}
    node = by_pid[8]
    assert (node.comm, node.ports, node.requests) == ("app", (443,), 0)
    assert node.undecoded_reason == "/app: Go binary without a symbol table"
    assert by_pid[7].undecoded_reason == ""
    assert node.undecoded == (("http2", 1), ("tls", 6))
    assert node.undecoded_total == (("http2", 1), ("tls", 10))
    assert by_pid[7].undecoded == (("http2", 2),) and by_pid[7].requests == 2
    section = red_section(prev, cur, 1.0)
    assert {(u.service_name, u.kind): u.connections for u in undecoded_counts(section)} == {
        ("api", "http2"): 2,
        ("app", "http2"): 1,
        ("app", "tls"): 10,
    }


def test_unparsed_requests_have_their_own_route_and_semconv_method():
    from obs_tui.analysis.derived import http_series
    from obs_tui.analysis.red import UNPARSED_ROUTE
    from obs_tui.raw import UNPARSED_METHOD

    cur = raw(
        {
            StatKey(7, "GET", 200, "/u/1"): entry(1, 1.0),
            StatKey(7, UNPARSED_METHOD, 200, ""): entry(5, 3.0),
            StatKey(7, UNPARSED_METHOD, 502, ""): entry(1, 3.0),
        }
    )
    section = red_section(None, cur, 1.0)
    (svc,) = section.services
    assert (svc.requests, svc.errors, svc.paths) == (7, 1, 1)
    assert {(r.method, r.route): r.requests for r in svc.routes} == {
        ("GET", "/u/{id}"): 1,
        (UNPARSED_METHOD, UNPARSED_ROUTE): 6,
    }
    series = {s.labels: s for s in http_series(section)}
    assert series[("api", "7", "http", "_OTHER", UNPARSED_ROUTE, 200)].count == 5
