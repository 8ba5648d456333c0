#include "core/dist.h"

#include <mpi.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace attnlab::dist {

namespace {
bool g_init = false;
int g_rank = 0, g_size = 1, g_local = 1;

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) throw std::runtime_error(std::string("MPI: ") + what + " failed");
}
}  // namespace

bool launched() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

void init(int* argc, char*** argv) {
  if (g_init || !launched()) return;
  int provided = 0;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  g_init = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node);
  MPI_Comm_size(node, &g_local);
  MPI_Comm_free(&node);
}

void finalize() {
  if (!g_init) return;
  MPI_Finalize();
  g_init = false;
}

void abort_all(int status) {
  if (g_init && g_size > 1) MPI_Abort(MPI_COMM_WORLD, status);
  std::_Exit(status);
}

int usable_cores() {
  const int online = int(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  cpu_set_t set;
  CPU_ZERO(&set);
  const int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? std::max(1, CPU_COUNT(&set)) : online;
  if (mine >= online && g_local > 1) return std::max(1, mine / g_local);  // unbound ranks share the node
  return mine;
}

int rank() { return g_rank; }
int size() { return g_size; }
int local_size() { return g_local; }

// MPI counts are int: long buffers go in pieces of at most 2^30 elements.
template <class T>
static void allreduce(T* x, size_t n, MPI_Datatype type) {
  if (g_size <= 1) return;
  for (size_t off = 0; off < n; off += size_t(1) << 30) {
    const int c = int(std::min(n - off, size_t(1) << 30));
    check(MPI_Allreduce(MPI_IN_PLACE, x + off, c, type, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  }
}
void allreduce_sum(float* x, size_t n) { allreduce(x, n, MPI_FLOAT); }
void allreduce_sum(double* x, size_t n) { allreduce(x, n, MPI_DOUBLE); }

void barrier() {
  if (g_size > 1) check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

void broadcast(float* x, size_t n) {
  if (g_size <= 1) return;
  for (size_t off = 0; off < n; off += size_t(1) << 30)
    check(MPI_Bcast(x + off, int(std::min(n - off, size_t(1) << 30)), MPI_FLOAT, 0, MPI_COMM_WORLD), "MPI_Bcast");
}

void send(int to, int tag, const std::string& text) {
  if (text.size() > size_t(1) << 31) throw std::runtime_error("MPI: message over 2 GiB");
  check(MPI_Send(text.data(), int(text.size()), MPI_CHAR, to, tag, MPI_COMM_WORLD), "MPI_Send");
}

bool poll(int* from, int* tag) {
  int flag = 0;
  MPI_Status st;
  check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st), "MPI_Iprobe");
  if (!flag) return false;
  *from = st.MPI_SOURCE;
  *tag = st.MPI_TAG;
  return true;
}

std::string receive(int from, int tag, int* got_tag) {
  MPI_Status st;
  // Waits by probing with short sleeps, not in MPI_Probe: a rank waiting for work should not
  // spin a core that its runs need.
  for (int flag = 0;;) {
    check(MPI_Iprobe(from, tag < 0 ? MPI_ANY_TAG : tag, MPI_COMM_WORLD, &flag, &st), "MPI_Iprobe");
    if (flag) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  int count = 0;
  MPI_Get_count(&st, MPI_CHAR, &count);
  std::string text(size_t(count), '\0');
  check(MPI_Recv(text.data(), count, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
  if (got_tag) *got_tag = st.MPI_TAG;
  return text;
}

std::vector<std::string> child_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const char* v = *e;
    if (std::strncmp(v, "OMPI_", 5) == 0 || std::strncmp(v, "PMIX_", 5) == 0 || std::strncmp(v, "PMI_", 4) == 0) continue;
    env.emplace_back(v);
  }
  return env;
}

}  // namespace attnlab::dist
