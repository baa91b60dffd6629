#include "support/ocr.h"

#include <cstdlib>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "support/assets.h"

namespace fetafix::testing {
namespace fs = std::filesystem;

fs::path ocr_models_dir() {
  fs::path p = fs::path(FETAFIX_SOURCE_DIR) / "third_party" / "ocr-models";
  if (const char* env = std::getenv("FETAFIX_OCR_MODELS"); env && *env) p = env;
  std::error_code ec;
  return fs::is_directory(p, ec) ? p : fs::path{};
}

std::vector<std::pair<std::string, std::string>> render_ocr_samples(const fs::path& dir, const std::string& kind,
                                                                    int count, int size) {
  const fs::path script = fs::path(FETAFIX_SOURCE_DIR) / "scripts" / "make_ocr_samples.sh";
  const fs::path assets = assets_dir();
  if (assets.empty()) return {};
  const std::string cmd = fmt::format("FETAFIX_ASSETS='{}' bash '{}' {} '{}' {} {}", assets.string(), script.string(),
                                      kind, dir.string(), count, size);
  if (std::system(cmd.c_str()) != 0) return {};
  std::vector<std::pair<std::string, std::string>> labels;
  std::ifstream in(dir / "labels.txt");
  std::string line;
  while (std::getline(in, line))
    if (auto tab = line.find('\t'); tab != std::string::npos) labels.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  return labels;
}

data::Preset ppocr_det_preset(int size) {
  data::Preset p = data::load_preset_file(fs::path(FETAFIX_SOURCE_DIR) / "presets" / "ppocr-det.json").value();
  p.width = p.height = size;
  return p;
}

data::Preset ppocr_rec_preset() {
  return data::load_preset_file(fs::path(FETAFIX_SOURCE_DIR) / "presets" / "ppocr-rec.json").value();
}

void write_ppocr_charset(const fs::path& path) {
  std::ifstream in(ocr_models_dir() / "ppocr_keys_v1.txt", std::ios::binary);
  std::string keys((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!keys.empty() && keys.back() != '\n') keys += '\n';
  std::ofstream(path, std::ios::binary) << keys << " \n";
}

bool edit_constant(onnx::ModelProto& model, const std::string& output, float scale, float shift) {
  for (auto& node : *model.mutable_graph()->mutable_node()) {
    if (node.op_type() != "Constant" || node.output_size() != 1 || node.output(0) != output) continue;
    for (auto& attr : *node.mutable_attribute()) {
      if (attr.name() != "value") continue;
      onnx::TensorProto* t = attr.mutable_t();
      if (t->data_type() != onnx::TensorProto::FLOAT) return false;
      if (!t->raw_data().empty()) {
        std::string raw = t->raw_data();
        for (size_t i = 0; i + 4 <= raw.size(); i += 4) {
          float v;
          std::memcpy(&v, raw.data() + i, 4);
          v = v * scale + shift;
          std::memcpy(raw.data() + i, &v, 4);
        }
        t->set_raw_data(raw);
      } else {
        for (auto& v : *t->mutable_float_data()) v = v * scale + shift;
      }
      return true;
    }
  }
  return false;
}

}  // namespace fetafix::testing
