from obs_tui import config


def test_defaults_match_the_documented_contract():
    c = config.parse("")
    assert c.interval == 1.0 and c.theme == "dark"
    assert c.power["powercap_root"] == "/sys/class/powercap"
    assert c.red["max_children"] == 10
    # not set is not a value: the region, the cloud's PUE and the labelled default show through
    assert "pue" not in c.carbon and "grid_g_per_kwh" not in c.carbon and c.carbon["region"] == ""
    assert c.prometheus["timeout_s"] == 5


def test_full_design_example_parses():
    text = '''
interval = 1.0
theme = "dark"
slo_files = ["/etc/obs-tui/slos/*.yaml"]
[prometheus]
url = "http://127.0.0.1:9090"
bearer_token_file = "/etc/obs-tui/token"
ca_file = ""
timeout_s = 5
[power]
powercap_root = "/sys/class/powercap"
[carbon]
grid_g_per_kwh = 400
pue = 1.0
[red]
routes = ["/users/{id}"]
[[slo]]
name = "checkout-availability"
objective = 0.999
period = "30d"
error_query = 'sum(rate(http_requests_total{job="checkout",code=~"5.."}[{{.window}}]))'
total_query = 'sum(rate(http_requests_total{job="checkout"}[{{.window}}]))'
'''
    c = config.parse(text, "/etc/obs-tui/config.toml")
    assert c.prometheus["url"] == "http://127.0.0.1:9090"
    assert c.red["routes"] == ["/users/{id}"]
    assert c.slo[0]["name"] == "checkout-availability" and c.slo[0]["objective"] == 0.999
    assert c.interval == 1.0 and isinstance(c.carbon["grid_g_per_kwh"], float)
