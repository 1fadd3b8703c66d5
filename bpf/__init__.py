"""The eBPF C programs, shipped as package data (obs_tui.bpf) and compiled by bcc at load.

Found with bcc_setup.probe_source(); the constants they share with Python come from
obs_tui/probe_constants.py.
"""
