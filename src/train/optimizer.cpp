#include "train/optimizer.h"

#include <cstring>

#include "core/error.h"

namespace attnlab {

Sgd::Sgd(size_t n, double momentum, double wd, std::vector<uint8_t> decay)
    : v_(n, 0.f), mu_(momentum), wd_(wd), decay_(std::move(decay)) {}

void Sgd::step(std::span<float> p, std::span<const float> g, double lr) {
  const float mu = float(mu_), wd = float(wd_), a = float(lr);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < p.size(); ++i) {
    const float gi = g[i] + (decay_[i] ? wd * p[i] : 0.f);
    v_[i] = mu * v_[i] + gi;
    p[i] -= a * v_[i];
  }
}

namespace {
void load_f32(const TensorFile& f, const std::string& name, std::vector<float>& out, const std::string& where) {
  auto it = f.tensors.find(name);
  if (it == f.tensors.end()) throw UserError(where + ": tensor '" + name + "' is missing (not a checkpoint of this optimizer)");
  auto v = it->second.as_f32(where + ": tensor '" + name + "'");
  if (v.size() != out.size())
    throw UserError(where + ": tensor '" + name + "' has " + std::to_string(v.size()) + " values, the model has " + std::to_string(out.size()));
  out = std::move(v);
}
}  // namespace

void Sgd::save(TensorFile& f) const { f.add_f32("opt.v", {int64_t(v_.size())}, v_.data()); }
void Sgd::load(const TensorFile& f, const std::string& where) { load_f32(f, "opt.v", v_, where); }

void AdamW::save(TensorFile& f) const {
  f.add_f32("opt.m", {int64_t(m_.size())}, m_.data());
  f.add_f32("opt.v", {int64_t(v_.size())}, v_.data());
  f.add("opt.t", "I64", {1}, &t_, sizeof t_);
}
void AdamW::load(const TensorFile& f, const std::string& where) {
  load_f32(f, "opt.m", m_, where);
  load_f32(f, "opt.v", v_, where);
  auto it = f.tensors.find("opt.t");
  if (it == f.tensors.end() || it->second.dtype != "I64" || it->second.numel() != 1)
    throw UserError(where + ": tensor 'opt.t' is missing or not one I64 (not a checkpoint of this optimizer)");
  std::memcpy(&t_, it->second.bytes.data(), sizeof t_);
  if (t_ < 0) throw UserError(where + ": tensor 'opt.t' is negative");
}

AdamW::AdamW(size_t n, double b1, double b2, double eps, double wd, std::vector<uint8_t> decay)
    : m_(n, 0.f), v_(n, 0.f), b1_(b1), b2_(b2), eps_(eps), wd_(wd), decay_(std::move(decay)) {}

void AdamW::step(std::span<float> p, std::span<const float> g, double lr) {
  ++t_;
  const float b1 = float(b1_), b2 = float(b2_), eps = float(eps_);
  const float c1 = float(1.0 / (1.0 - std::pow(b1_, double(t_))));
  const float c2 = float(1.0 / (1.0 - std::pow(b2_, double(t_))));
  const float a = float(lr), wd = float(wd_ * lr);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < p.size(); ++i) {
    m_[i] = b1 * m_[i] + (1.f - b1) * g[i];
    v_[i] = b2 * v_[i] + (1.f - b2) * g[i] * g[i];
    if (decay_[i]) p[i] -= wd * p[i];
    p[i] -= a * (m_[i] * c1) / (std::sqrt(v_[i] * c2) + eps);
  }
}

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, size_t n, std::vector<uint8_t> decay) {
  if (c.optimizer == "sgd") return std::make_unique<Sgd>(n, c.momentum, c.weight_decay, std::move(decay));
  // Plain (projected) gradient descent: no momentum; the projection is applied by the trainer.
  if (c.optimizer == "gd" || c.optimizer == "projected_gd" || c.optimizer == "projected_sgd")
    return std::make_unique<Sgd>(n, 0.0, c.weight_decay, std::move(decay));
  return std::make_unique<AdamW>(n, c.beta1, c.beta2, c.eps, c.weight_decay, std::move(decay));
}

double scheduled_lr(const TrainConfig& c, int64_t step) {
  if (c.lr_schedule == "inv_sqrt_total") return c.lr / std::sqrt(double(c.steps));  // eta0 / sqrt(tau)
  if (c.warmup > 0 && step < c.warmup) return c.lr * double(step + 1) / double(c.warmup);
  if (c.lr_schedule == "cosine") {
    const double span = double(std::max<int64_t>(1, c.steps - c.warmup));
    const double prog = std::min(1.0, double(step - c.warmup) / span);
    return c.min_lr + (c.lr - c.min_lr) * 0.5 * (1.0 + std::cos(3.14159265358979323846 * prog));
  }
  return c.lr;
}

double global_norm(std::span<const float> g) {
  double s = 0;
  for (float v : g) s += double(v) * v;
  return std::sqrt(s);
}

}  // namespace attnlab
