// Usage: bench_ranking_quality [--corpus DIR] [--images N] [--similar S] [--dissimilar D]
//                              [--repeats R] [--replay-images I] [--threads T] [--cases a,b]
// For every single-fault case of the corpus (tools/fetafix-corpus, docs/corpus.md) whose fault
// sits in layers (WB, LH, CG): runs both models over the first N photos of
// images/imagenet-samples (the case's presets), matches the core layers, and ranks them twice:
// by the activation analysis (the paper's Kruskal-Wallis ranking) and by layer-local replay (on
// up to I disagreeing images). A matched layer is planted when the fault's ground truth (benign
// rewrites left out) names its Source or Target node, or a node of its replayed Target region (an
// added Pad). A rank of -1 means not ranked (the activation analysis skips layers whose shapes
// differ, e.g. after dropped pads). Prints per case
// the best rank of a planted layer under each, and how many cases put a planted layer first.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <tbb/parallel_for.h>

#include "compare/compare.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "localize/activation_analysis.h"
#include "localize/local_replay.h"
#include "match/match.h"
#include "model/model.h"

using namespace fetafix;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

struct Settings {
  fs::path corpus = FETAFIX_BUILD_DIR "/corpus";
  fs::path images;
  size_t max_images = 200, replay_images = 32;
  std::set<std::string> cases;
  localize::ActivationAnalysisOptions analysis;
};

bool parse(int argc, char** argv, Settings& s, std::string& error) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--corpus") s.corpus = v;
    else if (a == "--images") s.max_images = std::strtoul(v, nullptr, 10);
    else if (a == "--similar") s.analysis.max_similar = std::strtoul(v, nullptr, 10);
    else if (a == "--dissimilar") s.analysis.max_dissimilar = std::strtoul(v, nullptr, 10);
    else if (a == "--repeats") s.analysis.repeats = std::atoi(v);
    else if (a == "--replay-images") s.replay_images = std::max<size_t>(1, std::strtoul(v, nullptr, 10));
    else if (a == "--threads") s.analysis.threads = std::atoi(v);
    else if (a == "--cases") {
      std::stringstream list(v);
      for (std::string c; std::getline(list, c, ',');) s.cases.insert(c);
    } else return error = "unknown option " + a, false;
  }
  return true;
}

// A layer fault type among the case's faults ("wb:...", "lh:...", "cg:...").
bool has_layer_fault(const json& c) {
  for (const auto& f : c.at("faults")) {
    const std::string spec = f.get<std::string>();
    if (spec.rfind("wb:", 0) == 0 || spec.rfind("lh:", 0) == 0 || spec.rfind("cg:", 0) == 0) return true;
  }
  return false;
}

std::set<std::string> planted_nodes(const json& c) {
  std::set<std::string> nodes;
  for (const auto& in : c.at("ground_truth").at("injections"))
    if (in.contains("nodes") && !in.value("benign", false))  // the harmless rewrites around a fault are no fault
      for (const auto& n : in.at("nodes")) nodes.insert(n.get<std::string>());
  return nodes;
}

Result<data::Preset> case_preset(const fs::path& dir, const std::string& spec) {
  return data::resolve_preset(spec == "preset.json" ? (dir / spec).string() : spec);
}

// The chosen images of `files` preprocessed with a bound preset, as one [n, ...] tensor.
Result<Tensor> preprocess_files(const std::vector<fs::path>& files, const data::Preset& preset) {
  const bool nchw = preset.layout == data::Layout::kNCHW;
  std::vector<int64_t> shape{static_cast<int64_t>(files.size())};
  if (nchw) shape.insert(shape.end(), {3, preset.height, preset.width});
  else shape.insert(shape.end(), {preset.height, preset.width, 3});
  Tensor t(preset.dtype, shape);
  const size_t per_image = files.empty() ? 0 : t.bytes.size() / files.size();
  std::vector<std::string> errors(files.size());
  tbb::parallel_for(size_t{0}, files.size(), [&](size_t i) {
    auto image = data::decode_image(files[i]);
    if (!image.ok()) return void(errors[i] = image.error().message);
    data::preprocess_into(*image, preset, t.bytes.data() + i * per_image);
  });
  for (const auto& e : errors)
    if (!e.empty()) return make_error("{}", e);
  return t;
}

Tensor rows_of(const Tensor& all, const std::vector<size_t>& rows) {
  std::vector<int64_t> shape = all.shape;
  shape[0] = static_cast<int64_t>(rows.size());
  Tensor out(all.dtype, shape);
  const size_t per = all.bytes.size() / static_cast<size_t>(all.shape[0]);
  for (size_t k = 0; k < rows.size(); ++k)
    std::copy_n(all.bytes.data() + rows[k] * per, per, out.bytes.data() + k * per);
  return out;
}

struct CaseResult {
  std::string name;
  size_t planted = 0, pairs = 0, disagreeing = 0;
  int best_kw = -1, best_replay = -1;
  std::string replay_error;          // the best-ranked planted layer's relative L2 error (or its status)
  double largest_unplanted = 0;      // the largest relative L2 error of a layer that is not planted
  std::string note;
  double seconds = 0;
};

Result<CaseResult> run_case(const fs::path& dir, const json& c, const Settings& s) {
  CaseResult r;
  r.name = c.at("name").get<std::string>();
  const auto t0 = Clock::now();
  FETAFIX_ASSIGN_OR_RETURN(auto source, model::load_model(dir / "source.onnx"));
  FETAFIX_ASSIGN_OR_RETURN(auto target, model::load_model(dir / "target.onnx"));
  FETAFIX_ASSIGN_OR_RETURN(auto sp, case_preset(dir, c.at("source_preprocess").get<std::string>()));
  FETAFIX_ASSIGN_OR_RETURN(auto tp, case_preset(dir, c.at("target_preprocess").get<std::string>()));
  const fs::path image_dir = fs::path(FETAFIX_BUILD_DIR) / "ranking-quality-images";
  compare::CompareOptions co;
  co.threads = s.analysis.threads;
  co.progress = ProgressMode::kQuiet;
  FETAFIX_ASSIGN_OR_RETURN(auto detection, compare::compare_models({&source.proto, "source", sp},
                                                                   {&target.proto, "target", tp}, image_dir, co));
  FETAFIX_ASSIGN_OR_RETURN(auto files, data::list_images(image_dir));
  std::vector<bool> agree;
  std::vector<size_t> disagreeing;
  for (size_t i = 0; i < detection.records.size(); ++i) {
    agree.push_back(detection.records[i].agree);
    if (!agree.back()) disagreeing.push_back(i);
  }
  r.disagreeing = disagreeing.size();
  FETAFIX_ASSIGN_OR_RETURN(auto s_in, preprocess_files(files, detection.source_preset));
  FETAFIX_ASSIGN_OR_RETURN(auto t_in, preprocess_files(files, detection.target_preset));
  FETAFIX_ASSIGN_OR_RETURN(auto matching, match::match_models(source.proto, target.proto));
  r.pairs = matching.pairs.size();
  FETAFIX_ASSIGN_OR_RETURN(auto kw, localize::analyze_layer_activations(source.proto, target.proto, matching.pairs,
                                                                         s_in, t_in, agree, s.analysis));
  std::vector<size_t> replay_rows = disagreeing;
  if (replay_rows.empty())
    for (size_t i = 0; i < files.size(); ++i) replay_rows.push_back(i);
  if (replay_rows.size() > s.replay_images) replay_rows.resize(s.replay_images);
  localize::ReplayOptions ro;
  ro.threads = s.analysis.threads;
  FETAFIX_ASSIGN_OR_RETURN(auto replay, localize::replay_matched_layers(source.proto, target.proto, matching.pairs,
                                                                         rows_of(s_in, replay_rows),
                                                                         rows_of(t_in, replay_rows), ro));
  const auto truth = planted_nodes(c);
  std::set<std::string> planted_sources;
  for (const auto& l : replay.ranked) {
    bool planted = truth.count(l.source_node) || truth.count(l.target_node);
    for (const auto& n : l.error.target_nodes) planted = planted || truth.count(n);
    if (!planted) {
      if (l.error.status == localize::ReplayStatus::kMeasured)
        r.largest_unplanted = std::max(r.largest_unplanted, l.error.relative_l2);
      continue;
    }
    planted_sources.insert(l.source_node);
    if (l.rank >= 0 && (r.best_replay < 0 || l.rank < r.best_replay)) {
      r.best_replay = l.rank;
      r.replay_error = l.error.status == localize::ReplayStatus::kMeasured
                           ? fmt::format("{:.2g}", l.error.relative_l2)
                           : std::string(localize::replay_status_name(l.error.status));
    }
  }
  for (const auto& l : kw.ranked)
    if (planted_sources.count(l.source_node) && l.rank >= 0 && (r.best_kw < 0 || l.rank < r.best_kw)) r.best_kw = l.rank;
  r.planted = planted_sources.size();
  if (!kw.skipped_reason.empty()) r.note = "KW: " + kw.skipped_reason;
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

// The first N photos, linked into one folder so compare_models sees exactly them.
Status link_images(const fs::path& from, size_t n) {
  FETAFIX_ASSIGN_OR_RETURN(auto files, data::list_images(from));
  const fs::path dir = fs::path(FETAFIX_BUILD_DIR) / "ranking-quality-images";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return make_error("{}: {}", dir.string(), ec.message());
  for (size_t i = 0; i < std::min(n, files.size()); ++i) {
    fs::create_symlink(files[i], dir / files[i].filename(), ec);
    if (ec) return make_error("{}: {}", (dir / files[i].filename()).string(), ec.message());
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  std::string error;
  if (!parse(argc, argv, s, error)) return std::fprintf(stderr, "bench_ranking_quality: %s\n", error.c_str()), 2;
  const fs::path assets = std::getenv("FETAFIX_ASSETS") ? std::getenv("FETAFIX_ASSETS") : FETAFIX_DEFAULT_ASSETS;
  if (!fs::exists(s.corpus / "index.json") || !fs::exists(assets / "images/imagenet-samples")) {
    std::fprintf(stderr, "bench_ranking_quality: skipped: no corpus at %s (build/tools/fetafix-corpus %s) or no "
                         "photos in %s\n", s.corpus.c_str(), s.corpus.c_str(), assets.c_str());
    return 0;
  }
  if (auto st = link_images(assets / "images/imagenet-samples", s.max_images); !st.ok())
    return std::fprintf(stderr, "bench_ranking_quality: %s\n", st.error().message.c_str()), 2;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(s.corpus))
    if (e.is_directory() && fs::exists(e.path() / "case.json")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  size_t cases = 0, kw_first = 0, replay_first = 0;
  std::printf("%-36s %5s %7s %8s %7s %11s %20s %14s %6s\n", "case", "pairs", "planted", "disagree", "KW best",
              "replay best", "its error", "largest other", "s");
  for (const auto& dir : dirs) {
    std::ifstream in(dir / "case.json");
    const json c = json::parse(in);
    if (c.at("kind") != "single" || !has_layer_fault(c)) continue;
    if (!s.cases.empty() && !s.cases.count(c.at("name").get<std::string>())) continue;
    auto r = run_case(dir, c, s);
    if (!r.ok()) {
      std::printf("%-40s error: %s\n", dir.filename().c_str(), r.error().message.c_str());
      continue;
    }
    ++cases;
    kw_first += r->best_kw == 0;
    replay_first += r->best_replay == 0;
    std::printf("%-36s %5zu %7zu %8zu %7d %11d %20s %14.2g %6.1f %s\n", r->name.c_str(), r->pairs, r->planted,
                r->disagreeing, r->best_kw, r->best_replay, r->replay_error.c_str(), r->largest_unplanted, r->seconds,
                r->note.c_str());
    std::fflush(stdout);
  }
  std::printf("planted layer ranked first: KW %zu of %zu cases, local replay %zu of %zu cases\n", kw_first, cases,
              replay_first, cases);
  return 0;
}
