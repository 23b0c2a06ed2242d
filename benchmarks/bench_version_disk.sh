#!/usr/bin/env bash
# Disk used per model version in adapted mode: a first `prefloop train` on the first 300 HH harmless
# pairs, then `train --from` it after 100 more (a heads-only retrain), in an empty folder.
# Prints each step's wall time, the size of each version's folder, and the inode and link count of
# each backbone weight file (one inode with two links = the second version shares the first's).
#
#   bash benchmarks/bench_version_disk.sh [HH_HARMLESS_JSONL_GZ] [WORKDIR]
set -euo pipefail
DATA=${1:-$(cd "$(dirname "$0")/.." && pwd)/../shared/data/hh-rlhf-harmless-base-test.dev.jsonl.gz}
WORK=${2:-runs/version-disk}
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
python3 - "$DATA" <<'PY'
import gzip, sys
lines = gzip.open(sys.argv[1], "rt").read().splitlines()
open("first.jsonl", "w").write("\n".join(lines[:300]) + "\n")
open("second.jsonl", "w").write("\n".join(lines[300:400]) + "\n")
PY
prefloop init >/dev/null 2>&1
prefloop ingest first.jsonl 2>/dev/null
/usr/bin/time -f "train: %e s wall" prefloop train 2>&1 | grep -v "^store" | tail -3
first=$(ls prefloop-artifacts/models)
prefloop ingest second.jsonl 2>/dev/null
/usr/bin/time -f "train --from: %e s wall" prefloop train --from "$first" 2>&1 | grep -v "^store" | tail -3
du -sh prefloop-artifacts/models/*
find prefloop-artifacts/models -name "*.safetensors" -size +10M -exec stat -c "%i %h %s %n" {} \;
