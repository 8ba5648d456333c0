// The task registry: one line per task family.
#include "tasks/task.h"

#include "core/error.h"
#include "tasks/adaptive_memory.h"
#include "tasks/ar_forecast.h"
#include "tasks/kernel_memory.h"
#include "tasks/ngram_noise.h"
#include "tasks/npy_task.h"
#include "tasks/retrieval.h"
#include "tasks/sparse_memory.h"
#include "tasks/teacher_student.h"
#include "tasks/text_lm.h"

namespace attnlab {

std::unique_ptr<Task> make_task(const TaskConfig& cfg, uint64_t seed) {
  if (cfg.kind == "sparse_memory") return std::make_unique<SparseMemoryTask>(cfg, seed);
  if (cfg.kind == "ar_forecast") return std::make_unique<ArForecastTask>(cfg, seed);
  if (cfg.kind == "adaptive_memory") return std::make_unique<AdaptiveMemoryTask>(cfg, seed);
  if (cfg.kind == "kernel_memory") return std::make_unique<KernelMemoryTask>(cfg, seed);
  if (cfg.kind == "text_lm") return std::make_unique<TextLmTask>(cfg, seed);
  if (cfg.kind == "ngram_noise") return std::make_unique<NgramNoiseTask>(cfg, seed);
  if (cfg.kind == "retrieval") return std::make_unique<RetrievalTask>(cfg, seed);
  if (cfg.kind == "teacher_student_ntk" || cfg.kind == "teacher_student_model")
    return std::make_unique<TeacherStudentTask>(cfg, seed);
  if (cfg.kind == "npy") return std::make_unique<NpyTask>(cfg);
  throw UserError("task.kind: unknown task '" + cfg.kind + "'");
}

const std::vector<KindKeys<TaskConfig>>& task_kinds() {
  static const std::vector<KindKeys<TaskConfig>> kinds = {{"sparse_memory", sparse_memory_keys},
                                                          {"teacher_student_ntk", teacher_student_ntk_keys},
                                                          {"teacher_student_model", teacher_student_model_keys},
                                                          {"ar_forecast", ar_forecast_keys},
                                                          {"adaptive_memory", adaptive_memory_keys},
                                                          {"kernel_memory", kernel_memory_keys},
                                                          {"text_lm", text_lm_keys},
                                                          {"ngram_noise", ngram_noise_keys},
                                                          {"retrieval", retrieval_keys},
                                                          {"npy", npy_keys}};
  return kinds;
}

}  // namespace attnlab
