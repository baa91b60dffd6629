// fetafix command line. Each subcommand lives in its own file; this one wires them up and
// maps every failure to a one-line message and a documented exit code (docs/cli.md).
#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/exit_codes.h"
#include "common/limits.h"
#include "common/result.h"
#include "mpi/job.h"

namespace {

// Ranks other than 0 print nothing: every rank holds the same results, and one copy is enough.
void silence() {
  std::fflush(stdout);
  std::fflush(stderr);
  (void)std::freopen("/dev/null", "w", stdout);
  (void)std::freopen("/dev/null", "w", stderr);
}

// --max-image-pixels / --max-tensor-bytes, global options (accepted before or after the
// subcommand), over the FETAFIX_MAX_* environment variables, over the defaults.
struct LimitOptions {
  fetafix::ResourceLimits limits;
  std::optional<fetafix::Error> environment_error;
};

const CLI::Validator kPositive(
    [](std::string& v) { return v.find_first_not_of("0123456789") == std::string::npos && v.find_first_not_of('0') != std::string::npos
                                    ? std::string()
                                    : "must be a positive integer, got '" + v + "'"; },
    "N");

void add_limit_options(CLI::App& app, LimitOptions& o) {
  auto env = fetafix::limits_from_environment();
  if (env.ok()) o.limits = *env;
  else o.environment_error = env.error();
  app.add_option("--max-image-pixels", o.limits.max_image_pixels,
                 std::string("Refuse images with more pixels than this (width x height), before decoding; env ") +
                     fetafix::kMaxImagePixelsEnv)
      ->capture_default_str()->check(kPositive);
  app.add_option("--max-tensor-bytes", o.limits.max_tensor_bytes,
                 std::string("Refuse model inputs (and input batches) declared larger than this; env ") +
                     fetafix::kMaxTensorBytesEnv)
      ->capture_default_str()->check(kPositive);
}

}  // namespace

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) must make a write fail with EFBIG, reported as an error naming
  // the file, rather than kill the process half way.
  std::signal(SIGXFSZ, SIG_IGN);
  const fetafix::mpi::Job job(argc, argv);
  if (!job.error().empty()) {
    std::fprintf(stderr, "fetafix: %s\n", job.error().c_str());
    return fetafix::kExitBadInput;
  }
  fetafix::cli::set_ranks(job.comm());
  if (!job.comm().is_root()) silence();
  CLI::App app{"fetafix: find and repair the faults a converter introduces into a model.\n"
               "Compares a Source ONNX model with its converted Target on a folder of images."};
  app.set_version_flag("--version", FETAFIX_VERSION_STRING);
  app.require_subcommand(1);
  app.fallthrough();
  LimitOptions limits;
  add_limit_options(app, limits);
  fetafix::cli::CommandRunner runner;
  fetafix::cli::add_compare_command(app, runner);
  fetafix::cli::add_localize_command(app, runner);
  fetafix::cli::add_repair_command(app, runner);
  fetafix::cli::add_apply_command(app, runner);
  fetafix::cli::add_inject_command(app, runner);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "fetafix: %s (see --help)\n", e.what());
    return fetafix::kExitBadInput;
  }
  if (limits.environment_error) {
    std::fprintf(stderr, "fetafix: %s\n", limits.environment_error->message.c_str());
    return fetafix::kExitBadInput;
  }
  fetafix::set_resource_limits(limits.limits);
  // Commands that do not read samples have nothing to share: rank 0 does them alone.
  const bool sharded = app.got_subcommand("compare") || app.got_subcommand("localize") || app.got_subcommand("repair");
  if (!sharded && !job.comm().is_root()) return fetafix::kExitOk;
  try {
    const int code = runner.run();
    // What the ranks exchanged, after a run that finished (a failed one says only why).
    const bool finished = code != fetafix::kExitBadInput && code != fetafix::kExitInternal;
    if (job.comm().size() > 1 && finished)
      std::fprintf(stderr, "fetafix: mpi: %s\n", job.describe_communication().c_str());
    return code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fetafix: internal error: %s\n", e.what());
    return fetafix::kExitInternal;
  }
}
