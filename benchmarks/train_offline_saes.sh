#!/usr/bin/env bash
# Issue-2/3 measurements: collect ~20k public prompts on the offline encoder, train the SAE at
# the paper's defaults (m = 4d, k = 32, alpha = 1/32, lr 4e-4, batch 4096) with three seeds,
# recording wall time and peak memory of each step. Output: runs/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
D=../shared/data
OUT=runs/bench
TOKENS=${TOKENS:-4000000}
mkdir -p $OUT
/usr/bin/time -v .venv/bin/snce collect --encoder offline \
  --prompts $D/diffusiondb/diffusiondb_nsfw_6k.csv $D/diffusiondb/diffusiondb_10k.csv $D/i2p/i2p_4703.csv \
  --out $OUT/store20k > $OUT/collect.json 2> $OUT/collect.err
for s in 0 1 2; do
  /usr/bin/time -v .venv/bin/snce train --activations $OUT/store20k --out $OUT/sae_s$s --seed $s \
    --tokens $TOKENS --dead-after-tokens 1000000 > $OUT/train_s$s.json 2> $OUT/train_s$s.err
done
grep -H -E "Maximum resident|Elapsed" $OUT/*.err
cat $OUT/collect.json $OUT/train_s*.json
