"""Who the console runs as once root is given up: the user who ran sudo, else nobody.

Read by the privilege drop (obs_tui/privileges.py) and by what the console keeps for that user
between runs (obs_tui/tui/state.py), so both name the same user.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping

FALLBACK_USER = "nobody"


def target_user(environ: Mapping[str, str] = os.environ) -> tuple[int, int, str]:
    """(uid, gid, name) to become: the user who ran sudo, else nobody."""
    uid, gid = environ.get("SUDO_UID", ""), environ.get("SUDO_GID", "")
    if uid.isdigit() and int(uid) != 0:
        uid_n = int(uid)
        try:
            entry = pwd.getpwuid(uid_n)
            name, default_gid = entry.pw_name, entry.pw_gid
        except KeyError:
            name, default_gid = str(uid_n), uid_n
        return uid_n, int(gid) if gid.isdigit() and int(gid) != 0 else default_gid, name
    entry = pwd.getpwnam(FALLBACK_USER)
    return entry.pw_uid, entry.pw_gid, entry.pw_name
