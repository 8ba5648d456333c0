#pragma once
// Verdicts of claims (analysis/claims.h): holds, refuted, undecided or n/a.
#include <string>

#include "analysis/claims.h"

namespace attnlab {

// A number as claims print it in their texts and notes (shortest round trip of ostream).
std::string fmt_num(double v);

// Prepends s to the claim's note ("s; earlier note").
void add_note(ClaimResult& r, const std::string& s);

// The verdict of an evaluated claim whose expectation is [lo, hi] (an end may be infinite;
// `strict`: the finite ends are excluded): holds inside, refuted outside, undecided across a
// bound, with the seeds likely to decide it (seeds_to_decide and the note).
void decide(ClaimResult& r, double lo, double hi, bool strict = false);

// The claim's requirements: every point inside its regime gates and, with require_converged,
// every completed run converged; else n/a with the reason first in the note. Clears the
// points' members (valid during evaluation only).
void check_requirements(ClaimResult& r, const ClaimSpec& c);

}  // namespace attnlab
