// Shared by the repair tests: run both models, apply a plan, check undo and patch replay.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "localize/layer_checks.h"
#include "match/match.h"
#include "model/builder.h"
#include "model/edit.h"
#include "model/model.h"
#include "repair/patch.h"
#include "repair/repair.h"
#include "runtime/session.h"

namespace fetafix::repair::testing {

// Input for `model`'s first input: dynamic dims become 2, values N(0,1) from `seed`.
inline Tensor input_for(const onnx::ModelProto& model, uint64_t seed) {
  auto session = runtime::Session::create(model, runtime::SessionOptions{}, "model");
  EXPECT_TRUE(session.ok()) << session.error().message;
  std::vector<int64_t> shape = (*session)->inputs()[0].shape;
  for (auto& d : shape)
    if (d < 0) d = 2;
  return random_tensor(shape, seed);
}

inline std::vector<Tensor> run_model(const onnx::ModelProto& model, const Tensor& input) {
  runtime::SessionOptions o;
  o.threads = 1;
  auto session = runtime::Session::create(model, o, "model");
  EXPECT_TRUE(session.ok()) << session.error().message;
  if (!session.ok()) return {};
  auto out = (*session)->run({input});
  EXPECT_TRUE(out.ok()) << out.error().message;
  if (!out.ok()) return {};
  out->resize((*session)->num_model_outputs());
  return *out;
}

// Largest |s - t| / max|s| over the first output; infinity when shapes differ.
inline double relative_error(const Tensor& s, const Tensor& t) {
  if (s.shape != t.shape) return INFINITY;
  const auto a = s.to_float(), b = t.to_float();
  double max_abs = 0, diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_abs = std::max(max_abs, std::fabs(double(a[i])));
    diff = std::max(diff, std::fabs(double(a[i]) - double(b[i])));
  }
  return max_abs > 0 ? diff / max_abs : diff;
}

// Source input -> what the Target takes (a layout change, say). Identity by default.
using InputAdapter = std::function<Tensor(const Tensor&)>;

inline double output_error(const onnx::ModelProto& source, const onnx::ModelProto& target, uint64_t seed = 7,
                           const InputAdapter& adapt = {}) {
  const Tensor x = input_for(source, seed);
  auto s = run_model(source, x);
  auto t = run_model(target, adapt ? adapt(x) : x);
  if (s.empty() || t.empty()) return INFINITY;
  return relative_error(s[0], t[0]);
}

// Applies every candidate with one EditLog on a copy of `target`; checks that undo_all gives
// back the Target byte for byte and that the patch JSON replays to the same bytes. Returns
// the repaired model.
inline onnx::ModelProto apply_and_verify(const onnx::ModelProto& target, const std::vector<RepairCandidate>& candidates) {
  onnx::ModelProto repaired = target;
  model::EditLog log(repaired);
  Patch patch;
  for (const auto& c : candidates) {
    auto st = log.apply_all(c.edits);
    EXPECT_TRUE(st.ok()) << c.description << ": " << st.error().message;
    if (c.preset) patch.preprocess = c.preset;
  }
  patch.edits = log.edits();
  const std::string repaired_bytes = model::serialize_model(repaired);

  auto parsed = patch_from_json(nlohmann::json::parse(patch_to_json(patch).dump()));
  EXPECT_TRUE(parsed.ok()) << parsed.error().message;
  onnx::ModelProto replayed = target;
  if (parsed.ok()) {
    auto st = apply_patch(*parsed, replayed);
    EXPECT_TRUE(st.ok()) << st.error().message;
  }
  EXPECT_EQ(model::serialize_model(replayed), repaired_bytes) << "patch replay differs";

  log.undo_all();
  EXPECT_EQ(model::serialize_model(repaired), model::serialize_model(target)) << "undo_all differs";
  onnx::ModelProto result = target;
  auto st = apply_patch(patch, result);
  EXPECT_TRUE(st.ok());
  return result;
}

inline std::vector<RepairCandidate> plan_all(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                             const std::vector<localize::Finding>& findings) {
  std::vector<RepairCandidate> out;
  for (const auto& f : findings) {
    auto c = plan_repair(source, target, f);
    EXPECT_TRUE(c.ok()) << f.summary << ": " << c.error().message;
    if (c.ok()) out.push_back(std::move(c).value());
  }
  return out;
}

inline std::vector<match::NodeMatch> same_name_pairs(const std::vector<std::string>& names) {
  std::vector<match::NodeMatch> pairs;
  for (const auto& n : names) {
    match::NodeMatch m;
    m.source_node = m.target_node = n;
    m.confidence = 1;
    pairs.push_back(m);
  }
  return pairs;
}

}  // namespace fetafix::repair::testing
