"""`snapshot --json` from the real CLI: the schema keys that scripts rely on."""

import json
import os
import subprocess
import sys
from datetime import datetime


def test_snapshot_json_schema():
    result = subprocess.run([sys.executable, "-m", "obs_tui", "snapshot", "--json", "--duration", "0.3"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == 1
    assert doc["host"] == os.uname().nodename
    datetime.fromisoformat(doc["taken_at"])
    assert 0.3 <= doc["duration_s"] < 5
    assert set(doc["capabilities"]) == {"ebpf", "rapl", "prometheus"}
    for cap in doc["capabilities"].values():
        assert isinstance(cap["ok"], bool)
        assert cap["ok"] or cap["reason"]
    for key in ("red", "power", "carbon", "slo"):
        assert key in doc
    assert doc["sources"]["procs"]["mode"] == "live"
    # no RAPL tree on these machines: the reason must say where it looked
    assert not doc["capabilities"]["rapl"]["ok"]
    assert "powercap" in doc["capabilities"]["rapl"]["reason"]
