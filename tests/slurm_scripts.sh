#!/usr/bin/env bash
# The Slurm scripts (scripts/slurm/) under a stand-in Slurm: SLURM_* variables as sbatch sets
# them, `srun` as `mpirun -np 2`, `scontrol` recording its arguments. Checks: a job array of
# two shards then merge gives every run; USR1 (the time limit near) requeues the task and
# stops the sweep, and the requeued task finishes it, continuing runs from their
# checkpoints; the MPI training script requeued the same way resumes its run.
#   tests/slurm_scripts.sh ATTNLAB SOURCE_DIR WORK_DIR
set -euo pipefail
ATTNLAB=$1 SRC=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK/bin" && cd "$WORK"
export ATTNLAB OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cat > bin/scontrol <<'X'
#!/bin/sh
echo "$@" >> "$SCONTROL_LOG"
X
cat > bin/srun <<'X'
#!/bin/sh
[ "$1" = "--cpu-bind=none" ] && shift
exec mpirun --oversubscribe --mca mpi_yield_when_idle 1 -np 2 "$@"
X
chmod +x bin/*
export PATH="$WORK/bin:$PATH" SCONTROL_LOG="$WORK/scontrol.log" SLURM_SUBMIT_DIR="$SRC"
fail() { echo "FAIL: $*"; exit 1; }

# Runs long enough (20000 steps, about a second each) for a signal to land while they train.
sed "s/^steps = 600$/steps = 20000/" "$SRC/tests/data/tiny_sweep.toml" > spec.toml
grep -q "^steps = 20000$" spec.toml || fail "could not lengthen the spec"

# 1. A job array of two tasks; task 0 is signalled USR1 (time limit near) while it runs.
SLURM_JOB_ID=101 SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=2 bash "$SRC/scripts/slurm/sweep_array.sbatch" spec.toml "" sw > t0.log 2>&1 &
pid=$!
sleep 1
kill -USR1 $pid
wait $pid || true
grep -q "requeue 101" scontrol.log || fail "USR1 did not requeue the job: $(cat scontrol.log 2>/dev/null)"
grep -q "requeueing job 101" t0.log || fail "no requeue line in the task's log"
[ -f sw.shard0/runs.db ] || fail "task 0 wrote no store"
# the requeued task and task 1
SLURM_JOB_ID=101 SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=2 bash "$SRC/scripts/slurm/sweep_array.sbatch" spec.toml "" sw > t0b.log 2>&1 ||
  fail "requeued task 0: $(tail -3 t0b.log)"
SLURM_JOB_ID=102 SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 bash "$SRC/scripts/slurm/sweep_array.sbatch" spec.toml "" sw > t1.log 2>&1 ||
  fail "task 1: $(tail -3 t1.log)"
grep -q "sweep: 6 runs: 6 completed" t0b.log || fail "requeued task 0: $(tail -1 t0b.log)"
grep -q "sweep: 6 runs: 6 completed" t1.log || fail "task 1: $(tail -1 t1.log)"
grep -l "resuming " sw.shard0/runs/*/log.txt > /dev/null || fail "no run of the stopped task resumed from a checkpoint"
"$ATTNLAB" merge sw sw.shard0 sw.shard1 > merge.log
grep -q "merge: 12 runs added" merge.log || fail "merge: $(cat merge.log)"
echo "ok: job array of 2 shards, one requeued by USR1 and resumed; merged 12 runs"

# 2. One MPI job over "nodes" (srun = mpirun -np 2), the same store on rerun.
bash "$SRC/scripts/slurm/sweep_mpi.sbatch" "$SRC/tests/data/tiny_sweep.toml" quick swm > m.log 2>&1 || fail "sweep_mpi: $(tail -3 m.log)"
grep -q "sweep: 6 runs: 6 completed, 0 diverged, 0 failed in .* over 2 MPI ranks" m.log || fail "sweep_mpi: $(tail -1 m.log)"
echo "ok: sweep over 2 MPI ranks"

# 3. Data-parallel training, requeued by USR1 mid-run, resumes from its checkpoint.
ARGS="train.steps=3000 train.eval_every=100 task.n_train=512 task.n_val=64 task.seq_len=48 model.d_model=32 model.ffn=64"
SLURM_JOB_ID=103 bash "$SRC/scripts/slurm/train_mpi.sbatch" "$SRC/experiments/sparse_memory.toml" big $ARGS > tr.log 2>&1 &
pid=$!
for _ in $(seq 100); do [ -f big/checkpoint.safetensors ] && break; sleep 0.1; done
kill -USR1 $pid
wait $pid || true
grep -q "requeue 103" scontrol.log || fail "USR1 did not requeue the training job"
[ -f big/checkpoint.safetensors ] || fail "no checkpoint after the stop"
[ ! -f big/summary.json ] || fail "the run ended before the signal: lengthen it"
SLURM_JOB_ID=103 bash "$SRC/scripts/slurm/train_mpi.sbatch" "$SRC/experiments/sparse_memory.toml" big $ARGS > tr2.log 2>&1 ||
  fail "requeued training: $(tail -3 tr2.log)"
grep -q "resuming big from step" tr2.log || fail "the requeued run did not resume: $(head -3 tr2.log)"
grep -q '"status": "completed"' big/summary.json || fail "the resumed run did not complete"
grep -q '"ranks": 2' big/summary.json || fail "the run was not data parallel"
SLURM_JOB_ID=103 bash "$SRC/scripts/slurm/train_mpi.sbatch" "$SRC/experiments/sparse_memory.toml" big $ARGS > tr3.log 2>&1
grep -q "has completed" tr3.log || fail "a completed run was started again"
echo "ok: data-parallel training requeued by USR1 resumed ($(grep -o 'from step [0-9]* of [0-9]*' tr2.log))"
