#!/usr/bin/env bash
# Release 8's occlusion round (training/configs/occlusion2.json) on a lent GPU machine:
# the four stages side by side for BUDGET minutes each (the time budget fits the cosine
# schedule to the epochs that fit), then in OUT each run's last epoch and the first two
# runs' best one, halved, and the logs. On an H100 in session 13, BUDGET=6: 15-21 epochs
# each (~15 s an epoch, four side by side), 446 s in all.
#
# Here first: facemask-travel --pack cache/pack384.npz --out .gpu --quality 85 --arch
# (the pack, 31 MiB, and efficientnet_pytorch) and release 7, the stages' start and teacher:
# git show d766f63:core/weights/keypoints-lite1-lite2-integral192-ebe3a54c.pt > runs/ebe3a54c.pt
# Carry .gpu and runs/ebe3a54c.pt; the working tree with both must stay under the trip's
# 64 MiB (session 13 left docs/ and the ONNX files behind on a throwaway branch). The
# machine's own torch, numpy and OpenCV do the rest. Extra arguments go to every
# facemask-train (a smoke run here: OUT=/tmp/out bash training/gpu_occlusion.sh --limit 8
# --max-steps 2).
set -u
BUDGET=${BUDGET:-5.5}
STAGES=${STAGES:-o2-lite1 o2-lite2 o2b-lite1 o2b-lite2}
OUT=${OUT:?OUT: the folder the results go to}
PY=${PY:-python3}
export PYTHONPATH=$PWD/.gpu/site:$PWD PYTHONUNBUFFERED=1
mkdir -p runs "$OUT"
command -v nvidia-smi > /dev/null && nvidia-smi -L
for stage in $STAGES; do
    "$PY" -m training.train --data .gpu/pack.npz --config training/configs/occlusion2.json \
        --stage "$stage" --out "runs/$stage" --time-budget "$BUDGET" --threads 2 "$@" \
        > "runs/$stage.log" 2>&1 &
done
wait
# what comes back (at most 8 files of 16 MiB, 64 MiB in all): every run's last epoch,
# the first two runs' best epoch where it is another, and the logs
n=0
for stage in $STAGES; do
    grep -E "epoch [0-9]+/[0-9]+ loss|time budget|done|Error|error" "runs/$stage.log" | tail -4
    last=$(ls runs/"$stage"/epochs/ 2> /dev/null | sort -V | tail -1)
    [ -n "$last" ] || { tail -20 "runs/$stage.log"; continue; }
    "$PY" -m training.travel --half "runs/$stage/epochs/$last" "$OUT/$stage-last.pt"
    best=$("$PY" -c "import torch, sys; print(torch.load(sys.argv[1], weights_only=True)['meta']['epoch'])" \
        "runs/$stage/best.pt")
    if [ $n -lt 2 ] && [ "epoch-$best.pt" != "$last" ]; then
        "$PY" -m training.travel --half "runs/$stage/best.pt" "$OUT/$stage-best.pt"
    fi
    n=$((n + 1))
done
tar czf "$OUT/logs.tgz" runs/*.log runs/*/metrics.jsonl
ls -la "$OUT"
