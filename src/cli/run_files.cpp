#include "cli/run_files.h"

#include <sys/stat.h>

#include <set>
#include <utility>

#include "common/fs.h"
#include "data/samples.h"

namespace fetafix::cli {
namespace fs = std::filesystem;

namespace {

using FileId = std::pair<dev_t, ino_t>;

bool file_id(const fs::path& path, FileId* id) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  *id = {st.st_dev, st.st_ino};
  return true;
}

// `path` lies somewhere below `folder` (both resolved as far as they exist).
bool inside(const fs::path& path, const fs::path& folder) {
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  const fs::path f = fs::weakly_canonical(fs::absolute(folder, ec), ec);
  auto pi = p.begin();
  for (auto fi = f.begin(); fi != f.end(); ++fi, ++pi) {
    if (fi->empty()) continue;  // a trailing separator
    if (pi == p.end() || *pi != *fi) return false;
  }
  return pi != p.end();
}

Status check_against_samples(const RunFiles::Entry& out, const RunFiles::SampleFolder& samples) {
  const RunFiles::Entry& folder = samples.folder;
  const bool sample_name =
      samples.images_only ? data::is_image_file_name(out.path) : data::is_sample_file_name(out.path);
  const char* kind = samples.images_only ? "image" : "sample";
  if (sample_name && inside(out.path, folder.path))
    return make_error("{}: {} is inside the {} folder {} ({}): it would be read as a{} {} next time", out.path.string(),
                      out.what, kind, folder.path.string(), folder.what, samples.images_only ? "n" : "", kind);
  FileId out_id;
  if (!file_id(out.path, &out_id)) return {};
  auto listed = data::list_samples(folder.path, samples.images_only);
  if (!listed.ok()) return {};  // the run reports a bad sample folder itself, after the models
  for (const auto& sample : *listed) {
    FileId id;
    if (file_id(sample.path, &id) && id == out_id)
      return make_error("{}: refusing to overwrite the {} {} of {} ({})", out.path.string(), kind,
                        sample.path.string(), folder.what, out.what);
  }
  return {};
}

Status check_output_folder(const RunFiles::Entry& dir, const RunFiles& files) {
  std::error_code ec;
  for (const auto& in : files.inputs)
    if (same_file(dir.path, in.path))
      return make_error("{}: {} names {} ({}), not a folder", dir.path.string(), dir.what, in.what, in.path.string());
  if (fs::exists(dir.path, ec)) {
    if (!fs::is_directory(dir.path, ec)) return make_error("{}: {} must be a folder; this is a file", dir.path.string(), dir.what);
    // Probe with a file name no output uses: the folder itself must take new files.
    if (auto st = check_writable(dir.path / ".fetafix-folder-check"); !st.ok())
      return make_error("{}: {}: cannot write files into this folder", dir.path.string(), dir.what);
    return {};
  }
  // Created at the end; its nearest existing ancestor must take a new folder.
  fs::path ancestor = dir.path.parent_path();
  while (!ancestor.empty() && !fs::exists(ancestor, ec)) ancestor = ancestor.parent_path();
  if (ancestor.empty()) ancestor = ".";
  if (!fs::is_directory(ancestor, ec) || !check_writable(ancestor / ".fetafix-folder-check").ok())
    return make_error("{}: {}: cannot create this folder in {}", dir.path.string(), dir.what, ancestor.string());
  return {};
}

}  // namespace

void RunFiles::input(std::string what, const fs::path& path) {
  if (!path.empty()) inputs.push_back({std::move(what), path});
}
void RunFiles::sample_folder(std::string what, const fs::path& path, bool images_only) {
  if (!path.empty()) sample_folders.push_back({{std::move(what), path}, images_only});
}
void RunFiles::output(std::string what, const fs::path& path) {
  if (!path.empty()) outputs.push_back({std::move(what), path});
}
void RunFiles::output_folder(std::string what, const fs::path& path) {
  if (!path.empty()) output_folders.push_back({std::move(what), path});
}

Status check_run_files(const RunFiles& files) {
  for (size_t i = 0; i < files.outputs.size(); ++i) {
    const auto& out = files.outputs[i];
    for (const auto& in : files.inputs)
      if (same_file(out.path, in.path))
        return make_error("{}: refusing to overwrite {} ({})", out.path.string(), in.what, out.what);
    for (size_t j = 0; j < i; ++j)
      if (same_file(out.path, files.outputs[j].path))
        return make_error("{}: {} names the same file as {}; every output needs its own file", out.path.string(),
                          out.what, files.outputs[j].what);
    if (auto st = check_writable(out.path); !st.ok())
      return make_error("{} ({})", st.error().message, out.what);
    for (const auto& folder : files.sample_folders) FETAFIX_TRY_STATUS(check_against_samples(out, folder));
  }
  for (const auto& dir : files.output_folders) FETAFIX_TRY_STATUS(check_output_folder(dir, files));
  return {};
}

const CLI::Validator& non_empty_path() {
  static const CLI::Validator validator(
      [](std::string& value) { return value.empty() ? std::string("empty file name") : std::string(); }, "PATH");
  return validator;
}

}  // namespace fetafix::cli
