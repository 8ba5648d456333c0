// attnlab: the command line. Errors in input exit with status 2 and one line on stderr.
#include <iostream>
#include <string>

#include "cli/cli.h"
#include "core/blas_env.h"
#include "core/error.h"

int main(int argc, char** argv) {
  attnlab::ensure_blas_coretype(argv);
  attnlab::keep_freed_memory();
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
    std::cerr << "\nattnlab: error: " << e.what() << "\n";
    return attnlab::kExitBadInput;
  } catch (const std::bad_alloc&) {
    std::cerr << "\nattnlab: error: out of memory (a smaller batch, model or data set may fit)\n";
    return 1;
  } catch (const std::exception& e) {  // a bug, not bad input: still one line, never an abort
    std::cerr << "\nattnlab: internal error: " << e.what() << " (please report it with the command line)\n";
    return 1;
  }
  return 0;
}
