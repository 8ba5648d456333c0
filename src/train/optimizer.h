#pragma once
// Optimizers and schedules over the arena's flat parameter and gradient spans.
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/run_config.h"
#include "io/safetensors.h"

namespace attnlab {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update of params with grads at learning rate lr. decay[i] = 1 where weight decay applies.
  virtual void step(std::span<float> params, std::span<const float> grads, double lr) = 0;
  // The state a resumed run needs (moments, step count) as tensors "opt.*" of a checkpoint;
  // load checks names and sizes and throws UserError naming `where` on a mismatch.
  virtual void save(TensorFile& f) const = 0;
  virtual void load(const TensorFile& f, const std::string& where) = 0;
};

// SGD with momentum: v = mu v + g + wd p;  p -= lr v
class Sgd : public Optimizer {
 public:
  Sgd(size_t n, double momentum, double wd, std::vector<uint8_t> decay);
  void step(std::span<float> params, std::span<const float> grads, double lr) override;
  void save(TensorFile& f) const override;
  void load(const TensorFile& f, const std::string& where) override;

 private:
  std::vector<float> v_;
  double mu_, wd_;
  std::vector<uint8_t> decay_;
};

// AdamW (Loshchilov & Hutter): bias-corrected moments, decoupled weight decay.
class AdamW : public Optimizer {
 public:
  AdamW(size_t n, double b1, double b2, double eps, double wd, std::vector<uint8_t> decay);
  void step(std::span<float> params, std::span<const float> grads, double lr) override;
  void save(TensorFile& f) const override;
  void load(const TensorFile& f, const std::string& where) override;

 private:
  std::vector<float> m_, v_;
  double b1_, b2_, eps_, wd_;
  int64_t t_ = 0;
  std::vector<uint8_t> decay_;
};

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& cfg, size_t n, std::vector<uint8_t> decay);

// Learning rate at 0-based step: linear warmup, then constant or cosine down to min_lr.
double scheduled_lr(const TrainConfig& cfg, int64_t step);

// Global L2 norm of a gradient span (in double).
double global_norm(std::span<const float> g);

}  // namespace attnlab
