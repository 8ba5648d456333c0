// attnlab: the command line. Errors in input exit with status 2 and one line on stderr.
#include <chrono>
#include <iostream>
#include <thread>
#include <string>

#include "cli/cli.h"
#include "core/blas_env.h"
#include "core/dist.h"
#include "core/error.h"

namespace {
int run(int argc, char** argv);

// One line on stderr. Under mpirun every rank usually meets the same error (a bad config):
// rank 0 says it and ends the job; another rank speaks only if rank 0 has not done so within
// half a second (an error of its own), naming itself.
void say_error(const std::string& line) {
  if (attnlab::dist::size() > 1 && attnlab::dist::rank() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::cerr << "\n" << line.substr(0, 7) << " (rank " << attnlab::dist::rank() << ")" << line.substr(7) << "\n";
    return;
  }
  std::cerr << "\n" << line << "\n";
}
}  // namespace

// Under mpirun/srun every rank runs this; a rank's error ends the whole job (the others would
// wait for it in a collective), with the same exit status.
int main(int argc, char** argv) {
  attnlab::ensure_blas_coretype(argv);
  attnlab::keep_freed_memory();
  attnlab::dist::init(&argc, &argv);
  const int status = run(argc, argv);
  if (status != 0 && attnlab::dist::size() > 1) {
    std::cout.flush();
    std::cerr.flush();
    // rank 0 says the error (say_error): another rank gives it the time to, before ending the job
    if (attnlab::dist::rank() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
    attnlab::dist::abort_all(status);
  }
  attnlab::dist::finalize();
  return status;
}

namespace {
int run(int argc, char** argv) {
  CLI::App app{"attnlab: a laboratory for the theory of Transformers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(ATTNLAB_VERSION) + " (" + ATTNLAB_COMMIT + "), OpenBLAS kernels " +
                                        attnlab::blas_core_name());
  auto train = attnlab::cli::add_train(app);
  auto errors = attnlab::cli::add_errors(app);
  auto sweep = attnlab::cli::add_sweep(app);
  auto merge = attnlab::cli::add_merge(app);
  auto report = attnlab::cli::add_report(app);
  auto reproduce = attnlab::cli::add_reproduce(app);
  auto bench = attnlab::cli::add_bench(app);
  auto eval = attnlab::cli::add_eval(app);
  auto compress = attnlab::cli::add_compress(app);
  auto plan = attnlab::cli::add_plan(app);
  if (argc > 1 && argv[1][0] != '-') {  // a word that is no subcommand: say which words are
    std::string names;
    bool known = false;
    for (const CLI::App* s : app.get_subcommands({})) {
      names += (names.empty() ? "" : ", ") + s->get_name();
      known = known || s->get_name() == argv[1];
    }
    if (!known) {
      std::cerr << "attnlab: error: '" << argv[1] << "' is not a subcommand (one of: " << names << ")\n";
      return attnlab::kExitBadInput;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "attnlab: error: " << e.what() << " (see attnlab --help)\n";
    return attnlab::kExitBadInput;
  }
  if (attnlab::dist::size() > 1 && !app.got_subcommand("train") && !app.got_subcommand("sweep") &&
      !app.got_subcommand("reproduce")) {
    if (attnlab::dist::rank() == 0)
      std::cerr << "attnlab: error: " << app.get_subcommands().front()->get_name() << " runs as one process; under mpirun ("
                << attnlab::dist::size() << " ranks) only train, sweep and reproduce are spread over ranks\n";
    return attnlab::kExitBadInput;
  }
  try {
    if (app.got_subcommand("train")) return train();
    if (app.got_subcommand("errors")) return errors();
    if (app.got_subcommand("sweep")) return sweep();
    if (app.got_subcommand("merge")) return merge();
    if (app.got_subcommand("report")) return report();
    if (app.got_subcommand("reproduce")) return reproduce();
    if (app.got_subcommand("bench")) return bench();
    if (app.got_subcommand("eval")) return eval();
    if (app.got_subcommand("compress")) return compress();
    if (app.got_subcommand("plan")) return plan();
  } catch (const attnlab::UserError& e) {
    say_error(std::string("attnlab: error: ") + e.what());
    return attnlab::kExitBadInput;
  } catch (const std::bad_alloc&) {
    say_error("attnlab: error: out of memory (a smaller batch, model or data set may fit)");
    return 1;
  } catch (const std::exception& e) {  // a bug, not bad input: still one line, never an abort
    say_error(std::string("attnlab: internal error: ") + e.what() + " (please report it with the command line)");
    return 1;
  }
  return 0;
}
}  // namespace
