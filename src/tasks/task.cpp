// The task registry: one line per task family.
#include "tasks/task.h"

#include "core/error.h"
#include "tasks/sparse_memory.h"

namespace attnlab {

std::unique_ptr<Task> make_task(const TaskConfig& cfg, uint64_t seed) {
  if (cfg.kind == "sparse_memory") return std::make_unique<SparseMemoryTask>(cfg, seed);
  throw UserError("task.kind: unknown task '" + cfg.kind + "' (allowed: sparse_memory)");
}

}  // namespace attnlab
