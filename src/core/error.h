#pragma once
// Errors. A UserError is bad input (config, data, checkpoint, command line): the CLI prints
// its one-line message and exits with status 2. Anything else is a bug.
#include <stdexcept>
#include <string>

namespace attnlab {

struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr int kExitBadInput = 2;

}  // namespace attnlab
