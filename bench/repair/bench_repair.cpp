// Usage: bench_repair partial [--images N] [--repeats R] [--depth F] [--threads T] [--batch B]
//        bench_repair fp16    [--images N] [--threads T] [--batch B] [--time-limit S]
//        bench_repair passes  [--images N] [--repeats R] [--threads T] [--batch B]
// Models: the float MobileNetV2 derived from the QDQ asset in ../shared/assets (FETAFIX_ASSETS)
// by inject::dequantize_qdq; photos: the first N of images/imagenet-samples (sorted), fed as
// raw uint8 RGB stretched to 224x224 (the `uint8` preset).
//
// partial: times LabelEvaluator scores of a candidate whose only change is the weight of the
//   Conv at depth F (0..1 among the Convs; default 0.8, i.e. the last third), full run against
//   partial re-execution from cached frontier values (first call with the cache fill, then
//   warm), side by side in one process; prints the medians and their ratio.
// fp16: the issue-4 goal: repair a Target whose every weight is rounded through float16
//   (`fetafix inject ... --fault wb:fp16`) over the N images; prints wall time per phase.
// passes: the time of one full evaluator pass (session + inference + tally) of the float model
//   and of its fp16-rounded copy, alternated R times; for tuning the executor (batch, threads).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "compare/evaluator.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "inject/dequantize.h"
#include "inject/inject.h"
#include "model/model.h"
#include "model/weights.h"
#include "repair/driver.h"

using namespace fetafix;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "bench_repair: %s\n", message.c_str());
  return 2;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// A folder of links to the first n images (sorted), so every tool sees exactly that set.
Result<fs::path> image_subset(const fs::path& dir, size_t n) {
  FETAFIX_ASSIGN_OR_RETURN(auto files, data::list_images(dir));
  if (n >= files.size()) return dir;
  fs::path out = fs::temp_directory_path() / ("fetafix_bench_repair_" + std::to_string(n));
  std::error_code ec;
  fs::remove_all(out, ec);
  fs::create_directories(out);
  for (size_t i = 0; i < n; ++i) fs::create_symlink(files[i], out / files[i].filename());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return fail("usage: bench_repair partial|fp16 [--images N] [--repeats R] [--depth F] [--threads T] [--batch B]");
  const std::string mode = argv[1];
  fs::path assets = std::getenv("FETAFIX_ASSETS") ? std::getenv("FETAFIX_ASSETS") : FETAFIX_DEFAULT_ASSETS;
  size_t images = mode == "fp16" ? 1000 : 200;
  int repeats = 3, threads = 0, batch = 0;
  double depth = 0.8, time_limit = 600;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--images") images = std::stoul(v);
    else if (k == "--repeats") repeats = std::stoi(v);
    else if (k == "--depth") depth = std::stod(v);
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--batch") batch = std::stoi(v);
    else if (k == "--time-limit") time_limit = std::stod(v);
    else return fail("unknown option " + k);
  }
  const fs::path qdq_path = assets / "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx";
  const fs::path photos = assets / "images/imagenet-samples";
  if (!fs::exists(qdq_path) || !fs::exists(photos)) {
    std::printf("bench_repair: skipped: %s or %s not found (set FETAFIX_ASSETS)\n", qdq_path.c_str(), photos.c_str());
    return 0;
  }
  auto qdq = model::load_model(qdq_path);
  if (!qdq.ok()) return fail(qdq.error().message);
  auto floats = inject::dequantize_qdq(qdq->proto);
  if (!floats.ok()) return fail(floats.error().message);
  auto dir = image_subset(photos, images);
  if (!dir.ok()) return fail(dir.error().message);
  const auto uint8 = data::preset_by_name("uint8").value();

  if (mode == "partial") {
    std::vector<int> convs;
    for (int i = 0; i < floats->graph().node_size(); ++i)
      if (floats->graph().node(i).op_type() == "Conv") convs.push_back(i);
    if (convs.empty()) return fail("no Conv in the model");
    const size_t pick = std::min(convs.size() - 1, static_cast<size_t>(depth * static_cast<double>(convs.size())));
    const auto& conv = floats->graph().node(convs[pick]);
    auto candidate = *floats;
    auto w = model::get_weight(candidate, conv.input(1));
    if (!w.ok()) return fail(w.error().message);
    Tensor t = *w;
    for (float& v : t.span<float>()) v *= 1.01f;
    if (auto st = model::set_weight(candidate, conv.input(1), t); !st.ok()) return fail(st.error().message);

    compare::CompareOptions co;
    co.threads = threads;
    if (batch > 0) co.batch_size = batch;
    co.progress = ProgressMode::kQuiet;
    auto t0 = Clock::now();
    auto e = compare::LabelEvaluator::create(compare::ModelSide{&*floats, "source", uint8},
                                             compare::ModelSide{&*floats, "target", uint8}, *dir, co);
    if (!e.ok()) return fail(e.error().message);
    auto& eval = **e;
    std::printf("images %zu; edit: weight of Conv %zu of %zu ('%s'); evaluator set-up %.2f s\n", eval.images(),
                pick + 1, convs.size(), conv.name().c_str(), seconds_since(t0));
    t0 = Clock::now();
    if (auto st = eval.set_base(*floats); !st.ok()) return fail(st.error().message);
    const double base_s = seconds_since(t0);
    std::vector<double> full, warm;
    for (int r = 0; r < repeats; ++r) {
      t0 = Clock::now();
      auto s = eval.score_full(candidate);
      if (!s.ok()) return fail(s.error().message);
      full.push_back(seconds_since(t0));
    }
    t0 = Clock::now();
    auto first = eval.score(candidate);
    if (!first.ok()) return fail(first.error().message);
    const double cold = seconds_since(t0);
    if (!first->partial) return fail("the candidate was not run partially");
    for (int r = 0; r < repeats; ++r) {
      t0 = Clock::now();
      auto s = eval.score(candidate);
      if (!s.ok()) return fail(s.error().message);
      warm.push_back(seconds_since(t0));
    }
    const auto check = eval.score_full(candidate);
    std::printf("set_base (fingerprint): %.2f s\n", base_s);
    std::printf("full run:            median %.3f s over %d\n", median(full), repeats);
    std::printf("partial, first (shape probe + cache fill): %.3f s (once per base)\n", cold);
    std::printf("partial, warm:       median %.3f s over %d\n", median(warm), repeats);
    std::printf("speed-up warm: %.1fx; same top-1 as the full run: %s; peak RSS %.0f MiB\n", median(full) / median(warm),
                check.ok() && check->top1 == first->top1 ? "yes" : "NO", peak_rss_mib());
    return 0;
  }
  // The issue-4 Target: every float weight rounded through float16.
  auto fp16_target = [&]() { return inject::inject(*floats, {inject::parse_fault_spec("wb:fp16").value()}); };
  if (mode == "fp16") {
    auto injected = fp16_target();
    if (!injected.ok()) return fail(injected.error().message);
    repair::RepairOptions o;
    o.time_limit_seconds = time_limit;
    o.localize.compare.threads = threads;
    if (batch > 0) o.localize.compare.batch_size = batch;
    o.localize.compare.progress = ProgressMode::kQuiet;
    o.log = [](const std::string& line) { std::fprintf(stderr, "repair: %s\n", line.c_str()); };
    const auto t0 = Clock::now();
    auto r = repair::repair_target(compare::ModelSide{&*floats, "float.onnx", uint8},
                                   compare::ModelSide{&injected->model, "fp16.onnx", uint8}, *dir, o);
    if (!r.ok()) return fail(r.error().message);
    const double wall = seconds_since(t0);
    std::printf("%s", repair::format_report(*r).c_str());
    for (const auto& p : r->timings) std::printf("  %-28s %7.2f s\n", p.phase.c_str(), p.seconds);
    std::printf("evaluations: %zu full, %zu partial\n", r->full_runs, r->partial_runs);
    std::printf("wall %.1f s for %zu images; peak RSS %.0f MiB\n", wall, r->images, peak_rss_mib());
    return r->final_disagreeing == 0 ? 0 : 1;
  }
  if (mode == "passes") {  // full-pass time of the Source and of the fp16 Target, alternated
    auto injected = fp16_target();
    if (!injected.ok()) return fail(injected.error().message);
    compare::CompareOptions co;
    co.threads = threads;
    if (batch > 0) co.batch_size = batch;
    co.progress = ProgressMode::kQuiet;
    auto e = compare::LabelEvaluator::create(compare::ModelSide{&*floats, "source", uint8},
                                             compare::ModelSide{&injected->model, "target", uint8}, *dir, co);
    if (!e.ok()) return fail(e.error().message);
    std::vector<double> src, tgt;
    for (int r = 0; r < repeats; ++r) {
      auto t0 = Clock::now();
      if (!(*e)->score_full(*floats).ok()) return fail("source run failed");
      src.push_back(seconds_since(t0));
      t0 = Clock::now();
      if (!(*e)->score_full(injected->model).ok()) return fail("target run failed");
      tgt.push_back(seconds_since(t0));
    }
    std::printf("full pass over %zu images: float model median %.2f s, fp16-rounded median %.2f s\n", (*e)->images(),
                median(src), median(tgt));
    return 0;
  }
  return fail("unknown mode " + mode + " (partial, fp16 or passes)");
}
