// The options every Source-vs-Target command shares (compare, localize, ...), and loading
// what they name, with the one-line errors of docs/cli.md.
#pragma once

#include <optional>
#include <string>

#include <tbb/global_control.h>

#include <CLI/App.hpp>

#include "common/exit_codes.h"
#include "cli/run_files.h"
#include "common/result.h"
#include "compare/compare.h"
#include "model/model.h"

namespace fetafix::cli {

struct PairArgs {
  std::string source_path, target_path, images;
  std::string data;                  // --data DIR: samples of any kind
  std::string task;                  // --task KIND[:key=value,...]
  std::vector<std::string> inputs;   // --input NAME=FILE.npy, repeatable
  int sample_rate = 0;               // --sample-rate HZ for .wav samples
  std::string source_preprocess = "auto", target_preprocess = "auto";
  std::string source_override, target_override;
  int top_k = 5;
  bool top_k_given = false;  // --top-k on the command line: then it may not exceed the class count
  std::optional<int64_t> label_offset;
  int threads = 0;
  int batch_size = 8;
  std::string json_path;
  bool strict = false, quiet = false;

  // The sample folder: --data, or --images.
  const std::string& samples_dir() const { return data.empty() ? images : data; }
};

// The options of every pair command (compare, localize, repair): any task, any sample kind.
void add_pair_options(CLI::App* cmd, PairArgs& args);

struct LoadedPair {
  model::Model source, target;
  compare::ModelSide source_side, target_side;  // point into source/target: keep LoadedPair alive
  compare::CompareOptions compare;
  // Under mpirun: worker threads of this rank, so that ranks x threads fill the cores, no more.
  std::optional<tbb::global_control> thread_limit;
};

// The files a pair command reads (both models, preset files, the image folder) and writes
// (--json); commands add their own outputs and check them all with check_run_files first.
RunFiles pair_run_files(const PairArgs& args);

// Loads both models and presets, and checks before any work what can be checked without running
// them: input sizes against the tensor limit, --top-k and --label-offset against the class counts
// the models declare. Output paths are checked before this, with check_run_files.
Result<std::unique_ptr<LoadedPair>> load_pair(const PairArgs& args);

// The documented exit code (docs/cli.md) of an error of this kind: bad input 2, internal 4.
int exit_code_for(ErrorKind kind);
// Prints "fetafix: <message>" on stderr and returns the exit code of the error's kind.
int fail(const Error& e);

}  // namespace fetafix::cli
