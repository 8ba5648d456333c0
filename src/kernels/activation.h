#pragma once
// Pointwise activations: gelu (exact, erf), relu, tanh. Float uses the vectorizable
// fast_erf/fast_tanh (kernels/fast_math.h; libm's erff was 12% of a medium training step),
// double uses libm (the gradient checks).
#include <cstddef>

#include "kernels/grad_mode.h"

namespace attnlab {

enum class Act { gelu, relu, tanh };

// y = act(x)
template <class T>
void act_forward(Act a, T* y, const T* x, size_t n);
// dx (+)= dy * act'(x); dx may be dy (in place) with GradMode::set.
template <class T>
void act_backward(Act a, T* dx, const T* dy, const T* x, size_t n, GradMode mode = GradMode::add);

}  // namespace attnlab
