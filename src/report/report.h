#pragma once
// The report of one or more sweeps: OUT/index.html (one page, offline), per experiment its
// description, figures (SVG + CSV), claims table and runs table; a summary of every claim and
// the environment at the top; OUT/claims.json with one object per claim.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/claims.h"

namespace attnlab {

// Each input is a sweep directory (with runs.db) or a directory holding sweep directories.
std::vector<ClaimResult> write_report(const std::vector<std::string>& inputs, const std::string& out);

// The claims of the sweeps in `inputs` (as write_report reads them), evaluated, nothing written.
std::vector<ClaimResult> sweep_claims(const std::vector<std::string>& inputs);

// One sweep store (DIR/runs.db) read as the report reads it: every run its stored spec gives,
// stored or not ("pending"), as an observation; the stored spec in *spec if given.
std::vector<Observation> store_observations(const std::string& dir, ExperimentSpec* spec = nullptr);

// Claims as in OUT/claims.json: one object per claim.
nlohmann::ordered_json claims_json(const std::vector<ClaimResult>& claims);

// A plain-text table of claims for the terminal, ending with verdict_counts.
std::string claims_table(const std::vector<ClaimResult>& claims);

// "H hold, R refuted, U undecided, N n/a of M claims".
std::string verdict_counts(const std::vector<ClaimResult>& claims);

}  // namespace attnlab
