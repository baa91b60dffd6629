// What one run reads and writes, checked before any work starts (docs/cli.md, "Files"): every
// output can be written, is not an input (a model, a preset, patch or --input file, a sample of a
// sample folder), and is not another output of the same run.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <CLI/App.hpp>

#include "common/result.h"

namespace fetafix::cli {

struct RunFiles {
  struct Entry {
    std::string what;  // "--json", "the Target model": how messages name it
    std::filesystem::path path;
  };
  struct SampleFolder {
    Entry folder;
    bool images_only = true;  // --images: only images are samples; --data: every sample kind
  };
  std::vector<Entry> inputs;                 // files read: never written
  std::vector<SampleFolder> sample_folders;  // every sample listed in them is an input too
  std::vector<Entry> outputs;                // files written
  std::vector<Entry> output_folders;         // folders files are written into (--model-explorer)

  // An empty path means "not asked for" and is left out.
  void input(std::string what, const std::filesystem::path& path);
  void sample_folder(std::string what, const std::filesystem::path& path, bool images_only);
  void output(std::string what, const std::filesystem::path& path);
  void output_folder(std::string what, const std::filesystem::path& path);
};

// Errors, each one line naming the file and the flag: an output that check_writable refuses;
// one that is the same file as an input, a sample of a sample folder or another output; a
// sample-named output inside a sample folder (the next run would read it as a sample: an image
// name in an --images folder, any sample name in a --data folder); an output folder that is an
// existing file or cannot be written to.
Status check_run_files(const RunFiles& files);

// For every option naming an output: an empty value is a usage error ("--json ''" would
// otherwise silently write nothing).
const CLI::Validator& non_empty_path();

}  // namespace fetafix::cli
