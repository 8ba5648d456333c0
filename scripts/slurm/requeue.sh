# Sourced by the sbatch scripts here. run_requeueable CMD...: runs CMD in the background and
# waits for it. Slurm signals the batch shell with USR1 shortly before the time limit (the
# scripts ask for it with --signal=B:USR1@120): the job is then put back in the queue
# (scontrol requeue, which also ends this run of it) and CMD is stopped with SIGTERM. A
# preempted job (--requeue) is requeued by Slurm itself. Either way the requeued job runs the
# same command, and attnlab continues where it stopped: a sweep keeps its finished runs and a
# run in progress resumes from its checkpoint; a training run resumes from its checkpoint.
run_requeueable() {
  "$@" &
  local pid=$! st=0
  trap 'echo "attnlab: the time limit is near: requeueing job ${SLURM_JOB_ID:-?}"; scontrol requeue "${SLURM_JOB_ID:?}"; kill -TERM '"$pid" USR1
  trap 'kill -TERM '"$pid" TERM
  while true; do
    set +e
    wait "$pid"
    st=$?
    set -e
    kill -0 "$pid" 2>/dev/null || break  # it has ended (wait was not cut short by a signal)
  done
  trap - USR1 TERM
  return "$st"
}
