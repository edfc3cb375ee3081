#!/usr/bin/env bash
# `pip install ./python` works offline, with Debian's packages only: builds the package into a
# fresh venv (system site packages visible, for setuptools), then imports it from elsewhere and
# runs the seed's send_email example. Usage: pip_install.sh PYTHON SOURCE_DIR WORK_DIR
set -euo pipefail
python=$1 source=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
"$python" -m venv --system-site-packages "$work/venv"
# A copy of what the build reads, so that the in-tree build leaves nothing in the source tree.
mkdir -p "$work/src"
cp -r "$source/include" "$source/src" "$source/python" "$work/src/"
rm -rf "$work/src/python/build" "$work/src/python"/*.egg-info
"$work/venv/bin/pip" install --no-build-isolation --no-index --quiet "$work/src/python"
cd "$work"
"$work/venv/bin/python" - <<'PY'
import time
import background

@background.task
def send_email(to, subject, body):
    time.sleep(0.05)
    return f"Sent '{subject}' to {to}"

futures = [send_email("alice@example.com", "Hello", "How are you?"),
           send_email("bob@example.com", "Update", "Project shipped.")]
assert [f.result() for f in futures] == ["Sent 'Hello' to alice@example.com",
                                         "Sent 'Update' to bob@example.com"], futures
assert "venv" in background.__file__, background.__file__
print("pip install ./python: ok,", background.__file__)
PY
