#pragma once
// The parameter arena: every parameter of a model lives in one contiguous buffer, with
// named, shaped views, and its gradient at the same offset in a twin buffer. Optimizers,
// clipping, projections and checkpoints work on the flat spans once, for every model.
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace attnlab {

struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape;
  size_t offset = 0;
  size_t size = 0;
  bool decay = false;  // weight decay applies (matrices), not to biases, norms, biases tables
};

template <class T>
class Arena {
 public:
  // Declare a parameter; returns its id. Only before allocate().
  int add(std::string name, std::vector<int64_t> shape, bool decay) {
    if (allocated_) throw std::logic_error("Arena::add after allocate");
    ParamInfo p;
    p.name = std::move(name);
    p.shape = std::move(shape);
    p.size = 1;
    for (auto d : p.shape) p.size *= size_t(d);
    p.offset = total_;
    p.decay = decay;
    total_ += p.size;
    params_.push_back(std::move(p));
    return int(params_.size()) - 1;
  }
  void allocate() {
    data_.assign(total_, T(0));
    grad_.assign(total_, T(0));
    allocated_ = true;
  }
  size_t size() const { return total_; }
  const std::vector<ParamInfo>& params() const { return params_; }
  const ParamInfo& info(int id) const { return params_[size_t(id)]; }
  int find(const std::string& name) const {
    for (size_t i = 0; i < params_.size(); ++i)
      if (params_[i].name == name) return int(i);
    return -1;
  }
  T* p(int id) { return data_.data() + params_[size_t(id)].offset; }
  const T* p(int id) const { return data_.data() + params_[size_t(id)].offset; }
  T* g(int id) { return grad_.data() + params_[size_t(id)].offset; }
  std::span<T> data() { return data_; }
  std::span<const T> data() const { return data_; }
  std::span<T> grad() { return grad_; }
  std::span<const T> grad() const { return grad_; }
  void zero_grad() { std::fill(grad_.begin(), grad_.end(), T(0)); }

 private:
  std::vector<ParamInfo> params_;
  std::vector<T> data_, grad_;
  size_t total_ = 0;
  bool allocated_ = false;
};

}  // namespace attnlab
