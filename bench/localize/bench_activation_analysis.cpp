// Usage: bench_activation_analysis [--images N] [--similar S] [--dissimilar D] [--repeats R]
//                                  [--threads T] [--budget-mib M] [--scale F] [--every K]
// Source: MobileNetV2 int8 (QDQ) from ../shared/assets (FETAFIX_ASSETS). Target: the same model
// with every K-th Conv's weight scale multiplied by F (through the weights API), so that some
// images change their top-1. Runs both models over the first N photos of
// images/imagenet-samples for the agreement flags, then times analyze_layer_activations with
// identity Conv pairs and reports wall time, passes and peak RSS (getrusage ru_maxrss).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <tbb/parallel_for.h>

#include "data/image.h"
#include "data/preprocess.h"
#include "localize/activation_analysis.h"
#include "model/graph.h"
#include "model/model.h"
#include "model/weights.h"
#include "runtime/session.h"

using namespace fetafix;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

static double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

static int fail(const std::string& message) {
  std::fprintf(stderr, "bench_activation_analysis: %s\n", message.c_str());
  return 2;
}

// The value a Conv reads its weight from: the weight itself, or the scale of the
// DequantizeLinear that produces it (QDQ models).
static std::string weight_to_perturb(const onnx::ModelProto& m, const onnx::NodeProto& conv) {
  const std::string& w = conv.input(1);
  if (model::is_weight(m, w)) return w;
  for (const auto& n : m.graph().node())
    if (n.output_size() > 0 && n.output(0) == w && n.op_type() == "DequantizeLinear" && n.input_size() > 1 &&
        model::is_weight(m, n.input(1)))
      return n.input(1);
  return "";
}

int main(int argc, char** argv) {
  fs::path assets = std::getenv("FETAFIX_ASSETS") ? std::getenv("FETAFIX_ASSETS") : FETAFIX_DEFAULT_ASSETS;
  size_t max_images = 1000, every = 6;
  float scale = 1.3f;
  localize::ActivationAnalysisOptions options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--images") max_images = std::strtoul(v, nullptr, 10);
    else if (a == "--similar") options.max_similar = std::strtoul(v, nullptr, 10);
    else if (a == "--dissimilar") options.max_dissimilar = std::strtoul(v, nullptr, 10);
    else if (a == "--repeats") options.repeats = std::atoi(v);
    else if (a == "--threads") options.threads = std::atoi(v);
    else if (a == "--budget-mib") options.memory_budget_bytes = std::strtoull(v, nullptr, 10) << 20;
    else if (a == "--scale") scale = std::strtof(v, nullptr);
    else if (a == "--every") every = std::max<size_t>(1, std::strtoul(v, nullptr, 10));
    else return fail("unknown option " + a);
  }
  const fs::path model_path = assets / "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx";
  const fs::path image_dir = assets / "images/imagenet-samples";
  if (!fs::exists(model_path) || !fs::exists(image_dir)) {
    std::fprintf(stderr, "bench_activation_analysis: skipped: %s or %s not found (set FETAFIX_ASSETS)\n",
                 model_path.c_str(), image_dir.c_str());
    return 0;
  }
  auto loaded = model::load_model(model_path);
  if (!loaded.ok()) return fail(loaded.error().message);
  const onnx::ModelProto& source = loaded->proto;
  onnx::ModelProto target = source;

  // Identity pairs for every Conv; perturb every `every`-th one in the Target.
  const auto names = model::name_nodes(source.graph());
  std::vector<match::NodeMatch> pairs;
  std::vector<std::string> perturbed;
  for (int i = 0; i < source.graph().node_size(); ++i) {
    const auto& node = source.graph().node(i);
    if (node.op_type() != "Conv") continue;
    match::NodeMatch m;
    m.source_node = m.target_node = names.names[static_cast<size_t>(i)];
    m.confidence = 1;
    if (pairs.size() % every == every / 2) {
      const std::string w = weight_to_perturb(target, node);
      auto t = model::get_weight(target, w);
      if (w.empty() || !t.ok()) return fail("cannot read the weight of " + m.source_node);
      if (t->dtype != DType::kFloat32) return fail("weight " + w + " is not float32");
      for (float& x : t->span<float>()) x *= scale;
      if (auto st = model::set_weight(target, w, *t); !st.ok()) return fail(st.error().message);
      perturbed.push_back(m.source_node);
    }
    pairs.push_back(std::move(m));
  }

  // Images: decoded and preprocessed once; both models take the same uint8 NHWC input.
  auto files = data::list_images(image_dir);
  if (!files.ok()) return fail(files.error().message);
  if (files->size() > max_images) files->resize(max_images);
  const auto& in = source.graph().input(0);
  std::vector<int64_t> in_shape;
  for (const auto& d : in.type().tensor_type().shape().dim()) in_shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
  auto base = data::preset_by_name("uint8");
  if (!base.ok()) return fail(base.error().message);
  base->crop = data::CropPolicy::kCentralFraction;  // the README's recipe (top-1 0.834)
  auto preset = data::bind_preset_to_input(*base, in_shape, DType::kUInt8, in.name());
  if (!preset.ok()) return fail(preset.error().message);
  const int64_t n = static_cast<int64_t>(files->size());
  Tensor images(DType::kUInt8, {n, preset->height, preset->width, 3});
  const size_t per_image = images.bytes.size() / static_cast<size_t>(n);
  std::vector<std::string> errors(files->size());
  const auto t_decode = Clock::now();
  tbb::parallel_for(size_t{0}, files->size(), [&](size_t i) {
    auto img = data::decode_image((*files)[i]);
    if (!img.ok()) { errors[i] = img.error().message; return; }
    data::preprocess_into(*img, *preset, images.bytes.data() + i * per_image);
  });
  for (const auto& e : errors)
    if (!e.empty()) return fail(e);
  const double decode_s = std::chrono::duration<double>(Clock::now() - t_decode).count();

  // Agreement flags from the full (optimized) models.
  std::vector<int64_t> top1[2];
  const auto t_compare = Clock::now();
  for (int side = 0; side < 2; ++side) {
    runtime::SessionOptions so;
    so.threads = options.threads;
    auto session = runtime::Session::create(side == 0 ? source : target, so, side == 0 ? "Source" : "Target");
    if (!session.ok()) return fail(session.error().message);
    for (int64_t first = 0; first < n; first += 16) {
      const int64_t count = std::min<int64_t>(16, n - first);
      Tensor batch(DType::kUInt8, {count, preset->height, preset->width, 3});
      std::memcpy(batch.bytes.data(), images.bytes.data() + first * per_image, count * per_image);
      auto out = (*session)->run({batch});
      if (!out.ok()) return fail(out.error().message);
      const auto logits = (*out)[0].to_float();
      const int64_t classes = (*out)[0].numel() / count;
      for (int64_t k = 0; k < count; ++k) {
        const float* row = logits.data() + k * classes;
        top1[side].push_back(std::max_element(row, row + classes) - row);
      }
    }
  }
  std::vector<bool> agree(static_cast<size_t>(n));
  size_t disagreeing = 0;
  for (size_t i = 0; i < agree.size(); ++i) {
    agree[i] = top1[0][i] == top1[1][i];
    disagreeing += !agree[i];
  }
  const double compare_s = std::chrono::duration<double>(Clock::now() - t_compare).count();
  const double rss_before = peak_rss_mib();

  const auto t0 = Clock::now();
  auto analysis = localize::analyze_layer_activations(source, target, pairs, images, images, agree, options);
  const double analysis_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!analysis.ok()) return fail(analysis.error().message);

  std::printf("images %lld (decode+preprocess %.1f s), disagreeing %zu (both models %.1f s)\n",
              static_cast<long long>(n), decode_s, disagreeing, compare_s);
  std::printf("conv pairs %zu, perturbed (weight scale x%.2f): %zu\n", pairs.size(), scale, perturbed.size());
  std::printf("similar used %zu x %d repeats, dissimilar used %zu, passes %zu, budget %zu MiB\n",
              analysis->similar_used, analysis->repeats, analysis->dissimilar_used, analysis->passes,
              options.memory_budget_bytes >> 20);
  if (!analysis->skipped_reason.empty()) std::printf("skipped: %s\n", analysis->skipped_reason.c_str());
  std::printf("analysis wall time %.1f s; peak RSS %.0f MiB (before the analysis %.0f MiB)\n", analysis_s,
              peak_rss_mib(), rss_before);
  std::printf("top layers:\n");
  for (size_t i = 0; i < std::min<size_t>(10, analysis->ranked.size()); ++i) {
    const auto& s = analysis->ranked[i];
    const bool is_perturbed = std::find(perturbed.begin(), perturbed.end(), s.source_node) != perturbed.end();
    std::printf("  %2d %-40s %8lld elems  problematic %.3f  |d| sim %.4f dis %.4f%s\n", s.rank, s.source_node.c_str(),
                static_cast<long long>(s.elements), s.problematic_fraction, s.mean_abs_diff_similar,
                s.mean_abs_diff_dissimilar, is_perturbed ? "  <- perturbed" : "");
  }
  for (const auto& s : analysis->ranked)
    if (std::find(perturbed.begin(), perturbed.end(), s.source_node) != perturbed.end())
      std::printf("perturbed %s ranks %d\n", s.source_node.c_str(), s.rank);
  return 0;
}
