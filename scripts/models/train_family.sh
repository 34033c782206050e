#!/usr/bin/env bash
# The model family on the speed/quality frontier: every tier x scale training run, resumable.
#
#   scripts/models/train_family.sh --list                 # print every run's exact command
#   scripts/models/train_family.sh x3_fast x3_quality     # start (or resume) these runs in the background
#   scripts/models/train_family.sh --status               # last log line of every run
#
# Tiers (cost = Conv multiply-accumulates per LR input pixel, `python scripts/models/macs.py FILE`):
#   fast      ECBSR-style M5C16 (`train.py --arch ecb --channels 16 --blocks 5`), re-parameterised
#             to six plain 3x3 convs + global residual: 12,240 / 13,968 MACs/px at x2/x4; 80k steps
#             of batch 64: ~2-2.5 h at ~10 steps/s (1 thread, float32). At x3 the fast model is
#             M3C16 (8,352 MACs/px; budget 14,872 = espcn_x3 / 4), the largest of this family
#             that runs 480x270 -> 1440x810 live on two cores (issue #14's target; M4C16 drops
#             18%): x3_fast starts from the M5C16 run x3_fast_m5 (its head, first three blocks and
#             tail) and trains 80k bf16 steps, ~30 min on 2 threads (~45-50 steps/s). At x4 the
#             fast model is M5C32 (50,976 MACs/px: a quarter of espcn_x4's 208,960, as 14,872 is of
#             espcn_x3's), from x3_balanced's head and first five blocks, bf16, with four sampling
#             phases (--phases 4); x4_fast_c16 is the earlier M5C16 run (7% of espcn_x4's cost).
#   balanced  ECB M6C32 at the model card's ESPCN's cost (56,736 / 58,176 MACs/px at x2/x3 against
#             espcn_xN's 58,048 / 59,488): it replaces espcn_xN as the default where it wins by
#             >= 0.2 dB (issue #14's rule; x4 keeps espcn_x4, 208,960). x2 starts from x3's head
#             and body. bf16: 15.4 steps/s on one thread of the AMX Xeon against 0.7-1.4 in float32.
#   *_video   the same tier trained with `--degrade video` (blur, noise, JPEG): with H.264-compressed
#             LR frames espcn_x3_video is +0.6 dB over espcn_x3 (scripts/models/eval.py --lr-codec).
#             A tier's video run starts from its clean run's checkpoint (every tensor, --init; or
#             INIT=FILE) and learns only the damage: a third of the clean run's peak rate, 20k
#             steps (MINUTES fits them to the clock).
#   quality   ECBSR-style M12C64: 445,248 / 448,128 / 452,160 MACs/px (budget at x3: 951,808 =
#             16 x espcn_x3); batch 32 and lr 5e-4 (a deep plain stack: ECBSR's rate). fp32: ~1.6
#             steps/s on 1 CPU thread; --precision bf16 (AMX): 7.4 steps/s on 1 thread, 10 on 2
#             (run the quality runs one after another with THREADS=2: two 1-thread runs side by
#             side make 8.7 in all). x2/x4 start from x3_quality's checkpoint (head and body).
#             MINUTES=45 fits the rest of a run's schedule into 45 minutes (resumable again).
#             x4_quality_deep: M18C64 (673,344 MACs/px) from x4_quality's checkpoint, its six new
#             blocks starting as the identity, four sampling phases; ~3.4 steps/s on one thread.
#             x4_quality_m25 (M25C64) and x4_quality_p40 (40px patches) went on from it for 115
#             minutes each and did not beat it on held-out (25.213 / 25.206 against 25.210): not
#             shipped, kept as the record of what was tried (models/README.md).
#             x4_quality_c96 (M10C96, 844,128 MACs/px) tried width instead: 60k-step schedule
#             (THREADS=2), carried across two sessions and annealed by the clock from step 39k
#             (MINUTES=32): held-out 25.168, Set5/Set14 30.15/26.89, below the M18C64: not shipped.
#             x4_quality_mix(s) and x4_quality_ema(16): the shipped M18C64 fine-tuned on colour mixes /
#             more sizes, and with a moving average of its weights (--ema) / all 16 phases: held-out
#             25.202-25.218, Set14 26.94-26.95 (models/README.md): not shipped.
#             x4_quality_refine(2): x4_quality_ema16's checkpoint with a refinement branch above LR
#             (--refine 16 at HR / --refine 48 --refine-factor 2): held-out 25.216 / 25.212, Set14
#             26.96 / 26.95 after ~30k steps (112 min): not shipped.
#             x4_fast_psnr / x4_fast_l1mse: an A/B of train.py --loss psnr against the usual loss,
#             on the shipped fast_x4 (cheap enough to run in float32 on an AVX2-only CPU): ~10.5k
#             steps each in 40 min, held-out 25.049 both, Set14 26.674 / 26.675: no gain.
#
# Each run holds out 4 training images (--holdout 4) and logs their PSNR at every checkpoint:
# that is the validation signal. Set5/Set14 are evaluated once at the end, for reporting only.
# Held-out references at x3 (canyon_sun, oil_refinery_sun, t12, t42; shared protocol, Y):
# nearest 23.64, bicubic 24.96, espcn_x3 26.51 (optimistic: espcn_x3 was trained on them).
# Order used: x3_fast + x3_quality first; when x3_fast ends, x2_fast then x4_fast next to the
# still-running x3_quality; the other quality runs after x3_quality.
# Runs use one thread each (this machine has 2 cores, shared); start at most two at once.
# Re-running the same command resumes from the checkpoint (a finished run is not restarted:
# its .onnx exists). Checkpoints, logs and models live in $RUNS (default /work/train_runs),
# outside the repository; copy a finished model into models/ only after it is evaluated.
# On a GPU machine, pass DEVICE=cuda THREADS=0: the checkpoint resumes there unchanged; for a
# short lease, scripts/models/train_family_gpu.sh runs them all at once against the clock.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-/work/train_runs}
PY=${PY:-.venv/bin/python}
THREADS=${THREADS:-1}
DEVICE=${DEVICE:-auto}
MINUTES=${MINUTES:-0}  # > 0: each run fits the rest of its schedule into this many minutes (--max-minutes)

args_for() {  # run name -> train.py arguments; NAME = xSCALE_TIER[_video]
    local name=$1 scale tier degrade=clean
    scale=${name%%_*}; scale=${scale#x}; tier=${name#*_}
    case $tier in *_video) degrade=video; tier=${tier%_video} ;; esac
    # net: the tier's network (its clean and video runs share it, so one starts from the
    # other's checkpoint); rate: its schedule
    local net rate init=()
    case $tier in
        fast|fast_m5|fast_c16)  # M5C16; x3_fast is M3C16 (the live target), from x3_fast_m5's head,
            # first blocks and tail; x4_fast is M5C32 (a quarter of espcn_x4's cost) from x3_balanced's
            # head and first five blocks, with four sampling phases per image
            net=(--channels 16 --blocks 5 --batch 64); rate=(--lr 1e-3 --steps 80000)
            if [ "$tier" = fast ] && [ "$scale" = 3 ]; then
                net=(--channels 16 --blocks 3 --batch 64 --precision bf16); init=(--init "$RUNS/x3_fast_m5.ckpt")
            elif [ "$tier" = fast ] && [ "$scale" = 4 ]; then
                net=(--channels 32 --blocks 5 --batch 64 --precision bf16 --phases 4)
                rate=(--lr 1e-3 --steps 200000); init=(--init "$RUNS/x3_balanced.ckpt")
            fi
            tier=fast ;;
        balanced)  # x2 starts from x3's head and body, as the quality tier does
            net=(--channels 32 --blocks 6 --batch 64 --precision bf16); rate=(--lr 1e-3 --steps 80000)
            [ "$scale" != 3 ] && init=(--init "$RUNS/x3_balanced.ckpt") ;;
        quality)  # x2/x4 start from x3's head and body (only the tail's shape differs)
            net=(--channels 64 --blocks 12 --batch 32 --precision bf16); rate=(--lr 5e-4 --steps 150000)
            [ "$scale" != 3 ] && init=(--init "$RUNS/x3_quality.ckpt") ;;
        quality_deep)  # M18C64 from x4_quality (its six new blocks start as the identity), four phases
            net=(--channels 64 --blocks 18 --batch 32 --precision bf16 --phases 4)
            rate=(--lr 3e-4 --steps 150000); init=(--init "$RUNS/x${scale}_quality.ckpt"); tier=quality ;;
        quality_m25)  # M25C64 (931,392 MACs/px at x4, 15.7x espcn_x3) from x4_quality_deep, its seven new
            # blocks starting as the identity; 40px LR patches (a 25-block stack sees 53px of context)
            net=(--channels 64 --blocks 25 --batch 12 --patch 40 --precision bf16 --phases 4)
            rate=(--lr 2e-4 --steps 150000); init=(--init "$RUNS/x${scale}_quality_deep.ckpt"); tier=quality ;;
        quality_c96)  # M10C96 (844,128 MACs/px at x4, 14.2x espcn_x3): wider, not deeper; from scratch
            # (no checkpoint has its width); a step schedule (60k), to be carried across sessions
            net=(--channels 96 --blocks 10 --batch 32 --precision bf16 --phases 4)
            rate=(--lr 5e-4 --steps 60000); tier=quality ;;
        quality_mix|quality_mixs)  # the shipped M18C64 (x4_quality_deep's export; its checkpoint is
            # gone: cp models/quality_x4.onnx RUNS/x4_quality_deep.onnx) fine-tuned on more varied data:
            # one more grey image per picture from a random mix of its colours (--colour-mixes 1);
            # quality_mixs also uses each picture at six sizes instead of four, at twice the rate
            net=(--channels 64 --blocks 18 --batch 32 --precision bf16 --phases 4 --colour-mixes 1)
            rate=(--lr 1.5e-4 --mse-fraction 0.5 --steps 150000)
            if [ "$tier" = quality_mixs ]; then
                net+=(--sizes 1.0,0.9,0.8,0.7,0.6,0.5); rate=(--lr 3e-4 --mse-fraction 0.5 --steps 150000)
            fi
            init=(--init "$RUNS/x${scale}_quality_deep.onnx"); tier=quality ;;
        quality_ema|quality_ema16)  # the shipped M18C64 (RUNS/x4_quality_deep.onnx, as for quality_mix)
            # fine-tuned with a moving average of its weights exported (--ema 0.999: validation and
            # the file see the average, not the last step's noise); quality_ema16 also cuts every
            # picture at all 16 sampling phases (4x the distinct LR images) at twice the rate
            net=(--channels 64 --blocks 18 --batch 32 --precision bf16 --phases 4 --ema 0.999)
            rate=(--lr 1.5e-4 --mse-fraction 0.5 --steps 150000)
            if [ "$tier" = quality_ema16 ]; then
                net=(--channels 64 --blocks 18 --batch 32 --precision bf16 --phases 16 --ema 0.999)
                rate=(--lr 3e-4 --mse-fraction 0.5 --steps 150000)
            fi
            init=(--init "$RUNS/x${scale}_quality_deep.onnx"); tier=quality ;;
        quality_refine|quality_refine2)  # x4_quality_ema16's M18C64 (checkpoint) with a refinement
            # branch above LR (train.py --refine K --refine-factor F, vsr.lab.networks.build_ecb): K=16
            # channels at HR (859,968 MACs/px at x4) / K=48 at 2x LR (873,792); the branch starts near
            # zero, so the run starts from the M18C64's output; all 16 phases, --ema 0.999
            net=(--channels 64 --blocks 18 --batch 32 --precision bf16 --phases 16 --ema 0.999 --refine 16)
            [ "$tier" = quality_refine2 ] && net=(--channels 64 --blocks 18 --batch 32 --precision bf16
                                                  --phases 16 --ema 0.999 --refine 48 --refine-factor 2)
            rate=(--lr 3e-4 --mse-fraction 0.5 --steps 150000)
            init=(--init "$RUNS/x${scale}_quality_ema16.ckpt"); tier=quality ;;
        fast_psnr|fast_l1mse)  # the loss, A/B on the cheap x4 network: the shipped fast_x4 (M5C32)
            # fine-tuned with --loss psnr (each patch's log MSE: the metric's weighting) against the
            # same run with the usual L1-then-MSE; float32 (for AVX2-only machines, where bf16 is
            # emulated and ~10x slower than float32)
            net=(--channels 32 --blocks 5 --batch 64 --phases 4); init=(--init models/fast_x4.onnx)
            rate=(--lr 3e-4 --mse-fraction 0.5 --steps 150000)
            [ "$tier" = fast_psnr ] && rate+=(--loss psnr)
            tier=fast ;;
        quality_p40)  # x4_quality_deep's M18C64 fine-tuned on 40px LR patches (more context per pixel)
            net=(--channels 64 --blocks 18 --batch 12 --patch 40 --precision bf16 --phases 4)
            rate=(--lr 1e-4 --steps 150000); init=(--init "$RUNS/x${scale}_quality_deep.ckpt"); tier=quality ;;
        *) echo "unknown tier in $name" >&2; return 1 ;;
    esac
    if [ "$degrade" = video ]; then  # a fine-tune of the clean run: a third of its rate, 20k steps
        case $tier in
            fast|balanced) rate=(--lr 3e-4 --steps 20000) ;;
            quality) rate=(--lr 1.5e-4 --steps 20000) ;;
            *) echo "no video run for tier $tier" >&2; return 1 ;;
        esac
        init=(--init "${INIT:-$RUNS/x${scale}_$tier.ckpt}")
    fi
    echo --scale "$scale" --arch ecb --tier "$tier" --holdout 4 --threads "$THREADS" \
         --device "$DEVICE" --degrade "$degrade" --out "$RUNS/$name.onnx" \
         --checkpoint "$RUNS/$name.ckpt" --max-minutes "$MINUTES" "${init[@]}" "${net[@]}" \
         "${rate[@]}" --checkpoint-every 1000 --log-every 500
}

ALL=(x3_fast_m5 x3_fast x3_quality x2_fast x4_fast_c16 x4_fast x2_quality x4_quality x4_quality_deep x4_quality_m25 x4_quality_p40 x4_quality_c96 x4_quality_mix x4_quality_mixs x4_quality_ema x4_quality_ema16 x4_quality_refine x4_quality_refine2 x4_fast_psnr x4_fast_l1mse x3_balanced x2_balanced x3_fast_video x3_balanced_video x3_quality_video)

case ${1:---list} in
    --list)
        for n in "${ALL[@]}"; do
            echo "nohup $PY scripts/models/train.py $(args_for "$n") >> $RUNS/$n.log 2>&1 &"
        done ;;
    --status)
        for n in "${ALL[@]}"; do
            [ -f "$RUNS/$n.log" ] || continue
            pid=$(cat "$RUNS/$n.pid" 2>/dev/null || true)
            state=stopped; [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && state="running (pid $pid)"
            [ -f "$RUNS/$n.onnx" ] && state=finished
            echo "$n: $state: $(grep -E '^step|PSNR|wrote' "$RUNS/$n.log" | tail -n 1)"
        done ;;
    *)
        mkdir -p "$RUNS"
        for n in "$@"; do
            a=$(args_for "$n")
            if [ -f "$RUNS/$n.onnx" ]; then echo "$n: finished ($RUNS/$n.onnx)"; continue; fi
            pid=$(cat "$RUNS/$n.pid" 2>/dev/null || true)
            if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$n: already running (pid $pid)"; continue; fi
            echo "=== $(date -Is) $PY scripts/models/train.py $a" >> "$RUNS/$n.log"
            # shellcheck disable=SC2086  # $a is a word list by design
            # setsid: its own session, so it outlives the shell (and the process group) that started it
            setsid nohup "$PY" scripts/models/train.py $a >> "$RUNS/$n.log" 2>&1 < /dev/null &
            echo $! > "$RUNS/$n.pid"
            echo "$n: started pid $! (log $RUNS/$n.log)"
        done ;;
esac
