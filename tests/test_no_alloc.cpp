// "No allocation inside the training step": after two warm-up steps, a step of every
// reference benchmark model (forward, loss, zero_grad, backward, optimizer) and of a few
// variants (biases, no dot product, RMS norm, the RNNs) calls operator new zero times.
// Global operator new is replaced in this test binary by a counting forwarder to malloc.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "train/bench.h"
#include "train/trainer.h"

namespace {
std::atomic<long> g_news{0};
std::atomic<bool> g_counting{false};
}  // namespace

void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace attnlab;

namespace {
// Allocations in the third step of a reference-style training step of c (train/bench.h).
long news_in_a_step(const RunConfig& c) {
  configure_threads(2);
  BenchStep step(c);
  step.fill(0);
  long news = 0;
  for (int s = 0; s < 3; ++s) {
    g_news = 0;
    g_counting = s == 2;
    step.run();
    g_counting = false;
    news = g_news;
  }
  return news;
}
}  // namespace

TEST(NoAllocation, ReferenceModelsTrainingStep) {
  for (BenchCase bc : reference_benchmarks()) {
    if (bc.cfg.model.kind == "transformer") bc.cfg.train.batch = std::min(bc.cfg.train.batch, 4);
    else bc.cfg.task.n_train = bc.cfg.train.batch = 256;
    EXPECT_EQ(news_in_a_step(bc.cfg), 0) << bc.name;
  }
}

TEST(NoAllocation, TransformerVariantsAndRnns) {
  RunConfig base = reference_benchmarks()[0].cfg;  // tiny
  base.train.batch = 4;
  for (const char* variant : {"t5", "lin", "nodot", "rms"}) {
    RunConfig c = base;
    if (std::string(variant) == "t5") c.model.rpe = Rpe::t5;
    if (std::string(variant) == "lin") c.model.rpe = Rpe::lin;
    if (std::string(variant) == "nodot") { c.model.dot_product = false; c.model.rpe = Rpe::log; }
    if (std::string(variant) == "rms") c.model.norm = Norm::rms;
    EXPECT_EQ(news_in_a_step(c), 0) << variant;
  }
  RunConfig r = reference_benchmarks().back().cfg;  // shallow, on its task
  r.task.n_train = r.train.batch = 64;
  for (const char* kind : {"indrnn", "rnn", "lstm"}) {
    RunConfig c = r;
    c.model.kind = kind;
    c.model.width = 16;
    EXPECT_EQ(news_in_a_step(c), 0) << kind;
  }
}
