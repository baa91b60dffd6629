// Usage: bench_activation_analysis [--images N] [--similar S] [--dissimilar D] [--repeats R]
//                                  [--threads T] [--budget-mib M] [--scale F] [--every K]
//                                  [--replay-images I] [--batch B]
// Source: MobileNetV2 int8 (QDQ) from ../shared/assets (FETAFIX_ASSETS). Target: the same model
// with every K-th Conv's weight scale multiplied by F (through the weights API), so that some
// images change their top-1. Runs both models over the first N photos of
// images/imagenet-samples for the agreement flags, then, side by side in one process:
//   - the plain inference the analysis needs: both models (optimized, as `compare` runs them)
//     once over the images the analysis uses;
//   - analyze_layer_activations with identity Conv pairs (wall time, passes, where the time went);
//   - layer-local replay of the same pairs on I of the disagreeing images;
// and prints each time as a ratio to the plain inference, peak RSS (getrusage ru_maxrss), and
// the rank of every perturbed layer under both rankings. docs/activation-analysis.md.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include <tbb/parallel_for.h>

#include "data/image.h"
#include "data/preprocess.h"
#include "localize/activation_analysis.h"
#include "localize/local_replay.h"
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

// CPU time of the process (all threads): on a shared, loaded machine wall time is what the
// scheduler gave; CPU time is the work done.
static double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

static double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

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

struct Settings {
  size_t max_images = 250, every = 6, replay_images = 32;
  float scale = 1.3f;
  localize::ActivationAnalysisOptions analysis;
};

static bool parse(int argc, char** argv, Settings& s, std::string& error) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--images") s.max_images = std::strtoul(v, nullptr, 10);
    else if (a == "--similar") s.analysis.max_similar = std::strtoul(v, nullptr, 10);
    else if (a == "--dissimilar") s.analysis.max_dissimilar = std::strtoul(v, nullptr, 10);
    else if (a == "--repeats") s.analysis.repeats = std::atoi(v);
    else if (a == "--threads") s.analysis.threads = std::atoi(v);
    else if (a == "--budget-mib") s.analysis.memory_budget_bytes = std::strtoull(v, nullptr, 10) << 20;
    else if (a == "--batch") s.analysis.batch_size = std::max<size_t>(1, std::strtoul(v, nullptr, 10));
    else if (a == "--scale") s.scale = std::strtof(v, nullptr);
    else if (a == "--every") s.every = std::max<size_t>(1, std::strtoul(v, nullptr, 10));
    else if (a == "--replay-images") s.replay_images = std::max<size_t>(1, std::strtoul(v, nullptr, 10));
    else return error = "unknown option " + a, false;
  }
  return true;
}

// Top-1 of every image, batch by batch, with an optimized session (as `compare` runs a model).
static bool top1_of(const onnx::ModelProto& model, const Tensor& images, const std::vector<size_t>& rows,
                    int threads, size_t batch, std::vector<int64_t>& out, std::string& error) {
  runtime::SessionOptions so;
  so.threads = threads;
  auto session = runtime::Session::create(model, so, "model");
  if (!session.ok()) return error = session.error().message, false;
  const size_t per_image = images.bytes.size() / static_cast<size_t>(images.shape[0]);
  for (size_t first = 0; first < rows.size(); first += batch) {
    const size_t count = std::min(batch, rows.size() - first);
    std::vector<int64_t> shape = images.shape;
    shape[0] = static_cast<int64_t>(count);
    Tensor t(images.dtype, shape);
    for (size_t k = 0; k < count; ++k)
      std::memcpy(t.bytes.data() + k * per_image, images.bytes.data() + rows[first + k] * per_image, per_image);
    auto result = (*session)->run({t});
    if (!result.ok()) return error = result.error().message, false;
    const auto logits = (*result)[0].to_float();
    const auto classes = static_cast<size_t>((*result)[0].numel() / static_cast<int64_t>(count));
    for (size_t k = 0; k < count; ++k)
      out.push_back(std::max_element(logits.begin() + k * classes, logits.begin() + (k + 1) * classes) -
                    (logits.begin() + k * classes));
  }
  return true;
}

static Tensor load_images(const fs::path& dir, size_t max_images, const onnx::ModelProto& model, std::string& error) {
  auto files = data::list_images(dir);
  if (!files.ok()) return error = files.error().message, Tensor{};
  if (files->size() > max_images) files->resize(max_images);
  const auto& in = model.graph().input(0);
  std::vector<int64_t> in_shape;
  for (const auto& d : in.type().tensor_type().shape().dim()) in_shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
  auto base = data::preset_by_name("uint8");
  if (!base.ok()) return error = base.error().message, Tensor{};
  base->crop = data::CropPolicy::kCentralFraction;  // the README's recipe (top-1 0.834)
  auto preset = data::bind_preset_to_input(*base, in_shape, DType::kUInt8, in.name());
  if (!preset.ok()) return error = preset.error().message, Tensor{};
  const auto n = static_cast<int64_t>(files->size());
  Tensor images(DType::kUInt8, {n, preset->height, preset->width, 3});
  const size_t per_image = images.bytes.size() / static_cast<size_t>(n);
  std::vector<std::string> errors(files->size());
  tbb::parallel_for(size_t{0}, files->size(), [&](size_t i) {
    auto img = data::decode_image((*files)[i]);
    if (!img.ok()) return void(errors[i] = img.error().message);
    data::preprocess_into(*img, *preset, images.bytes.data() + i * per_image);
  });
  for (const auto& e : errors)
    if (!e.empty()) return error = e, Tensor{};
  return images;
}

static void print_ranks(const char* what, const std::vector<std::string>& perturbed,
                        const std::vector<std::pair<std::string, int>>& ranks) {
  size_t top = 0;
  std::string list;
  for (const auto& name : perturbed)
    for (const auto& [node, rank] : ranks)
      if (node == name) {
        list += (list.empty() ? "" : ", ") + std::to_string(rank);
        top += rank >= 0 && static_cast<size_t>(rank) < perturbed.size();
      }
  std::printf("perturbed layers' ranks under %s (0 = first): %s; %zu of %zu in the top %zu\n", what, list.c_str(), top,
              perturbed.size(), perturbed.size());
}

int main(int argc, char** argv) {
  fs::path assets = std::getenv("FETAFIX_ASSETS") ? std::getenv("FETAFIX_ASSETS") : FETAFIX_DEFAULT_ASSETS;
  Settings s;
  std::string error;
  if (!parse(argc, argv, s, error)) return fail(error);
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
    if (pairs.size() % s.every == s.every / 2) {
      const std::string w = weight_to_perturb(target, node);
      auto t = model::get_weight(target, w);
      if (w.empty() || !t.ok()) return fail("cannot read the weight of " + m.source_node);
      if (t->dtype != DType::kFloat32) return fail("weight " + w + " is not float32");
      for (float& x : t->span<float>()) x *= s.scale;
      if (auto st = model::set_weight(target, w, *t); !st.ok()) return fail(st.error().message);
      perturbed.push_back(m.source_node);
    }
    pairs.push_back(std::move(m));
  }

  const auto t_decode = Clock::now();
  const Tensor images = load_images(image_dir, s.max_images, source, error);
  if (!error.empty()) return fail(error);
  const double decode_s = seconds_since(t_decode);
  const auto n = static_cast<size_t>(images.shape[0]);
  std::vector<size_t> all(n);
  for (size_t i = 0; i < n; ++i) all[i] = i;
  std::vector<int64_t> top1[2];
  const auto t_compare = Clock::now();
  for (int side = 0; side < 2; ++side)
    if (!top1_of(side == 0 ? source : target, images, all, s.analysis.threads, 16, top1[side], error)) return fail(error);
  const double compare_s = seconds_since(t_compare);
  std::vector<bool> agree(n);
  std::vector<size_t> disagreeing;
  for (size_t i = 0; i < n; ++i) {
    agree[i] = top1[0][i] == top1[1][i];
    if (!agree[i]) disagreeing.push_back(i);
  }
  const double rss_before = peak_rss_mib();
  std::printf("images %zu (decode+preprocess %.1f s), disagreeing %zu (both models, all images %.1f s)\n", n,
              decode_s, disagreeing.size(), compare_s);
  std::printf("conv pairs %zu, perturbed (weight scale x%.2f): %zu\n", pairs.size(), s.scale, perturbed.size());

  // The activation analysis, then the plain inference over the images it used.
  const auto t0 = Clock::now();
  const double c0 = cpu_seconds();
  auto analysis = localize::analyze_layer_activations(source, target, pairs, images, images, agree, s.analysis);
  const double analysis_s = seconds_since(t0), analysis_cpu = cpu_seconds() - c0;
  if (!analysis.ok()) return fail(analysis.error().message);
  const double rss_after_analysis = peak_rss_mib();
  std::set<size_t> used(analysis->dissimilar_sample.begin(), analysis->dissimilar_sample.end());
  for (const auto& sample : analysis->similar_samples) used.insert(sample.begin(), sample.end());
  const std::vector<size_t> rows(used.begin(), used.end());
  std::vector<int64_t> ignored;
  const auto t_plain = Clock::now();
  const double c_plain = cpu_seconds();
  for (const onnx::ModelProto* m : {&source, static_cast<const onnx::ModelProto*>(&target)})
    if (!top1_of(*m, images, rows, s.analysis.threads, s.analysis.batch_size, ignored, error)) return fail(error);
  const double plain_s = seconds_since(t_plain), plain_cpu = cpu_seconds() - c_plain;

  // Layer-local replay on the first disagreeing images.
  const std::vector<size_t> replay_rows(disagreeing.begin(),
                                        disagreeing.begin() + std::min(s.replay_images, disagreeing.size()));
  localize::ReplayOptions ro;
  ro.threads = s.analysis.threads;
  Tensor replay_inputs = images;
  if (!replay_rows.empty()) {
    std::vector<int64_t> shape = images.shape;
    shape[0] = static_cast<int64_t>(replay_rows.size());
    replay_inputs = Tensor(images.dtype, shape);
    const size_t per_image = images.bytes.size() / n;
    for (size_t k = 0; k < replay_rows.size(); ++k)
      std::memcpy(replay_inputs.bytes.data() + k * per_image, images.bytes.data() + replay_rows[k] * per_image,
                  per_image);
  }
  const auto t_replay = Clock::now();
  const double c_replay = cpu_seconds();
  auto replay = localize::replay_matched_layers(source, target, pairs, replay_inputs, replay_inputs, ro);
  const double replay_s = seconds_since(t_replay), replay_cpu = cpu_seconds() - c_replay;
  if (!replay.ok()) return fail(replay.error().message);
  const auto t_plain_replay = Clock::now();
  const double c_plain_replay = cpu_seconds();
  for (const onnx::ModelProto* m : {&source, static_cast<const onnx::ModelProto*>(&target)})
    if (!top1_of(*m, images, replay_rows, s.analysis.threads, s.analysis.batch_size, ignored, error)) return fail(error);
  const double plain_replay_s = seconds_since(t_plain_replay), plain_replay_cpu = cpu_seconds() - c_plain_replay;

  std::printf("activation analysis: similar used %zu x %d repeats, dissimilar used %zu (%zu distinct images), "
              "passes %zu, budget %zu MiB\n",
              analysis->similar_used, analysis->repeats, analysis->dissimilar_used, rows.size(), analysis->passes,
              s.analysis.memory_budget_bytes >> 20);
  if (!analysis->skipped_reason.empty()) std::printf("skipped: %s\n", analysis->skipped_reason.c_str());
  std::printf("  wall %.1f s (models %.1f s, statistics %.1f s), CPU %.1f s; node runs per image %zu\n", analysis_s,
              analysis->inference_seconds, analysis->statistics_seconds, analysis_cpu, analysis->nodes_run);
  std::printf("  plain inference of both models over the same %zu images: wall %.1f s, CPU %.1f s\n", rows.size(),
              plain_s, plain_cpu);
  std::printf("  ratio to plain inference: wall %.2f, CPU %.2f\n", analysis_s / plain_s, analysis_cpu / plain_cpu);
  std::printf("local replay: %zu images, %zu sessions, %zu batches: wall %.2f s (Source %.2f s, Target regions %.2f "
              "s), CPU %.2f s\n",
              replay->images, replay->sessions, replay->batches, replay_s, replay->source_seconds,
              replay->target_seconds, replay_cpu);
  std::printf("  plain inference of both models over the same images: wall %.2f s, CPU %.2f s; ratio wall %.2f, CPU "
              "%.2f\n",
              plain_replay_s, plain_replay_cpu, replay_s / plain_replay_s, replay_cpu / plain_replay_cpu);
  std::printf("peak RSS %.0f MiB (before the analysis %.0f MiB, after it %.0f MiB)\n", peak_rss_mib(), rss_before,
              rss_after_analysis);
  std::vector<std::pair<std::string, int>> kw, lr;
  for (const auto& l : analysis->ranked) kw.emplace_back(l.source_node, l.rank);
  for (const auto& l : replay->ranked) lr.emplace_back(l.source_node, l.rank);
  print_ranks("activation analysis (KW)", perturbed, kw);
  print_ranks("local replay", perturbed, lr);
  std::printf("local replay top 12:\n");
  for (size_t i = 0; i < std::min<size_t>(12, replay->ranked.size()); ++i) {
    const auto& l = replay->ranked[i];
    const bool is_perturbed = std::find(perturbed.begin(), perturbed.end(), l.source_node) != perturbed.end();
    std::printf("  %2d %-60.60s rel.L2 %.3g%s\n", l.rank, l.source_node.c_str(), l.error.relative_l2,
                is_perturbed ? "  <- perturbed" : "");
  }
  return 0;
}
