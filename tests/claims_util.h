#pragma once
// Shared by the claim tests: a synthetic spec holding one claim.
#include "analysis/claims.h"

namespace attnlab {

inline ExperimentSpec spec_with(const ClaimSpec& c) {
  ExperimentSpec s;
  s.name = "synthetic";
  s.result = "p3";
  s.claims = {c};
  return s;
}

}  // namespace attnlab
