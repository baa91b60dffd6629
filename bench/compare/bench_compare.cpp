// Usage: bench_compare [SOURCE.onnx TARGET.onnx IMAGE_DIR] [--threads N] [--batch B] [--rounds R]
//        bench_compare ocr-det [--images N] [--size S] [--threads N] [--batch B] [--rounds R]
// Default: MobileNetV2 int8 from ../shared/assets as both Source and Target, over
// images/imagenet-samples (label task). ocr-det: PaddleOCR's PP-OCRv4 text detector
// (third_party/ocr-models, fetched by scripts/setup.sh) as both models, over N photos with text
// rendered by scripts/make_ocr_samples.sh into <build>/bench-data (kept for the next run), at SxS
// (default 640, PaddleOCR's usual side), compared as masks (--task mask:threshold=0.3).
// Rounds alternate plain-ORT and fetafix runs so machine noise hits both; the ratio of medians
// is the figure to report. Plain ORT runs both models on tensors preprocessed before timing;
// fetafix decodes, preprocesses, runs and compares.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <onnxruntime_cxx_api.h>
#include <tbb/parallel_for.h>

#include "compare/comparator.h"
#include "compare/compare.h"
#include "model/model.h"
#include "runtime/session.h"

using namespace fetafix;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Process CPU seconds (all threads): on a shared machine, wall time measures the neighbours too.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct BenchCase {
  fs::path source, target, images;
  data::Preset preset;
  std::string task;  // empty: label
};

struct Settings {
  int threads = 0, batch = 8, rounds = 3, images = 64, size = 640;
};

// PP-OCRv4 det over rendered photos; an empty case (with a message) when something is missing.
BenchCase ocr_det_case(const fs::path& assets, const Settings& s) {
  const char* env = std::getenv("FETAFIX_OCR_MODELS");
  const fs::path models = env && *env ? fs::path(env) : fs::path(FETAFIX_SOURCE_DIR) / "third_party/ocr-models";
  const fs::path model = models / "ch_PP-OCRv4_det_infer.onnx";
  const fs::path dir = fs::path(FETAFIX_BINARY_DIR) / "bench-data" / fmt::format("ocr-det-{}-{}", s.size, s.images);
  if (!fs::exists(model)) {
    std::fprintf(stderr, "bench_compare: skipped: %s not found (run scripts/setup.sh)\n", model.c_str());
    return {};
  }
  if (!fs::exists(dir / "labels.txt")) {
    const std::string cmd = fmt::format("FETAFIX_ASSETS='{}' bash '{}/scripts/make_ocr_samples.sh' det '{}' {} {}",
                                        assets.string(), FETAFIX_SOURCE_DIR, dir.string(), s.images, s.size);
    if (std::system(cmd.c_str()) != 0 || !fs::exists(dir / "labels.txt")) {
      std::fprintf(stderr, "bench_compare: skipped: could not render OCR samples into %s\n", dir.c_str());
      return {};
    }
  }
  auto preset = data::load_preset_file(fs::path(FETAFIX_SOURCE_DIR) / "presets/ppocr-det.json");
  if (!preset.ok()) {
    std::fprintf(stderr, "%s\n", preset.error().message.c_str());
    return {};
  }
  preset->width = preset->height = s.size;
  return {model, model, dir, *preset, "mask:threshold=0.3"};
}

// The preset bound to the model's input, and every image preprocessed with it.
struct Preprocessed {
  data::Preset bound;
  std::vector<int64_t> image_shape;
  size_t image_bytes = 0, n = 0;
  std::vector<std::byte> all;
};

Result<Preprocessed> preprocess_all(const BenchCase& c, const onnx::ModelProto& model) {
  FETAFIX_ASSIGN_OR_RETURN(auto files, data::list_images(c.images));
  FETAFIX_ASSIGN_OR_RETURN(auto probe, runtime::Session::create(model, {}, c.source.string()));
  const auto& in = probe->inputs()[0];
  Preprocessed p;
  FETAFIX_ASSIGN_OR_RETURN(p.bound, data::bind_preset_to_input(c.preset, in.shape, in.dtype, in.name));
  p.n = files.size();
  p.image_shape = p.bound.layout == data::Layout::kNCHW ? std::vector<int64_t>{3, p.bound.height, p.bound.width}
                                                        : std::vector<int64_t>{p.bound.height, p.bound.width, 3};
  p.image_bytes = static_cast<size_t>(shape_numel(p.image_shape)) * dtype_size(p.bound.dtype);
  p.all.resize(p.n * p.image_bytes);
  tbb::parallel_for(size_t{0}, p.n, [&](size_t i) {
    auto img = data::decode_image(files[i]);
    if (img.ok()) data::preprocess_into(*img, p.bound, p.all.data() + i * p.image_bytes);
  });
  return p;
}

int run(const BenchCase& c, const Settings& s) {
  auto src = model::load_model(c.source), tgt = model::load_model(c.target);
  if (!src.ok() || !tgt.ok()) {
    std::fprintf(stderr, "%s\n", (!src.ok() ? src.error() : tgt.error()).message.c_str());
    return 2;
  }
  auto pre = preprocess_all(c, src->proto);
  if (!pre.ok()) {
    std::fprintf(stderr, "%s\n", pre.error().message.c_str());
    return 2;
  }
  const size_t n = pre->n;
  Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "bench");
  Ort::SessionOptions so;
  if (s.threads > 0) so.SetIntraOpNumThreads(s.threads);
  so.SetInterOpNumThreads(1);
  so.AddConfigEntry("session.intra_op.allow_spinning", "0");
  Ort::Session s_src(env, c.source.c_str(), so), s_tgt(env, c.target.c_str(), so);
  Ort::AllocatorWithDefaultOptions alloc;
  auto in_name = s_src.GetInputNameAllocated(0, alloc), out_name = s_src.GetOutputNameAllocated(0, alloc);
  auto tin_name = s_tgt.GetInputNameAllocated(0, alloc), tout_name = s_tgt.GetOutputNameAllocated(0, alloc);
  const ONNXTensorElementDataType et = pre->bound.dtype == DType::kUInt8 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8
                                                                          : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  const auto declared = s_src.GetInputTypeInfo(0).GetTensorTypeAndShapeInfo().GetShape();
  const size_t b = !declared.empty() && declared[0] == 1 ? 1 : static_cast<size_t>(s.batch);

  double cpu = 0;  // CPU seconds of the last run
  auto run_pair = [&](Ort::Session& a, Ort::Session& t) {
    for (size_t first = 0; first < n; first += b) {
      size_t count = std::min(b, n - first);
      std::vector<int64_t> shape{static_cast<int64_t>(count)};
      shape.insert(shape.end(), pre->image_shape.begin(), pre->image_shape.end());
      Ort::Value v = Ort::Value::CreateTensor(mem, pre->all.data() + first * pre->image_bytes,
                                              count * pre->image_bytes, shape.data(), shape.size(), et);
      const char* ins[] = {in_name.get()};
      const char* outs[] = {out_name.get()};
      auto r1 = a.Run(Ort::RunOptions{nullptr}, ins, &v, 1, outs, 1);
      const char* tins[] = {tin_name.get()};
      const char* touts[] = {tout_name.get()};
      auto r2 = t.Run(Ort::RunOptions{nullptr}, tins, &v, 1, touts, 1);
    }
  };
  // Warm: sessions made and run once before timing (steady-state inference). Cold: a script's
  // cost, sessions made inside the timed run, as fetafix compare makes its own.
  auto plain_ort = [&](bool cold) {
    auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    if (cold) {
      Ort::Session a(env, c.source.c_str(), so), t(env, c.target.c_str(), so);
      run_pair(a, t);
    } else {
      run_pair(s_src, s_tgt);
    }
    cpu = cpu_seconds() - c0;
    return n / std::chrono::duration<double>(Clock::now() - t0).count();
  };
  compare::CompareOptions opt;
  opt.threads = s.threads;
  opt.batch_size = s.batch;
  opt.progress = ProgressMode::kQuiet;
  if (!c.task.empty()) opt.task = compare::ComparatorRegistry::instance().parse(c.task).value();
  double discrepancy = 0;
  auto fetafix_compare = [&] {
    auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    auto r = compare::compare_models({&src->proto, c.source.string(), c.preset}, {&tgt->proto, c.target.string(), c.preset},
                                     c.images, opt);
    double rate = n / std::chrono::duration<double>(Clock::now() - t0).count();
    cpu = cpu_seconds() - c0;
    if (!r.ok()) { std::fprintf(stderr, "%s\n", r.error().message.c_str()); std::exit(2); }
    discrepancy = r->summary.discrepancy;
    return rate;
  };

  std::printf("bench_compare: %zu images, %s vs %s, task %s, input %s, threads=%d (0 = one per core), batch=%zu, ORT %s\n",
              n, c.source.filename().c_str(), c.target.filename().c_str(), c.task.empty() ? "label" : c.task.c_str(),
              shape_to_string(pre->image_shape).c_str(), s.threads, b, Ort::GetVersionString().c_str());
  plain_ort(false);  // warm-up: first-run allocations and page faults
  std::vector<double> warm_rates, cold_rates, ff_rates, warm_cpu, cold_cpu, ff_cpu;
  for (int r = 0; r < s.rounds; ++r) {
    warm_rates.push_back(plain_ort(false));
    warm_cpu.push_back(cpu / n);
    cold_rates.push_back(plain_ort(true));
    cold_cpu.push_back(cpu / n);
    ff_rates.push_back(fetafix_compare());
    ff_cpu.push_back(cpu / n);
    std::printf("  round %d: plain ORT warm %.2f img/s (%.3f CPU s/img), cold %.2f img/s (%.3f), fetafix compare %.2f "
                "img/s (%.3f)\n", r + 1, warm_rates.back(), warm_cpu.back(), cold_rates.back(), cold_cpu.back(),
                ff_rates.back(), ff_cpu.back());
  }
  std::printf("median img/s: plain ORT warm %.2f, cold %.2f, fetafix compare %.2f: ratio %.3f to warm, %.3f to cold "
              "(goal >= 0.9)\n", median(warm_rates), median(cold_rates), median(ff_rates),
              median(ff_rates) / median(warm_rates), median(ff_rates) / median(cold_rates));
  std::printf("median CPU s/img: plain ORT warm %.3f, cold %.3f, fetafix compare %.3f: ratio %.3f to warm, %.3f to "
              "cold; discrepancy %.4f\n", median(warm_cpu), median(cold_cpu), median(ff_cpu),
              median(warm_cpu) / median(ff_cpu), median(cold_cpu) / median(ff_cpu), discrepancy);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path assets = std::getenv("FETAFIX_ASSETS") ? std::getenv("FETAFIX_ASSETS") : FETAFIX_DEFAULT_ASSETS;
  std::vector<std::string> pos;
  Settings s;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) s.threads = std::atoi(argv[++i]);
    else if (a == "--batch" && i + 1 < argc) s.batch = std::atoi(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc) s.rounds = std::atoi(argv[++i]);
    else if (a == "--images" && i + 1 < argc) s.images = std::atoi(argv[++i]);
    else if (a == "--size" && i + 1 < argc) s.size = std::atoi(argv[++i]);
    else pos.push_back(a);
  }
  if (pos.size() == 1 && pos[0] == "ocr-det") {
    BenchCase c = ocr_det_case(assets, s);
    return c.source.empty() ? 0 : run(c, s);
  }
  BenchCase c;
  c.source = c.target = assets / "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx";
  c.images = assets / "images/imagenet-samples";
  if (pos.size() == 3) { c.source = pos[0]; c.target = pos[1]; c.images = pos[2]; }
  if (!fs::exists(c.source) || !fs::exists(c.images)) {
    std::fprintf(stderr, "bench_compare: skipped: %s or %s not found (set FETAFIX_ASSETS)\n", c.source.c_str(),
                 c.images.c_str());
    return 0;
  }
  auto m = model::load_model(c.source);
  if (!m.ok()) { std::fprintf(stderr, "%s\n", m.error().message.c_str()); return 2; }
  c.preset = data::preset_by_name(m->proto.graph().input(0).type().tensor_type().elem_type() == onnx::TensorProto::UINT8
                                      ? "uint8" : "torch").value();
  return run(c, s);
}
