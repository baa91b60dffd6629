#include "support/imagenet.h"

#include <algorithm>

#include <tbb/parallel_for.h>

#include "data/preprocess.h"
#include "runtime/session.h"

namespace fetafix::testing {

Result<double> imagenet_top1(const onnx::ModelProto& model, const std::filesystem::path& image_dir,
                             const std::string& preset_name) {
  FETAFIX_ASSIGN_OR_RETURN(auto files, data::list_images(image_dir));
  std::vector<std::string> wnids;
  for (const auto& f : files) wnids.push_back(f.filename().string().substr(0, f.filename().string().find('_')));
  std::vector<std::string> sorted = wnids;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());

  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(model, {}, "model"));
  const auto& in = session->inputs().at(0);
  FETAFIX_ASSIGN_OR_RETURN(auto base, data::preset_by_name(preset_name));
  FETAFIX_ASSIGN_OR_RETURN(auto preset, data::bind_preset_to_input(base, in.shape, in.dtype, in.name));
  const size_t n = files.size(), batch = 16;
  size_t correct = 0;
  for (size_t first = 0; first < n; first += batch) {
    const size_t count = std::min(batch, n - first);
    const int64_t c = static_cast<int64_t>(count);
    const std::vector<int64_t> shape = preset.layout == data::Layout::kNCHW
                                           ? std::vector<int64_t>{c, 3, preset.height, preset.width}
                                           : std::vector<int64_t>{c, preset.height, preset.width, 3};
    Tensor input(preset.dtype, shape);
    const size_t image_bytes = input.bytes.size() / count;
    std::vector<std::string> errors(count);
    tbb::parallel_for(size_t{0}, count, [&](size_t j) {
      auto image = data::decode_image(files[first + j]);
      if (!image.ok()) { errors[j] = image.error().message; return; }
      data::preprocess_into(*image, preset, input.bytes.data() + j * image_bytes);
    });
    for (const auto& e : errors)
      if (!e.empty()) return make_error("{}", e);
    FETAFIX_ASSIGN_OR_RETURN(auto out, session->run({input}));
    const auto values = out.at(0).to_float();
    const size_t classes = values.size() / count;
    if (classes != sorted.size()) return make_error("model gives {} classes, the samples have {}", classes, sorted.size());
    for (size_t j = 0; j < count; ++j) {
      auto begin = values.begin() + static_cast<std::ptrdiff_t>(j * classes);
      const auto top1 = std::max_element(begin, begin + static_cast<std::ptrdiff_t>(classes)) - begin;
      const auto truth = std::lower_bound(sorted.begin(), sorted.end(), wnids[first + j]) - sorted.begin();
      correct += top1 == truth;
    }
  }
  return static_cast<double>(correct) / static_cast<double>(n);
}

}  // namespace fetafix::testing
