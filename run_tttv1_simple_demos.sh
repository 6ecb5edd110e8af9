#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the simple TTTv1 demo (models/tt_transformers/demo/simple_text_demo.py) for every shipped model on every
# mesh it runs on here, leaving the test cases the TTTv1 modules record (case_collection.py) as CSV files.
#
#   ./run_tttv1_simple_demos.sh [--models "Llama-3.2-1B-Instruct phi-4"] [--meshes "1x1 1x8"] [--layers N]
#
# CSVs go to $TTTV1_CASES_DIR (default generated/tttv1_cases), each run's output to its logs/ folder.
# Exits non-zero if a run failed or no run matched --models / --meshes.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python_env/bin/python}"
DEMO=("$PYTHON" -m models.tt_transformers.demo.simple_text_demo)
models=""
meshes=""
layers=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --models) models="$2"; shift 2 ;;
        --meshes) meshes="$2"; shift 2 ;;
        --layers) layers="$2"; shift 2 ;;
        -h | --help) sed -n '3,9p' "$0"; exit 0 ;;
        *) echo "unknown option '$1': use --models, --meshes or --layers" >&2; exit 2 ;;
    esac
done

export TTTV1_CASES_DIR="${TTTV1_CASES_DIR:-generated/tttv1_cases}"
mkdir -p "$TTTV1_CASES_DIR/logs"
[[ -n "$models" ]] || models="$("${DEMO[@]}" --list-models)"

ran=0
failed=0
for model in $models; do
    model_meshes="$("${DEMO[@]}" --model "$model" --list-meshes)"
    for mesh in $model_meshes; do
        [[ -z "$meshes" || " $meshes " == *" $mesh "* ]] || continue
        log="$TTTV1_CASES_DIR/logs/${model//\//_}_${mesh}.log"
        # each demo picks the mock cluster its mesh needs
        if env -u TT_METAL_MOCK_CLUSTER_DESC_PATH "${DEMO[@]}" --model "$model" --mesh "$mesh" --layers "$layers" \
            >"$log" 2>&1; then
            echo "ok      $model $mesh"
        else
            echo "FAILED  $model $mesh (see $log)"
            failed=$((failed + 1))
        fi
        ran=$((ran + 1))
    done
done

echo "$ran demo runs, $failed failed; CSVs in $TTTV1_CASES_DIR"
if [[ $ran -eq 0 ]]; then
    echo "no demo ran: no shipped model runs on the meshes asked for (--models '$models', --meshes '$meshes')" >&2
    exit 2
fi
[[ $failed -eq 0 ]]
