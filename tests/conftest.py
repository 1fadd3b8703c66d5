"""The RED probe as a fixture: one per module (`red`), or one per test (`fresh_red`); and the
markers (root, ebpf, prometheus, slow) that `make test-fast` leaves out, and `exclusive`.

A test is marked by what it uses: the probe fixtures, a skip-unless-root whose reason names
root or the probes, or its module's entry in MODULE_MARKS (modules that start Prometheus or
load probes through a subprocess). Tests may also carry the marks themselves.
"""

import atexit
import os
import re
import shutil
import tempfile
import time

import pytest

PROBE_FIXTURES = {"red", "fresh_red"}
# Marks for every test of a module, where what the tests use is not visible from their
# fixtures or skip reasons.
MODULE_MARKS = {
    "test_bcc_setup": ("root", "ebpf"),
    "test_cli": ("root", "ebpf"),
    "test_demo": ("root", "ebpf", "prometheus", "slow"),
    "test_doctor": ("root", "ebpf", "prometheus"),
    "test_grid_intensity": ("prometheus",),
    "test_power_cputime": ("root", "ebpf"),
    "test_prometheus_truth": ("root", "ebpf", "prometheus"),
    "test_prometheus_client": ("prometheus",),
    "test_readonly": ("prometheus",),
    "test_round_trip": ("root", "ebpf", "prometheus", "slow"),
    "test_slo_prometheus": ("prometheus",),
    "test_slo_tui": ("prometheus",),
    "test_snapshot": ("root", "ebpf"),
    "test_snapshot_stream": ("root", "ebpf"),
}
# Marks for single tests (module::name, parameters included when given), by the same measure.
TEST_MARKS = {
    "test_bad_input_power_prom::test_any_powercap_file_contents_give_sane_watts_or_a_reason": ("slow",),
    "test_config::test_random_documents_give_a_config_or_a_config_error": ("slow",),
    "test_exporter::test_console_serves_its_frames": ("root", "ebpf"),
    "test_power_attribution::test_two_burners_at_3_to_1_get_watts_at_3_to_1[ebpf]": ("root", "ebpf", "slow"),
    "test_power_attribution::test_two_burners_at_3_to_1_get_watts_at_3_to_1[proc]": ("slow",),
    "test_power_attribution::test_every_tick_conserves_on_the_real_host_with_the_estimate": ("slow",),
    "test_routes::test_idempotent": ("slow",),
    # the fast tier's longest (seconds each): the full suite runs them
    "test_tui_snapshots::test_service_detail_undecoded": ("slow",),
    "test_tui_snapshots::test_service_detail": ("slow",),
    "test_history_replay::test_steps_minutes_goto_and_live": ("slow",),
    "test_history_store::test_kill_9_loses_at_most_the_flush_interval_then_recording_resumes": ("slow",),
    "test_history_codec::test_apply_of_diff_gives_the_new_document": ("slow",),
    "test_power_rapl::test_counter_wrapping_mid_run_is_never_negative_nor_dropped": ("slow",),
    "test_power_window::test_a_tenth_of_a_second_interval_shows_energy_once_a_second": ("slow",),
    "test_terminal_safety::test_no_colour_wanted_draws_plain_readable_text": ("slow",),
    "test_routes::test_cardinality_is_bounded_whatever_the_number_of_paths": ("slow",),
    "test_red_tls::test_go_crypto_tls_probed_at_entry_and_every_ret_never_uretprobes": ("slow",),
    "test_tui_habits::test_no_mouse_leaves_the_mouse_to_the_terminal": ("slow",),
    "test_tui_habits::test_under_sudo_the_invoking_user_writes_their_own_state": ("slow",),
    "test_history_replay::test_compare_at_80x24_keeps_the_change_columns_first": ("slow",),
    "test_history_replay::test_compare_adds_change_columns_to_the_panes": ("slow",),
    "test_history_replay::test_a_step_moves_the_sparklines_history_a_jump_shows_none_until_read": ("slow",),
    "test_tui::test_choosing_a_host_names_it_only_with_its_own_numbers": ("slow",),
    "test_tui::test_requests_detail_shows_energy_per_request": ("slow",),
    "test_history_store::test_retention_by_size_shrinks_the_file": ("slow",),
    "test_tui::test_number_maximises_and_again_restores": ("slow",),
    "test_config_default::test_round_trip_from_the_real_cli": ("slow",),
    "test_history_cli::test_doctor_shows_the_store": ("slow",),
    "test_history_cli::test_history_dir_from_config_and_flag": ("slow",),
    "test_metric_model::test_promtool_unit_tests_of_the_burn_rate_alerts": ("slow",),
    "test_terminal_safety::test_an_exception_gives_the_terminal_back": ("slow",),
    "test_tui_habits::test_remembered_sorts_are_restored_and_changes_kept": ("slow",),
    "test_tui_snapshots::test_light_theme": ("slow",),
    "test_tui_snapshots::test_four_panes_160x48": ("slow",),
    "test_tui_snapshots::test_everything_off_160x48": ("slow",),
    "test_tui_snapshots::test_help": ("slow",),
    "test_tui_snapshots::test_carbon_zoomed_80x24": ("slow",),
    "test_tui_snapshots::test_narrow_requests_focused": ("slow",),
    "test_tui::test_only_changed_cells_are_repainted": ("slow",),
    "test_tui::test_enter_opens_detail_with_charts_and_routes": ("slow",),
    "test_tui::test_slash_filters_focused_pane_enter_keeps_escape_clears": ("slow",),
    "test_history_codec::test_a_chunk_decodes_to_its_frames": ("slow",),
    "test_power_rapl::test_snapshot_window_counts_a_counter_that_wraps_within_it": ("root", "ebpf", "slow"),
    "test_config::test_bad_settings_exit_2_with_one_line_from_the_cli": ("slow",),
}


# Tests that measure CPU shares or wall-clock bounds, which other tests running beside them
# would distort: `make test` runs them alone, after the parallel phase (a module name alone
# marks all its tests).
EXCLUSIVE = {
    "test_round_trip",
    "test_power_attribution",
    "test_procs::test_cpu_percent_of_a_busy_loop",
    "test_faults::test_pid_reuse_does_not_inherit_cpu_time",
    "test_faults::test_burst_of_short_lived_processes",
    "test_faults::test_two_thousand_processes_on_screen",
    # lost events counted host-wide, exactly: a probe loaded while another module's requests
    # are in flight, or one such request's response, shows in them
    "test_faults::test_thousands_of_paths_collapse_and_are_all_counted",
    "test_red_truth::test_a_response_to_a_request_never_seen_is_a_lost_event_with_its_reason",
    "test_prometheus_truth::test_console_and_exporter_agree_within_timeout_and_a_tick",
    "test_prometheus_client::test_faults_are_one_line_reasons_within_the_timeout",
    "test_slo_tui::test_first_frame_does_not_wait_for_a_slow_prometheus",
    "test_exporter::test_a_silent_client_does_not_stall_tls_scrapes",
    "test_exporter::test_agent_publishes_exact_request_counts_and_buckets",
    "test_red_probes::test_python_http_exact_and_latency",
    "test_web_config::test_bcrypt_users_right_and_wrong",
}


# Modules whose tests count the probe's lost events host-wide, where traffic from another
# module's servers would show (a request in flight as the probe loads, a server probed by two
# probes at once): in the parallel phase they share one worker and run one after another.
# Every other module is a group of its own (its tests share their servers on one worker).
EXACT_PROBE_MODULES = {
    "test_bad_traffic",
    "test_faults",
    "test_red_h2",
    "test_red_probes",
    "test_red_tls",
    "test_red_tls_h2",
    "test_red_truth",
}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        marks = set(MODULE_MARKS.get(module, ()))
        marks |= set(TEST_MARKS.get(f"{module}::{item.name}", ()))
        marks |= set(TEST_MARKS.get(f"{module}::{item.originalname}", ()))
        if EXCLUSIVE & {module, f"{module}::{item.originalname}"}:
            marks.add("exclusive")
        if PROBE_FIXTURES & set(getattr(item, "fixturenames", ())):
            marks |= {"root", "ebpf"}
        for skip in item.iter_markers("skipif"):
            reason = str(skip.kwargs.get("reason", ""))
            if "root" in reason:
                marks.add("root")
            if re.search(r"ebpf|probe|bpf", reason, re.IGNORECASE):
                marks |= {"root", "ebpf"}
        for name in sorted(marks):
            item.add_marker(name)
        item.add_marker(pytest.mark.xdist_group("probe-exact" if module in EXACT_PROBE_MODULES else module))


# Consoles and agents started by the tests record their history here, never into the host's
# /var/lib/obs-tui/history (tests touch only what they create).
_HISTORY = tempfile.mkdtemp(prefix="obs-tui-test-history-")
os.environ["OBS_TUI_HISTORY"] = _HISTORY
atexit.register(shutil.rmtree, _HISTORY, ignore_errors=True)

# Screens show wall-clock times (the SLO pane's "data as of"): one zone for every run.
os.environ["TZ"] = "UTC"
time.tzset()


def _red_source():
    from obs_tui.sources.red import RedSource

    source = RedSource(routes=["/users/{id}"])
    cap = source.available()
    if not cap.ok:
        pytest.skip(f"RED probe unavailable: {cap.reason}")
    yield source
    source.close()


@pytest.fixture(scope="module")
def red():
    yield from _red_source()


@pytest.fixture
def fresh_red():
    """Loaded for one test: its maps start empty, so what other tests or other servers on
    the host sent earlier (thousands of paths can fill the probe's tables, by design) cannot
    decide whether this test's requests fit."""
    yield from _red_source()
