#!/usr/bin/env bash
# Parity of attnlab's Transformer with the independent PyTorch implementation
# (tools/torch_reference.py): outputs, loss and every gradient, float32, 1e-4 relative.
# Usage: run_parity.sh PARITY_DUMP SOURCE_DIR WORK_DIR
set -u
dump=$1; src=$2; work=$3
base="$src/experiments/sparse_memory.toml"
small="task.seq_len=24 task.lags=[1,5,17] model.d_model=32"
configs=(
  "model.heads=4 model.head_dim=8 model.rpe=none model.pos=learned model.norm=layer"
  "model.heads=[4,2,1] model.head_dim=[8,16,4] model.value_dim=[4,8,12] model.layers=3 model.ffn=[64,0,16] model.rpe=t5 model.rpe_buckets=8 model.rpe_max_distance=20 model.norm=rms"
  "model.dot_product=false model.rpe=lin model.pos=none model.ffn_activation=relu"
  "model.rpe=lin model.rpe_learnable=false model.pos=sinusoidal model.norm=layer model.ffn=0"
  "model.rpe=log model.norm=rms model.ffn_activation=tanh model.heads=[8,2] model.head_dim=[2,16]"
  "model.dot_product=false model.rpe=t5 model.norm=none model.score_scale=0.5 task.readout=mlp"
  "model.rpe=log model.dot_product=true model.score_scale=0.3 model.pos=sinusoidal model.layers=1 --tokens 13"
  "task.seq_len=150 model.rpe=t5 model.heads=[2,4] model.head_dim=[8,4]"
  "model.heads=[4,2] model.head_dim=[[8,8,4,2],[16,4]] model.value_dim=[[4,4,8,2],6] model.rpe=t5 model.norm=rms"
  "model.logit_cap=1.5 model.rpe=log model.heads=[3,1] model.head_dim=[[4,8,4],8] model.score_scale=0.9"
  "model.dot_product=false model.rpe=lin model.logit_cap=0.7 model.pos=none model.value_dim=[[2,4,4,2],3]"
  "task.seq_len=150 model.logit_cap=2 model.rpe=t5 model.heads=[3,2] model.head_dim=[[8,4,4],[4,8]] model.score_scale=1.5"
)
pass=0; fail=0
for i in "${!configs[@]}"; do
  dir="$work/case$i"
  rm -rf "$dir"
  # shellcheck disable=SC2086
  if ! "$dump" "$base" "$dir" $small ${configs[$i]}; then
    echo "case $i: parity_dump failed: ${configs[$i]}"; fail=$((fail+1)); continue
  fi
  if /usr/bin/python3 "$src/tools/torch_reference.py" check "$dir" --dtype float32 --rtol 1e-4 > "$dir/check.log" 2>&1; then
    echo "case $i: ok   ${configs[$i]}"; pass=$((pass+1))
  else
    echo "case $i: FAIL ${configs[$i]}"; grep -E 'FAIL|error' "$dir/check.log" | head -20; fail=$((fail+1))
  fi
done
# Paper-3 models in double precision, 1e-5 relative (tools/torch_p3.py).
p3base="$src/tests/data/p3_parity.toml"
p3configs=(
  "model.kind=shallow_attention model.activation=tanh"
  "model.kind=shallow_attention model.activation=erf model.score_scale=0.4 train.loss=mse"
  "model.kind=indrnn model.activation=tanh"
  "model.kind=indrnn model.activation=erf model.u_init=pm1.5"
  "model.kind=rnn model.activation=tanh"
  "model.kind=lstm"
  "@p3_parity_ar.toml model.kind=shallow_attention"
)
for i in "${!p3configs[@]}"; do
  dir="$work/p3case$i"
  rm -rf "$dir"
  p3b="$p3base"; args=${p3configs[$i]}
  if [ "${args:0:1}" = "@" ]; then  # "@file.toml ...": another base config in tests/data
    p3b="$src/tests/data/${args%% *}"; p3b="${p3b/@/}"; args=${args#* }
  fi
  # shellcheck disable=SC2086
  if ! "$dump" "$p3b" "$dir" --double $args; then
    echo "p3 case $i: parity_dump failed: ${p3configs[$i]}"; fail=$((fail+1)); continue
  fi
  if /usr/bin/python3 "$src/tools/torch_p3.py" check "$dir" --rtol 1e-5 > "$dir/check.log" 2>&1; then
    echo "p3 case $i: ok   ${p3configs[$i]}"; pass=$((pass+1))
  else
    echo "p3 case $i: FAIL ${p3configs[$i]}"; grep -E 'FAIL|error' "$dir/check.log" | head -20; fail=$((fail+1))
  fi
done
echo "torch parity: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
