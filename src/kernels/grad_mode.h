#pragma once
// How a backward kernel writes an input gradient: add into it (the default, so gradients
// of shared inputs sum), or set it, so that the caller need not zero a buffer first. Zeroing
// the N x C and N x ffn gradient buffers was 2-3% of a medium step, single-threaded.

namespace attnlab {

enum class GradMode { add, set };

}  // namespace attnlab
