#pragma once
// Ranks of an MPI job (OpenMPI; Slurm's srun with PMIx works too). attnlab calls MPI_Init only
// when a launcher started it (mpirun, srun): a plain `attnlab ...` is one process, with no MPI
// start-up cost. Everything here is a no-op (rank 0 of 1) outside such a job.
//   train: data parallel over ranks (train/trainer.cpp); sweep: runs spread over ranks, rank 0
//   owns the store (sweep/runner.cpp). Only the main thread calls MPI (MPI_THREAD_FUNNELED).
#include <cstddef>
#include <string>
#include <vector>

namespace attnlab::dist {

// MPI_Init if a launcher started this process (its environment says so); call once, early.
void init(int* argc, char*** argv);
// MPI_Finalize (normal exit of every rank).
void finalize();
// Ends every rank of the job with this exit status (an error on one rank would otherwise
// leave the others waiting in a collective forever).
[[noreturn]] void abort_all(int status);

bool launched();  // started by mpirun/srun (whether or not init has run yet)
int rank();
int size();
int local_size();  // ranks on this node: they share its cores
// The cores this process may use: its CPU affinity (a Slurm allocation, taskset, mpirun's
// binding of a rank to its cores), not the whole node's; unbound ranks of one node share it.
int usable_cores();

// Sums in place over all ranks; every rank gets the same bits.
void allreduce_sum(float* x, size_t n);
void allreduce_sum(double* x, size_t n);
// Waits until every rank has come here.
void barrier();
// Rank 0's values to every rank.
void broadcast(float* x, size_t n);

// Point-to-point text messages (the distributed sweep's protocol).
void send(int to, int tag, const std::string& text);
// A message waiting for this rank, without blocking: true and its source and tag if any.
bool poll(int* from, int* tag);
// Blocks for the next message from `from` (any tag if tag < 0); returns its text.
std::string receive(int from, int tag, int* got_tag = nullptr);

// This process's environment without the launcher's variables (OMPI_*, PMIX_*, PMI_*): a
// child (a sweep's `attnlab train`) started with it is a plain process, not a rank.
std::vector<std::string> child_environment();

}  // namespace attnlab::dist
