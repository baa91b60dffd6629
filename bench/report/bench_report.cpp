// Usage: bench_report [OUT_DIR] [--images DIR] [--runs N] [--chromium PATH] [--keep]
//
// Size and opening time of the HTML report of a ResNet101-sized repair. The models are a
// ResNet101-topology pair built with GraphBuilder (stem, 3+4+23+3 bottleneck blocks, fc: 104
// Conv + 1 Gemm, 105 BatchNormalization; widths divided by 8 so building is quick — the
// report shows names, attributes, shapes and differences, so the graph's size is what
// matters, not its weights). The Target has float16-rounded conv weights, dropped pads on
// every eighth 3x3 conv and a Cast + Identity pair around each block. The localization,
// repair and compare results are synthesized directly (seeded) at the scale a real run on
// that pair would give: every layer ranked, hundreds of findings, 1000 detection images with
// about 30% disagreeing, one repair step per finding. Thumbnails come from real photos
// (ImageNet samples from ../shared/assets, else /usr/share/backgrounds/mate/nature).
//
// Prints: findings, render time, HTML size (goal < 20 MB), and Chromium's time to open it
// (goal < 3 s), median of N runs: the page's own load time (performance.now() at the load
// event, read back from #render-check via --dump-dom), and the wall time of a headless run
// that opens the report and takes a screenshot of its first screen, beside the same for a
// blank page (browser start-up).
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "compare/compare.h"
#include "data/image.h"
#include "localize/localize.h"
#include "model/builder.h"
#include "repair/driver.h"
#include "report/report.h"

using namespace fetafix;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using localize::Equivalence;
using localize::FaultType;
using localize::Finding;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

float half(float v) {
  if (v == 0.0f || !std::isfinite(v)) return v;
  int e = 0;
  const double m = std::frexp(static_cast<double>(v), &e);
  return static_cast<float>(std::ldexp(std::nearbyint(m * 2048.0) / 2048.0, e));
}

struct Layer {
  std::string conv, bn;        // node names
  std::string weight, gamma;   // tensor names
  std::vector<int64_t> shape;  // OIHW
  bool pads_dropped = false;
};

// ResNet101's topology at 1/8 of its widths.
class ResNet101 {
 public:
  explicit ResNet101(bool target) : target_(target), b_("resnet101", 13) {}

  onnx::ModelProto build(std::vector<Layer>& layers) {
    layers_ = &layers;
    std::string x = b_.input("input", DType::kFloat32, {1, 3, 224, 224});
    x = conv_bn("conv1", x, 3, 8, 7, 2, true);
    x = b_.node("MaxPool", "pool1", {x}, {Attr::ints("kernel_shape", {3, 3}), Attr::ints("strides", {2, 2}),
                                          Attr::ints("pads", {1, 1, 1, 1})}, "pool1");
    int64_t in = 8;
    const int blocks[4] = {3, 4, 23, 3};
    const int64_t widths[4] = {8, 16, 32, 64};
    for (int s = 0; s < 4; ++s)
      for (int k = 0; k < blocks[s]; ++k) {
        const std::string name = fmt::format("layer{}.{}", s + 1, k);
        const int64_t stride = (k == 0 && s > 0) ? 2 : 1;
        x = bottleneck(name, x, in, widths[s], stride, k == 0);
        in = widths[s] * 4;
      }
    x = b_.node("GlobalAveragePool", "avgpool", {x}, {}, "avgpool");
    x = b_.node("Flatten", "flatten", {x}, {Attr::i("axis", 1)}, "flat");
    Tensor w = random_tensor({1000, in}, 9000, 0.05f);
    if (target_) round(w);
    x = b_.node("Gemm", "fc", {x, b_.initializer("fc.weight", w), b_.initializer("fc.bias", random_tensor({1000}, 9001, 0.01f))},
                {Attr::i("transB", 1)}, "logits");
    layers_->push_back({"fc", "", "fc.weight", "", w.shape});
    b_.output(x, DType::kFloat32, {1, 1000});
    return b_.build();
  }

 private:
  static void round(Tensor& t) {
    for (float& f : t.span<float>()) f = half(f);
  }

  std::string conv_bn(const std::string& name, std::string x, int64_t in, int64_t out, int64_t k, int64_t stride, bool relu) {
    const uint64_t seed = seed_++;
    Tensor w = random_tensor({out, in, k, k}, 100 + seed, 0.1f);
    if (target_) round(w);
    const bool drop = target_ && k == 3 && seed % 8 == 3;
    std::vector<Attr> attrs{Attr::ints("kernel_shape", {k, k}), Attr::ints("strides", {stride, stride})};
    if (k > 1 && !drop) attrs.push_back(Attr::ints("pads", {k / 2, k / 2, k / 2, k / 2}));
    x = b_.node("Conv", name, {x, b_.initializer(name + ".weight", w)}, attrs, name + "_out");
    const std::string bn = name + ".bn";
    Tensor gamma = uniform_tensor({out}, 300 + seed, 0.5f, 1.5f);
    if (target_) round(gamma);
    x = b_.node("BatchNormalization", bn,
                {x, b_.initializer(bn + ".weight", gamma), b_.initializer(bn + ".bias", random_tensor({out}, 400 + seed, 0.1f)),
                 b_.initializer(bn + ".running_mean", random_tensor({out}, 500 + seed, 0.1f)),
                 b_.initializer(bn + ".running_var", uniform_tensor({out}, 600 + seed, 0.5f, 1.5f))},
                {Attr::f("epsilon", 1e-5f)}, bn + "_out");
    layers_->push_back({name, bn, name + ".weight", bn + ".weight", w.shape, drop});
    if (relu) x = b_.node("Relu", name + ".relu", {x}, {}, name + ".relu_out");
    return x;
  }

  std::string bottleneck(const std::string& name, std::string x, int64_t in, int64_t width, int64_t stride, bool down) {
    if (target_) x = b_.node("Cast", name + ".cast", {x}, {Attr::i("to", 1)}, name + ".cast_out");
    std::string identity = x;
    std::string y = conv_bn(name + ".conv1", x, in, width, 1, 1, true);
    y = conv_bn(name + ".conv2", y, width, width, 3, stride, true);
    y = conv_bn(name + ".conv3", y, width, width * 4, 1, 1, false);
    if (down) identity = conv_bn(name + ".downsample", x, in, width * 4, 1, stride, false);
    y = b_.node("Add", name + ".add", {y, identity}, {}, name + ".add_out");
    y = b_.node("Relu", name + ".relu", {y}, {}, name + ".out");
    if (target_) y = b_.node("Identity", name + ".identity", {y}, {}, name + ".id_out");
    return y;
  }

  bool target_;
  GraphBuilder b_;
  std::vector<Layer>* layers_ = nullptr;
  uint64_t seed_ = 0;
};

std::vector<fs::path> photo_files(const fs::path& dir) {
  auto files = data::list_images(dir);
  return files.ok() ? *files : std::vector<fs::path>{};
}

compare::TopK topk(Rng& rng, int64_t top1) {
  compare::TopK t;
  float left = 0.9f;
  t.ids.push_back(top1);
  t.scores.push_back(left *= rng.uniform(0.4f, 0.9f));
  for (int i = 1; i < 5; ++i) {
    t.ids.push_back(static_cast<int64_t>(rng.next_u64() % 1000));
    t.scores.push_back(left *= rng.uniform(0.1f, 0.6f));
  }
  return t;
}

struct BrowserRun {
  int exit_code = -1;
  double wall = 0;
  std::string dom;
};

const char* const kChromiumFlags =
    "--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --disable-background-networking "
    "--disable-component-update --disable-sync --no-first-run --disable-extensions --disable-default-apps --mute-audio";

// `what` is "--dump-dom" (the DOM after the load event, on stdout) or "--screenshot=FILE".
BrowserRun open_in_chromium(const std::string& chromium, const fs::path& page, const fs::path& dir, const std::string& what) {
  const fs::path out = dir / "dom.html", err = dir / "chromium.err";
  fs::remove_all(dir / "profile");
  const std::string cmd = fmt::format("timeout 120 '{}' {} --window-size=1280,900 --user-data-dir='{}' {} 'file://{}' >'{}' 2>'{}'",
                                      chromium, kChromiumFlags, (dir / "profile").string(), what,
                                      fs::absolute(page).string(), out.string(), err.string());
  const auto t0 = Clock::now();
  const int status = std::system(cmd.c_str());
  BrowserRun r;
  r.wall = seconds_since(t0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  r.dom = ss.str();
  return r;
}

std::string marker(const std::string& dom, const std::string& name) {
  std::smatch m;
  if (std::regex_search(dom, m, std::regex("id=\"render-check\"[^>]*" + name + "=\"([^\"]*)\""))) return m[1];
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  fs::path out_dir = fs::temp_directory_path() / "fetafix_bench_report";
  fs::path assets = std::getenv("FETAFIX_ASSETS") ? std::getenv("FETAFIX_ASSETS") : FETAFIX_DEFAULT_ASSETS;
  fs::path image_dir = assets / "images/imagenet-samples";
  std::string chromium = "/usr/bin/chromium";
  int runs = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--images" && i + 1 < argc) image_dir = argv[++i];
    else if (a == "--runs" && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
    else if (a == "--chromium" && i + 1 < argc) chromium = argv[++i];
    else out_dir = a;
  }
  if (!fs::is_directory(image_dir)) image_dir = "/usr/share/backgrounds/mate/nature";
  const auto photos = photo_files(image_dir);
  if (photos.empty()) {
    std::fprintf(stderr, "bench_report: no photos in %s\n", image_dir.c_str());
    return 1;
  }
  fs::create_directories(out_dir);

  // ---- the models
  auto t0 = Clock::now();
  std::vector<Layer> s_layers, t_layers;
  const onnx::ModelProto source = ResNet101(false).build(s_layers);
  const onnx::ModelProto target = ResNet101(true).build(t_layers);
  const double build_s = seconds_since(t0);

  // ---- what a localization and repair of that pair report (seeded)
  Rng rng(2024);
  const auto raw = data::preset_by_name("torch").value();
  localize::LocalizeResult loc;
  loc.source_label = "resnet101.onnx";
  loc.target_label = "resnet101_converted.onnx";
  compare::CompareResult& before = loc.detection;
  compare::CompareResult after;
  before.image_dir = after.image_dir = image_dir;
  before.source_preset = before.target_preset = after.source_preset = after.target_preset = raw;
  const size_t n_images = 1000;
  for (size_t i = 0; i < n_images; ++i) {
    compare::ImageRecord r;
    r.file = fs::relative(photos[i % photos.size()], image_dir).generic_string();
    const int64_t label = static_cast<int64_t>(rng.next_u64() % 1000);
    r.source = topk(rng, label);
    const bool disagree = rng.uniform() < 0.3;
    r.target = topk(rng, disagree ? (label + 1 + static_cast<int64_t>(rng.next_u64() % 998)) % 1000 : label);
    r.target_in_source = r.target.ids;
    r.agree = !disagree;
    compare::ImageRecord a = r;
    const bool still = disagree && rng.uniform() < 0.1;
    a.target = topk(rng, still ? r.target.ids[0] : label);
    a.target_in_source = a.target.ids;
    a.agree = !still;
    before.records.push_back(r);
    after.records.push_back(a);
    before.summary.disagreeing += disagree;
    after.summary.disagreeing += still;
  }
  for (auto* c : {&before, &after}) {
    c->summary.images_found = c->summary.images_compared = n_images;
    c->summary.discrepancy = double(c->summary.disagreeing) / n_images;
    c->summary.top_k = 5;
    c->summary.source_classes = c->summary.target_classes = 1000;
  }
  for (size_t i = 0; i < s_layers.size(); ++i) {
    match::NodeMatch m;
    m.source_node = s_layers[i].conv;
    m.target_node = t_layers[i].conv;
    m.confidence = 0.9 + 0.1 * rng.uniform();
    m.evidence = "weight cosine 0.9999";
    loc.matching.pairs.push_back(m);
  }
  loc.matching.source_core = loc.matching.target_core = s_layers.size();
  // Every layer ranked: a seeded order by problematic share.
  std::vector<size_t> order(s_layers.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::vector<double> share(order.size());
  for (auto& v : share) v = std::pow(rng.uniform(), 3.0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return share[a] > share[b]; });
  std::vector<int> rank_of(order.size());
  auto& act = loc.activation;
  act.similar_available = 700, act.dissimilar_available = 300, act.similar_used = act.dissimilar_used = 100;
  act.repeats = 3, act.passes = 2;
  for (size_t r = 0; r < order.size(); ++r) {
    const size_t i = order[r];
    rank_of[i] = static_cast<int>(r);
    localize::LayerScore l;
    l.source_node = s_layers[i].conv;
    l.target_node = t_layers[i].conv;
    l.elements = s_layers[i].shape[0] * 56 * 56;
    l.problematic_fraction = share[i];
    l.per_repeat_fraction = {share[i] * 0.98, share[i], share[i] * 1.02};
    l.mean_abs_diff_similar = 1e-4 * rng.uniform();
    l.mean_abs_diff_dissimilar = 1e-3 * rng.uniform();
    l.rank = static_cast<int>(r);
    act.ranked.push_back(l);
  }
  // Findings: WB on every conv weight and BN scale (float16 rounding), LH on the dropped pads,
  // CG on every Cast/Identity pair (found equivalent).
  for (size_t i = 0; i < t_layers.size(); ++i) {
    for (bool bn : {false, true}) {
      if (bn && t_layers[i].bn.empty()) continue;
      const std::string target_node = bn ? t_layers[i].bn : t_layers[i].conv;
      const std::string tensor = bn ? t_layers[i].gamma : t_layers[i].weight;
      const int64_t total = bn ? t_layers[i].shape[0] : shape_numel(t_layers[i].shape);
      const int64_t differing = total * 9 / 10;
      const double max_abs_diff = 2e-4 * rng.uniform();
      localize::WeightsEvidence e;
      e.role = bn ? "parameter" : "weight";
      e.source.tensor = e.target.tensor = tensor;
      e.differing = differing;
      e.total = total;
      e.max_abs_diff = max_abs_diff;
      e.mean_abs_diff = 3e-5 * rng.uniform();
      e.core_source_node = s_layers[i].conv;
      e.core_target_node = t_layers[i].conv;
      loc.findings.push_back(localize::make_finding(
          std::move(e), bn ? s_layers[i].bn : s_layers[i].conv, target_node,
          fmt::format("{} of {} '{}': {} of {} elements differ, max |Δ| {:.2e} (float16 rounding)",
                      bn ? "scale" : "weight", bn ? "BatchNormalization" : "Conv", target_node, differing, total,
                      max_abs_diff),
          rank_of[i]));
    }
    if (t_layers[i].pads_dropped) {
      localize::HyperparametersEvidence e;
      e.attribute = "pads";
      e.kind = "missing";
      e.source_value = {1, 1, 1, 1};
      e.target_value = {0, 0, 0, 0};
      Finding f = localize::make_finding(
          std::move(e), s_layers[i].conv, t_layers[i].conv,
          fmt::format("pads [1,1,1,1] in Source, [0,0,0,0] (default) in Target at Conv '{}'", t_layers[i].conv),
          rank_of[i]);
      f.equivalence = Equivalence::kDivergent;
      loc.findings.push_back(f);
    }
  }
  for (const auto& n : target.graph().node()) {
    if (n.op_type() != "Cast") continue;
    const std::string block = n.name().substr(0, n.name().size() - 5);
    localize::GraphEvidence e;
    e.source_ops = {"Conv"};
    e.target_ops = {"Cast", "Conv"};
    e.source_nodes = {block + ".conv1"};
    e.target_nodes = {n.name(), block + ".conv1"};
    Finding f = localize::make_finding(
        std::move(e), block + ".conv1", block + ".conv1",
        fmt::format("Target computes [Cast, Conv] where Source computes [Conv] before '{}'", block + ".conv1"));
    f.equivalence = Equivalence::kEquivalent;
    f.verdict = localize::Verdict::kEquivalent;
    loc.findings.push_back(f);
  }
  loc.timings = {{"detection", 41.0}, {"input checks", 63.5}, {"matching", 0.4}, {"activation analysis", 212.0},
                 {"layer checks", 3.1}, {"equivalence filter", 18.2}};
  loc.notes = {"synthetic run for bench_report"};

  repair::RepairResult rep;
  rep.images = n_images;
  rep.initial_disagreeing = before.summary.disagreeing;
  rep.final_disagreeing = after.summary.disagreeing;
  rep.history.push_back(before.summary.discrepancy);
  onnx::ModelProto repaired = target;
  size_t current = rep.initial_disagreeing;
  for (size_t i = 0; i < loc.findings.size(); ++i) {
    const Finding& f = loc.findings[i];
    repair::RepairStep st;
    st.round = 1;
    st.type = f.type();
    st.source_node = f.source_node;
    st.target_node = f.target_node;
    st.finding_ids = {f.id};
    st.target_nodes = {f.target_node};
    const auto* wb = std::get_if<localize::WeightsEvidence>(&f.evidence);
    st.description = wb ? fmt::format("WB: Source values into '{}'", wb->target.tensor) : f.summary;
    st.disagreeing_before = current;
    st.kept = f.is_fault() && current > rep.final_disagreeing && rng.uniform() < 0.5;
    const size_t drop = st.kept ? std::max<size_t>(1, (current - rep.final_disagreeing) / 12) : 0;
    st.disagreeing_after = st.kept ? current - drop : current + (rng.uniform() < 0.5 ? 0 : 1);
    st.screened_out = !st.kept && rng.uniform() < 0.6;
    st.reason = st.kept                              ? "kept"
                : st.screened_out                    ? "no drop on the 288 screening images (256 of them disagree, 256 would)"
                : st.disagreeing_after == current    ? "no change in disagreement"
                                                     : "disagreement would rise";
    st.edits = 1;
    st.seconds = 0.4 + rng.uniform();
    if (st.kept) {
      current = st.disagreeing_after;
      rep.history.push_back(double(current) / n_images);
      if (wb) {
        const std::string tensor = wb->target.tensor;
        for (const auto& init : source.graph().initializer())
          if (init.name() == tensor) {
            Tensor t(DType::kFloat32, std::vector<int64_t>(init.dims().begin(), init.dims().end()));
            std::memcpy(t.bytes.data(), init.raw_data().data(), t.bytes.size());
            rep.patch.edits.push_back(model::Edit::set_weight(tensor, std::move(t)));
          }
      } else if (f.type() == FaultType::kLH) {
        rep.patch.edits.push_back(model::Edit::set_attribute(f.target_node, Attr::ints("pads", {1, 1, 1, 1}).proto));
      }
    }
    auto& c = rep.counts[st.type_label()];
    c.localized++, c.tried++, c.kept += st.kept;
    rep.steps.push_back(std::move(st));
  }
  if (current != rep.final_disagreeing) {
    repair::RepairStep st;
    st.round = 1, st.kind = repair::StepKind::kGroup, st.type = FaultType::kWB, st.kept = true, st.reason = "kept";
    st.edits = 4;
    for (const auto& f : loc.findings)
      if (f.type() == FaultType::kWB && st.target_nodes.size() < 4) {
        st.target_nodes.push_back(f.target_node);
        st.finding_ids.push_back(f.id);
      }
    st.description = fmt::format("Source weights into 4 of 40 differing tensors (4 layers): {}", fmt::join(st.target_nodes, ", "));
    st.disagreeing_before = current, st.disagreeing_after = rep.final_disagreeing;
    rep.history.push_back(double(rep.final_disagreeing) / n_images);
    rep.steps.push_back(st);
  }
  rep.stop_reason = "round limit (4) reached";
  rep.full_runs = 61, rep.partial_runs = 180;
  for (size_t i = 0; i < before.records.size(); ++i) {
    rep.image_files.push_back(before.records[i].file);
    rep.initial_agree.push_back(before.records[i].agree);
    rep.final_agree.push_back(after.records[i].agree);
  }
  rep.localizations = {loc};
  rep.localizations[0].detection = {};  // what the driver records: its labels came from the evaluator
  rep.timings = {{"source run and image cache", 40.2}, {"round 1 localize", 340.0}, {"round 1 repair", 610.3}, {"total", 1500}};
  repair::Validation v;
  v.images = 500, v.initial_disagreeing = 160, v.final_disagreeing = 21, v.newly_disagreeing = {"n01440764_tench.JPEG"};
  rep.validation = v;

  report::ReportInput in;
  in.command = "repair";
  in.source = {&source, "models/resnet101.onnx", raw};
  in.target = {&target, "models/resnet101_converted.onnx", raw};
  in.image_dir = image_dir;
  in.repair = &rep;
  in.before = &before;
  in.after = &after;
  in.exit_code = 1;
  in.seconds = 1523.4;
  report::ReportOptions options;
  options.max_image_rows = 400;

  t0 = Clock::now();
  const fs::path page = out_dir / "report_resnet101.html";
  if (auto st = report::write_report(page, in, options); !st.ok()) {
    std::fprintf(stderr, "bench_report: %s\n", st.error().message.c_str());
    return 1;
  }
  const double render_s = seconds_since(t0);
  const double mb = double(fs::file_size(page)) / (1024.0 * 1024.0);
  size_t wb = 0, lh = 0, cg = 0;
  for (const auto& f : loc.findings) (f.type() == FaultType::kWB ? wb : f.type() == FaultType::kLH ? lh : cg)++;
  std::printf("model pair: %zu core layers, %d / %d nodes (built in %.2f s)\n", s_layers.size(), source.graph().node_size(),
              target.graph().node_size(), build_s);
  std::printf("findings: %zu (WB %zu, LH %zu, CG %zu); repair steps %zu; disagreeing images listed %zu of %zu\n",
              loc.findings.size(), wb, lh, cg, rep.steps.size(), std::min<size_t>(options.max_image_rows, before.summary.disagreeing),
              n_images);
  std::printf("report: %s\n  render + write: %.2f s\n  size: %.2f MB (goal < 20 MB)\n", page.c_str(), render_s, mb);

  if (!fs::exists(chromium)) {
    std::printf("chromium: not found at %s; opening time not measured\n", chromium.c_str());
    return 0;
  }
  // Per run: the DOM after the load event (the page's own load time and error count), the wall
  // time of Chromium opening the page and drawing its first screen, and the same for a blank
  // page (the browser's start-up, which is not the report's).
  const fs::path blank = out_dir / "blank.html";
  std::ofstream(blank) << "<!DOCTYPE html><title>blank</title>";
  std::vector<double> load_ms, wall_s, blank_s;
  for (int r = 0; r < runs; ++r) {
    const fs::path dir = out_dir / fmt::format("chromium_{}", r);
    fs::create_directories(dir);
    const auto run = open_in_chromium(chromium, page, dir, "--dump-dom");
    const std::string status = marker(run.dom, "data-status"), errors = marker(run.dom, "data-errors");
    if (run.exit_code != 0 || status != "loaded" || errors != "0") {
      std::printf("chromium run %d: exit %d, status '%s', errors '%s'\n", r, run.exit_code, status.c_str(), errors.c_str());
      return 1;
    }
    load_ms.push_back(std::atof(marker(run.dom, "data-load-ms").c_str()));
    wall_s.push_back(open_in_chromium(chromium, page, dir, "--screenshot=" + (dir / "first_screen.png").string()).wall);
    blank_s.push_back(open_in_chromium(chromium, blank, dir, "--screenshot=" + (dir / "blank.png").string()).wall);
  }
  std::printf("chromium (%d runs, median; goal < 3 s):\n"
              "  navigation to the page's load event: %.0f ms\n"
              "  whole headless run that opens the report and draws its first screen: %.2f s "
              "(the same for a blank page: %.2f s of browser start-up)\n",
              runs, median(load_ms), median(wall_s), median(blank_s));
  return 0;
}
