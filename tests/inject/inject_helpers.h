// Shared checks for the injection tests: inject, diff, replay, run.
#pragma once

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "inject/inject.h"
#include "inject/model_diff.h"
#include "model/builder.h"
#include "model/edit.h"
#include "model/graph.h"
#include "model/model.h"
#include "model/weights.h"
#include "runtime/session.h"

namespace fetafix::inject::testing {

inline std::vector<FaultSpec> specs_of(const std::vector<std::string>& texts) {
  std::vector<FaultSpec> specs;
  for (const auto& t : texts) {
    auto s = parse_fault_spec(t);
    EXPECT_TRUE(s.ok()) << t << ": " << s.error().message;
    if (s.ok()) specs.push_back(*s);
  }
  return specs;
}

inline std::set<std::string> strings_of(const nlohmann::json& array) {
  std::set<std::string> out;
  for (const auto& v : array) out.insert(v.get<std::string>());
  return out;
}

// The subject an entry of diff_models names: the node of "attribute-x N.A", else the name.
inline std::string diff_subject(const std::string& entry) {
  const size_t space = entry.find(' ');
  if (space == std::string::npos) return "";
  std::string subject = entry.substr(space + 1);
  if (entry.rfind("attribute-", 0) == 0) subject = subject.substr(0, subject.rfind('.'));
  return subject;
}

// Exactly what the ground truth lists changed: every diff entry names a listed node or value,
// every listed value appears in the diff, and every listed node either appears in the diff or
// reads a changed weight. Also: replaying the edits on the original gives the same bytes.
inline void expect_truth_matches_diff(const onnx::ModelProto& original, const InjectionResult& r) {
  const auto diff = diff_models(original, r.model);
  std::set<std::string> nodes, values;
  for (const auto& entry : r.ground_truth["injections"]) {
    auto n = strings_of(entry["nodes"]), v = strings_of(entry["values"]);
    nodes.insert(n.begin(), n.end());
    values.insert(v.begin(), v.end());
  }
  std::set<std::string> subjects;
  for (const auto& entry : diff) {
    const std::string subject = diff_subject(entry);
    if (subject.empty()) continue;  // outputs-reordered, opset-changed
    subjects.insert(subject);
    EXPECT_TRUE(nodes.count(subject) || values.count(subject))
        << "'" << entry << "' changed but the ground truth does not list it:\n" << r.ground_truth.dump(1);
  }
  for (const auto& v : values) EXPECT_TRUE(subjects.count(v)) << "value '" << v << "' is listed but did not change";
  std::set<std::string> changed_weights;
  for (const auto& entry : diff)
    if (entry.rfind("weight-", 0) == 0) changed_weights.insert(diff_subject(entry));
  const auto names = model::name_nodes(r.model.graph());
  for (const auto& n : nodes) {
    if (subjects.count(n)) continue;
    auto index = names.index.find(n);
    ASSERT_NE(index, names.index.end()) << "node '" << n << "' is listed but neither changed nor present";
    const auto& node = r.model.graph().node(static_cast<int>(index->second));
    EXPECT_TRUE(std::any_of(node.input().begin(), node.input().end(), [&](const auto& i) { return changed_weights.count(i) > 0; }))
        << "node '" << n << "' is listed but nothing about it changed";
  }
  if (r.ground_truth["replayable"].get<bool>()) {
    onnx::ModelProto copy = original;
    auto st = model::replay(r.ground_truth["edits"], copy);
    ASSERT_TRUE(st.ok()) << st.error().message;
    EXPECT_EQ(model::serialize_model(copy), model::serialize_model(r.model)) << "replay gives other bytes";
    // The per-injection lists, concatenated, are the whole list.
    nlohmann::json all = nlohmann::json::array();
    for (const auto& entry : r.ground_truth["injections"])
      for (const auto& e : entry["edits"]) all.push_back(e);
    EXPECT_EQ(all, r.ground_truth["edits"]["edits"]);
  }
}

inline InjectionResult must_inject(const onnx::ModelProto& model, const std::vector<std::string>& specs,
                                   uint64_t seed = 0) {
  auto r = inject(model, specs_of(specs), seed);
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (!r.ok()) return {};
  expect_truth_matches_diff(model, *r);
  return std::move(r).value();
}

inline std::vector<Tensor> run_model(const onnx::ModelProto& model, const Tensor& input) {
  runtime::SessionOptions options;
  options.threads = 1;
  auto session = runtime::Session::create(model, options);
  EXPECT_TRUE(session.ok()) << session.error().message;
  if (!session.ok()) return {};
  auto out = (*session)->run({input});
  EXPECT_TRUE(out.ok()) << out.error().message;
  return out.ok() ? *out : std::vector<Tensor>{};
}

// max|a-b| <= rtol * max|a| (+ a tiny absolute term for all-zero outputs).
inline void expect_close(const Tensor& a, const Tensor& b, double rtol, const std::string& label) {
  ASSERT_EQ(a.shape, b.shape) << label;
  const auto fa = a.to_float(), fb = b.to_float();
  double max_abs = 0, max_diff = 0;
  for (size_t i = 0; i < fa.size(); ++i) {
    max_abs = std::max(max_abs, std::fabs(static_cast<double>(fa[i])));
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(fa[i]) - fb[i]));
  }
  EXPECT_LE(max_diff, rtol * max_abs + 1e-7) << label << ": max |diff| " << max_diff << " of max |value| " << max_abs;
}

inline Tensor nchw_to_nhwc(const Tensor& t) {
  const int64_t n = t.shape[0], c = t.shape[1], h = t.shape[2], w = t.shape[3];
  Tensor out(t.dtype, {n, h, w, c});
  for (int64_t a = 0; a < n; ++a)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
          out.data<float>()[((a * h + y) * w + x) * c + k] = t.data<float>()[((a * c + k) * h + y) * w + x];
  return out;
}

}  // namespace fetafix::inject::testing
