"""Route normalisation and the cardinality cap (Beyla's low-cardinality mode)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from obs_tui.analysis.routes import ANY, ID, is_id, normalise


def test_ids_become_id():
    routes = normalise(
        [
            "/users/42",
            "/orders/123e4567-e89b-12d3-a456-426614174000/items",
            "/blobs/9f86d081884c7d65",
            "/about",
            "/cafe/added",
        ]
    )
    assert routes["/users/42"] == "/users/{id}"
    assert routes["/orders/123e4567-e89b-12d3-a456-426614174000/items"] == "/orders/{id}/items"
    assert routes["/blobs/9f86d081884c7d65"] == "/blobs/{id}"
    assert routes["/about"] == "/about"
    assert routes["/cafe/added"] == "/cafe/added"  # hex-looking words stay words


def test_is_id():
    assert is_id("0") and is_id("0xdeadbeef") and is_id("a1b2c3d4")
    assert not is_id("v1") and not is_id("deadbeef") and not is_id("users") and not is_id("٣")


def test_cardinality_cap_collapses_a_crowded_level():
    paths = [f"/shop/item-{i}/reviews" for i in range(11)] + ["/shop", "/health"]
    routes = normalise(paths, max_children=10)
    assert {routes[p] for p in paths[:11]} == {"/shop/*/reviews"}
    assert routes["/health"] == "/health" and routes["/shop"] == "/shop"
    assert normalise(paths[:10], max_children=10)["/shop/item-3/reviews"] == "/shop/item-3/reviews"


def test_user_patterns_win_and_do_not_count_toward_the_cap():
    paths = [f"/users/u{i}" for i in range(30)] + [f"/users/u{i}/posts" for i in range(3)]
    routes = normalise(paths, patterns=["/users/{name}/posts", "/users/*"], max_children=2)
    assert routes["/users/u7"] == "/users/*"
    assert routes["/users/u1/posts"] == "/users/{name}/posts"


def test_query_fragment_scheme_and_junk():
    routes = normalise(["/a?token=secret", "/b#frag", "http://host:8080/c/12", "*", "", "/\x01x"])
    assert routes["/a?token=secret"] == "/a" and routes["/b#frag"] == "/b"
    assert routes["http://host:8080/c/12"] == "/c/{id}"
    assert routes["*"] == ANY and routes[""] == ANY
    assert routes["/\x01x"] == "/\ufffdx"


def test_truncated_paths_end_in_any():
    assert normalise(["/files/abcdefgh"], truncated=["/files/abcdefgh"])["/files/abcdefgh"] == "/files/*"


segment = st.one_of(
    st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, blacklist_characters="/?#"),
        min_size=1,
        max_size=12,
    ),
    st.integers(min_value=0, max_value=10**12).map(str),
    st.uuids().map(str),
)
path = st.lists(segment, max_size=6).map(lambda segs: "/" + "/".join(segs))


@settings(max_examples=200, deadline=None)
@given(st.lists(path, max_size=80), st.integers(min_value=1, max_value=12))
def test_every_level_is_capped(paths, max_children):
    routes = normalise(paths, max_children=max_children)
    assert set(routes) == set(paths)
    children: dict[tuple, set] = {}
    for route in set(routes.values()):
        segs = [s for s in route.split("/") if s]
        for depth in range(len(segs)):
            children.setdefault(tuple(segs[:depth]), set()).add(segs[depth])
    assert all(len(kids) <= max_children or kids == {ANY} for kids in children.values())
    assert all(r.startswith("/") and r.isprintable() for r in routes.values())


@settings(max_examples=200, deadline=None)
@given(st.lists(path, max_size=40))
def test_numeric_and_uuid_segments_never_survive(paths):
    for route in normalise(paths, max_children=1000).values():
        assert not any(is_id(s) for s in route.split("/") if s not in (ID, ANY))


@given(st.lists(path, max_size=30), st.permutations(range(5)))
def test_mapping_does_not_depend_on_order(paths, _):
    assert normalise(paths) == normalise(list(reversed(paths)))


# ---- properties over arbitrary input (paths are client-controlled bytes) -------------------

any_path = st.one_of(path, st.text(max_size=60), st.text(alphabet="/?#*{}:.% a1\x00\x7f\u2028", max_size=40))
patterns = st.lists(
    st.sampled_from(["/users/{id}", "/users/{name}/posts", "/a/*", "/static/*/x"]), max_size=3
)


@settings(max_examples=300, deadline=None)
@given(st.lists(any_path, max_size=60), patterns, st.integers(min_value=-3, max_value=12))
def test_never_raises_and_routes_are_printable_and_absolute(paths, pats, max_children):
    routes = normalise(paths, pats, max_children)
    assert set(routes) == set(paths)
    assert all(r == ANY or (r.startswith("/") and r.isprintable()) for r in routes.values())


@settings(max_examples=300, deadline=None)
@given(st.lists(any_path, max_size=60), patterns, st.integers(min_value=1, max_value=12))
def test_idempotent(paths, pats, max_children):
    """A route is its own route: normalising the routes again changes nothing (so a route
    shown, copied into [red] routes or an exporter label, means the same thing next time)."""
    routes = set(normalise(paths, pats, max_children).values())
    again = normalise(routes, pats, max_children)
    assert all(again[r] == r for r in routes)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=1, max_value=5000),
    st.integers(min_value=1, max_value=4),
)
def test_cardinality_is_bounded_whatever_the_number_of_paths(max_children, n, depth):
    """n distinct word-like paths (no ids to fold) of the same depth give at most
    max_children ** depth routes, and a single route once n exceeds the cap at every level."""
    paths = ["/" + "/".join(f"s{(i // (7**d)) % 7 if d else i}x" for d in range(depth)) for i in range(n)]
    routes = set(normalise(paths, max_children=max_children).values())
    assert len(routes) <= max_children**depth
    if n > max_children and depth == 1:
        assert routes == {"/*"}


@settings(max_examples=200, deadline=None)
@given(st.lists(path, max_size=40), st.lists(path, max_size=5))
def test_more_paths_never_split_a_route(paths, extra):
    """Adding paths can only merge routes (a crowded level collapses), never split one."""
    before = normalise(paths, max_children=5)
    after = normalise(paths + extra, max_children=5)
    groups: dict[str, set[str]] = {}
    for p in paths:
        groups.setdefault(before[p], set()).add(after[p])
    assert all(len(targets) == 1 for targets in groups.values())
