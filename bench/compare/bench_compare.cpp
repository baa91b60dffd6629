// Usage: bench_compare [SOURCE.onnx TARGET.onnx IMAGE_DIR] [--threads N] [--batch B] [--rounds R]
// Defaults: MobileNetV2 int8 from ../shared/assets as both Source and Target, over
// images/imagenet-samples. Rounds alternate plain-ORT and fetafix runs so machine noise
// hits both; the ratio of medians is the figure to report.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <onnxruntime_cxx_api.h>
#include <tbb/parallel_for.h>

#include "compare/compare.h"
#include "model/model.h"
#include "runtime/session.h"

using namespace fetafix;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main(int argc, char** argv) {
  fs::path assets = std::getenv("FETAFIX_ASSETS") ? std::getenv("FETAFIX_ASSETS") : FETAFIX_DEFAULT_ASSETS;
  std::vector<std::string> pos;
  int threads = 0, batch = 8, rounds = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--batch" && i + 1 < argc) batch = std::atoi(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else pos.push_back(a);
  }
  fs::path src_path = assets / "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx", tgt_path = src_path,
           image_dir = assets / "images/imagenet-samples";
  if (pos.size() == 3) { src_path = pos[0]; tgt_path = pos[1]; image_dir = pos[2]; }
  if (!fs::exists(src_path) || !fs::exists(image_dir)) {
    std::fprintf(stderr, "bench_compare: skipped: %s or %s not found (set FETAFIX_ASSETS)\n", src_path.c_str(),
                 image_dir.c_str());
    return 0;
  }
  auto src = model::load_model(src_path), tgt = model::load_model(tgt_path);
  if (!src.ok() || !tgt.ok()) {
    std::fprintf(stderr, "%s\n", (!src.ok() ? src.error() : tgt.error()).message.c_str());
    return 2;
  }
  auto preset = data::preset_by_name(
      src->proto.graph().input(0).type().tensor_type().elem_type() == onnx::TensorProto::UINT8 ? "uint8" : "torch");
  auto files = data::list_images(image_dir);
  if (!files.ok()) { std::fprintf(stderr, "%s\n", files.error().message.c_str()); return 2; }

  // Preprocess everything once, outside the timed region, for the plain-ORT baseline.
  auto probe = runtime::Session::create(src->proto, {}, src_path.string());
  if (!probe.ok()) { std::fprintf(stderr, "%s\n", probe.error().message.c_str()); return 2; }
  const auto& in = (*probe)->inputs()[0];
  auto bound = data::bind_preset_to_input(*preset, in.shape, in.dtype, in.name).value();
  const size_t n = files->size();
  std::vector<int64_t> image_shape = bound.layout == data::Layout::kNCHW
                                         ? std::vector<int64_t>{3, bound.height, bound.width}
                                         : std::vector<int64_t>{bound.height, bound.width, 3};
  const size_t image_bytes = static_cast<size_t>(shape_numel(image_shape)) * dtype_size(bound.dtype);
  std::vector<std::byte> all(n * image_bytes);
  tbb::parallel_for(size_t{0}, n, [&](size_t i) {
    auto img = data::decode_image((*files)[i]);
    if (img.ok()) data::preprocess_into(*img, bound, all.data() + i * image_bytes);
  });

  Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "bench");
  Ort::SessionOptions so;
  if (threads > 0) so.SetIntraOpNumThreads(threads);
  so.SetInterOpNumThreads(1);
  so.AddConfigEntry("session.intra_op.allow_spinning", "0");
  Ort::Session s_src(env, src_path.c_str(), so), s_tgt(env, tgt_path.c_str(), so);
  Ort::AllocatorWithDefaultOptions alloc;
  auto in_name = s_src.GetInputNameAllocated(0, alloc), out_name = s_src.GetOutputNameAllocated(0, alloc);
  auto tin_name = s_tgt.GetInputNameAllocated(0, alloc), tout_name = s_tgt.GetOutputNameAllocated(0, alloc);
  const ONNXTensorElementDataType et = bound.dtype == DType::kUInt8 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8
                                                                    : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  const bool fixed1 = in.shape[0] == 1;
  const size_t b = fixed1 ? 1 : static_cast<size_t>(batch);

  auto plain_ort = [&] {
    auto t0 = Clock::now();
    for (size_t first = 0; first < n; first += b) {
      size_t count = std::min(b, n - first);
      std::vector<int64_t> shape{static_cast<int64_t>(count)};
      shape.insert(shape.end(), image_shape.begin(), image_shape.end());
      Ort::Value v = Ort::Value::CreateTensor(mem, all.data() + first * image_bytes, count * image_bytes,
                                              shape.data(), shape.size(), et);
      const char* ins[] = {in_name.get()};
      const char* outs[] = {out_name.get()};
      auto r1 = s_src.Run(Ort::RunOptions{nullptr}, ins, &v, 1, outs, 1);
      const char* tins[] = {tin_name.get()};
      const char* touts[] = {tout_name.get()};
      auto r2 = s_tgt.Run(Ort::RunOptions{nullptr}, tins, &v, 1, touts, 1);
    }
    return n / std::chrono::duration<double>(Clock::now() - t0).count();
  };
  compare::CompareOptions opt;
  opt.threads = threads;
  opt.batch_size = batch;
  opt.progress = ProgressMode::kQuiet;
  double discrepancy = 0;
  auto fetafix_compare = [&] {
    auto t0 = Clock::now();
    auto r = compare::compare_models({&src->proto, src_path.string(), *preset}, {&tgt->proto, tgt_path.string(), *preset},
                                     image_dir, opt);
    double rate = n / std::chrono::duration<double>(Clock::now() - t0).count();
    if (!r.ok()) { std::fprintf(stderr, "%s\n", r.error().message.c_str()); std::exit(2); }
    discrepancy = r->summary.discrepancy;
    return rate;
  };

  std::printf("bench_compare: %zu images, %s vs %s, threads=%d (0 = one per core), batch=%zu, ORT %s\n", n,
              src_path.filename().c_str(), tgt_path.filename().c_str(), threads, b, Ort::GetVersionString().c_str());
  plain_ort();  // warm-up: first-run allocations and page faults
  std::vector<double> ort_rates, ff_rates;
  for (int r = 0; r < rounds; ++r) {
    ort_rates.push_back(plain_ort());
    ff_rates.push_back(fetafix_compare());
    std::printf("  round %d: plain ORT %.1f img/s, fetafix compare %.1f img/s (ratio %.3f)\n", r + 1, ort_rates.back(),
                ff_rates.back(), ff_rates.back() / ort_rates.back());
  }
  const double ratio = median(ff_rates) / median(ort_rates);
  std::printf("median: plain ORT %.1f img/s, fetafix compare %.1f img/s, ratio %.3f (goal >= 0.9); discrepancy %.4f\n",
              median(ort_rates), median(ff_rates), ratio, discrepancy);
  return 0;
}
