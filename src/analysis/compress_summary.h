#pragma once
// Paper 1's compression measured on a run just trained (train.compress_ranks, compress_heads,
// compress_groups): the loss added by compressing its heads, written into its summary.json
// and compression.json.
#include <string>
#include <vector>

#include "core/run_config.h"

namespace attnlab {

// train.compress_ranks: the QK compression curve of the run in `dir` (its model.safetensors)
// at those ranks, into DIR/compression.json, and into DIR/summary.json as
// compress_delta.<scope>.r<r> (scope: model, early, late, l0, l1, ...), compress_saved.<scope>.r<r>
// and compress_late_minus_early.r<r>; with three layers or more also
// compress_entropy_corr.r<r>: across the layers, the Pearson correlation of the final
// attention entropy ratio (attn_entropy_ratio.l<L>) with the loss added per parameter removed
// by compressing that layer (compress_delta.l<L> / compress_saved.l<L>): negative when the
// near-uniform layers are the cheap ones. With train.compress_heads, also each head alone:
// compress_head_delta.<l0|l1|...|early|late>.r<r> (the mean loss added over those heads, one at
// a time) and compress_head_late_minus_early.r<r>. With train.compress_groups, for each G (see
// group_comparison in analysis/compress.h): compress_group_delta.g<G> and compress_group_saved.g<G>
// (heads merged into G per layer), compress_group_svd_delta.g<G>, compress_group_svd_saved.g<G>
// and compress_group_svd_rank.g<G> (the SVD removing about as many parameters), and
// compress_group_minus_svd.g<G> (< 0: grouping adds less loss). Nothing for a run that did not
// complete.
void add_compression_curve(const RunConfig& cfg, const std::string& dir);

// Whether the config asks for any of it.
inline bool wants_compression(const TrainConfig& tc) { return !tc.compress_ranks.empty() || !tc.compress_groups.empty(); }

// Pearson correlation of x and y (equal lengths); NaN with fewer than three pairs or a constant side.
double pearson(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace attnlab
