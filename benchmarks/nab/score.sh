#!/usr/bin/env bash
# Scores tidewatch's anomaly detectors on the Numenta Anomaly Benchmark with NAB's own scorer
# (run.py --optimize --score --normalize: threshold optimisation per profile, then the
# standard / reward_low_FP_rate / reward_low_FN_rate scores, normalised so that the null
# detector scores 0 and a perfect one 100).
#
# Usage: benchmarks/nab/score.sh [DETECTOR...]      (default: every detector)
#   NAB_DIR   a checkout of github.com/numenta/NAB (default: cloned into target/nab at the
#             commit below); the script writes into its results/ and config/thresholds.json.
#   NAB_PYTHON  a Python with NAB's requirements (default: a venv made in target/nab-venv with
#             pandas 1.5.3, numpy < 2, simplejson, scikit-learn; pandas 2 breaks NAB's labeler).
#   TIDEWATCH  the binary (default: target/release/tidewatch, built if missing).
#
# Every file of NAB's data/ is scored by `tidewatch detect --detector NAME` on its own, in
# time order, with the detector's defaults (window 6,400, season from the timestamps, `best`
# rests 2% of the file after a detection). Nothing is tuned per file.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
nab_commit=ea702d75cc2258d9d7dd35ca8e5e2539d71f3140
nab=${NAB_DIR:-$root/target/nab}
tidewatch=${TIDEWATCH:-$root/target/release/tidewatch}
detectors=("$@")
if [ ${#detectors[@]} -eq 0 ]; then
  detectors=(windowed_gaussian robust ewma_chart residual learned_weights best)
fi

if [ ! -d "$nab/data" ]; then
  git clone --quiet https://github.com/numenta/NAB "$nab"
  git -C "$nab" checkout --quiet "$nab_commit"
fi
if [ -z "${NAB_PYTHON:-}" ]; then
  venv=$root/target/nab-venv
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "pandas==1.5.3" "numpy<2" simplejson scikit-learn plotly boto3
  fi
  NAB_PYTHON=$venv/bin/python
fi
if [ ! -x "$tidewatch" ]; then
  (cd "$root" && cargo build --release --bin tidewatch)
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for detector in "${detectors[@]}"; do
  name=tidewatch${detector//_/}  # NAB splits names on `_`
  for file in "$nab"/data/*/*.csv; do
    category=$(basename "$(dirname "$file")")
    mkdir -p "$nab/results/$name/$category"
    "$tidewatch" detect --input "$file" --detector "$detector" --out "$scratch/scores.csv"
    # NAB's results files carry a label column; the scorer fills it from its own labels.
    awk 'NR == 1 { print $0 ",label"; next } { print $0 ",0" }' "$scratch/scores.csv" \
      > "$nab/results/$name/$category/${name}_$(basename "$file")"
  done
  "$NAB_PYTHON" - "$nab/config/thresholds.json" "$name" <<'PY'
import json, sys
path, name = sys.argv[1], sys.argv[2]
thresholds = json.load(open(path))
thresholds[name] = {profile: {"score": 0, "threshold": 0.5}
                    for profile in ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]}
json.dump(thresholds, open(path, "w"), indent=4)
PY
  (cd "$nab" && PYTHONPATH="$nab" "$NAB_PYTHON" run.py -d "$name" --optimize --score --normalize \
      --skipConfirmation | grep "Final score for")
done
