#pragma once
// One function per subcommand; main.cpp registers them. The CLI only parses, calls one
// library function and prints.
#include <CLI/CLI.hpp>

namespace attnlab::cli {

// Registers `train` on app; the returned callback runs it after parsing.
std::function<int()> add_train(CLI::App& app);
// Registers `sweep` and `merge`.
std::function<int()> add_sweep(CLI::App& app);
std::function<int()> add_merge(CLI::App& app);
// Registers `report` and `reproduce`.
std::function<int()> add_report(CLI::App& app);
std::function<int()> add_reproduce(CLI::App& app);
// Registers `bench` (the reference benchmark set).
std::function<int()> add_bench(CLI::App& app);
// Registers `errors` (paper 3's approximation and linearization errors against m).
std::function<int()> add_errors(CLI::App& app);
// Registers `eval` (a checkpoint on its task's validation and test sets).
std::function<int()> add_eval(CLI::App& app);
// Registers `compress` (truncated-SVD head compression of a checkpoint).
std::function<int()> add_compress(CLI::App& app);
// Registers `plan` (the allocation planner).
std::function<int()> add_plan(CLI::App& app);

}  // namespace attnlab::cli
