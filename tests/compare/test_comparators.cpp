// The comparator seam on hand-made output tensors: task parsing, the registry, the
// no-guessing rule, and each built-in kind's agreement, distance and evidence.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "compare/comparator.h"
#include "model/builder.h"
#include "support/assets.h"

namespace fetafix::compare {
namespace {

runtime::ValueInfo out(const std::string& name, std::vector<int64_t> shape) {
  return {name, DType::kFloat32, std::move(shape)};
}

ModelOutputs model(const std::string& label, std::vector<runtime::ValueInfo> outputs) {
  return {label, std::move(outputs)};
}

TaskSpec task(const std::string& text) {
  auto t = ComparatorRegistry::instance().parse(text);
  EXPECT_TRUE(t.ok()) << text << ": " << t.error().message;
  return t.ok() ? *t : TaskSpec{};
}

std::unique_ptr<Comparator> bound(const std::string& text, const ModelOutputs& s, const ModelOutputs& t) {
  auto c = make_comparator(text.empty() ? TaskSpec{} : task(text), s, t);
  EXPECT_TRUE(c.ok()) << text << ": " << c.error().message;
  return c.ok() ? std::move(c).value() : nullptr;
}

std::string bind_error(const std::string& text, const ModelOutputs& s, const ModelOutputs& t) {
  auto c = make_comparator(text.empty() ? TaskSpec{} : task(text), s, t);
  return c.ok() ? "(no error)" : c.error().message;
}

Verdict verdict(const Comparator& c, const std::vector<Tensor>& s, const std::vector<Tensor>& t) {
  auto v = c.compare(s, t);
  EXPECT_TRUE(v.ok()) << v.error().message;
  return v.ok() ? *v : Verdict{};
}

std::string parse_error(const std::string& text) {
  auto t = ComparatorRegistry::instance().parse(text);
  return t.ok() ? "(no error)" : t.error().message;
}

}  // namespace

TEST(Task, ParsesKindAndOptionsAndNamesWhatIsWrong) {
  TaskSpec t = task("boxes:scores=s,boxes=b,iou=0.75,nms=none");
  EXPECT_EQ(t.kind, "boxes");
  EXPECT_EQ(t.text("scores"), "s");
  EXPECT_DOUBLE_EQ(t.number("iou", 0), 0.75);
  EXPECT_TRUE(t.is("nms", "none"));
  EXPECT_EQ(t.to_string(), "boxes:scores=s,boxes=b,iou=0.75,nms=none");
  EXPECT_EQ(task("tensor:output=a,output=b").all("output"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(task("tensor").options.size(), 0u);
  EXPECT_EQ(parse_error("segment"), "--task: unknown kind 'segment' (kinds: label, boxes, mask, text, tensor)");
  EXPECT_EQ(parse_error("label:topk=3"), "--task label: unknown option 'topk' (options: output, top_k, offset)");
  EXPECT_EQ(parse_error("label:top_k=three"), "--task label: top_k=three is not valid (a whole number expected)");
  EXPECT_EQ(parse_error("label:top_k=1,top_k=2"), "--task label: option 'top_k' is given more than once");
  EXPECT_EQ(parse_error("tensor:rtol"), "--task tensor: 'rtol' is not key=value (options are comma-separated: "
                                        "tensor:key=value,key=value)");
  EXPECT_EQ(parse_error("boxes:format=xywh"), "--task boxes: format=xywh is not valid (one of xyxy, yxyx, cxcywh expected)");
  EXPECT_EQ(parse_error("boxes:nms=off"), "--task boxes: nms=off is not valid (a number or 'none' expected)");
  EXPECT_EQ(parse_error("tensor:atol=inf"), "--task tensor: atol=inf is not valid (a number expected)");
  EXPECT_EQ(parse_error(":x=1"), "--task ':x=1': the kind is missing (e.g. --task tensor)");
}

TEST(Registry, HoldsTheBuiltInsAndTakesNewKinds) {
  auto& r = ComparatorRegistry::instance();
  EXPECT_EQ(r.names(), (std::vector<std::string>{"label", "boxes", "mask", "text", "tensor"}));
  EXPECT_FALSE(r.add({"label", "again", {}, nullptr, nullptr}).ok());
  // A kind registered from outside: agree when the first values are equal.
  struct FirstValue final : Comparator {
    using Comparator::Comparator;
    Status on_bind(const ModelOutputs&, const ModelOutputs&) override { return resolve_output("output").ok() ? Status{} : make_error("x"); }
    Result<Verdict> compare(std::span<const Tensor> s, std::span<const Tensor> t) const override {
      Verdict v;
      v.agree = s[0].to_float()[0] == t[0].to_float()[0];
      return v;
    }
  };
  ASSERT_TRUE(r.add({"first_value", "test kind", {{"output", OptionType::kText, "", ""}},
                     [](const TaskSpec& t) -> Result<std::unique_ptr<Comparator>> {
                       return std::unique_ptr<Comparator>(new FirstValue(t));
                     },
                     nullptr})
                  .ok());
  auto c = bound("first_value", model("s", {out("y", {-1, 3})}), model("t", {out("y", {-1, 3})}));
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(verdict(*c, {float_tensor({1, 3}, {1, 2, 3})}, {float_tensor({1, 3}, {1, 5, 5})}).agree);
}

// The rule: no output is read as class scores unless it is rank 2 or --task label says so.
TEST(NoGuessing, OnlyOneRankTwoOutputIsTakenForClassScores) {
  const auto classifier = model("s.onnx", {out("probs", {-1, 1000})});
  EXPECT_EQ(bound("", classifier, classifier)->task().kind, "label");
  const struct {
    std::vector<runtime::ValueInfo> outputs;
    std::string message;
  } cases[] = {
      {{out("boxes", {-1, 16, 4})},
       "s.onnx: outputs 'boxes' [N,16,4] do not look like class scores (one output of shape [batch, classes]); say "
       "what to compare with --task KIND[:key=value,...], KIND one of: mask, text, tensor"},
      {{out("seg", {-1, 10, 112, 112})}, "outputs 'seg' [N,10,112,112] do not look like class scores"},
      {{out("boxes", {-1, 16, 4}), out("scores", {-1, 16, 3})}, "KIND one of: boxes, mask, text, tensor"},
      {{out("logits", {-1, 10}), out("embedding", {-1, 32})}, "KIND one of: label, tensor"},
      {{out("scalar", {})}, "outputs 'scalar' (shape unknown) do not look like class scores"},
  };
  for (const auto& c : cases) {
    const auto m = model("s.onnx", c.outputs);
    const std::string e = bind_error("", m, m);
    EXPECT_NE(e.find(c.message), std::string::npos) << e;
  }
  // Only the Target looks wrong: still refused, with its shapes named.
  EXPECT_NE(bind_error("", classifier, model("t.onnx", {out("probs", {-1, 10, 100})})).find("(Target: 'probs' [N,10,100])"),
            std::string::npos);
  // --task label reads any single output as scores, flattened per sample.
  const auto map = model("s.onnx", {out("seg", {-1, 2, 2, 2})});
  auto c = bound("label", map, map);
  ASSERT_NE(c, nullptr);
  const Tensor a = float_tensor({1, 2, 2, 2}, {0, 0, 0, 5, 0, 0, 0, 0});
  EXPECT_TRUE(verdict(*c, {a}, {a}).agree);
}

TEST(LabelComparator, TopOneWithOffsetAndProbabilityDistance) {
  auto c = bound("label:top_k=2,offset=1", model("s", {out("p", {-1, 3})}), model("t", {out("p", {-1, 4})}));
  ASSERT_NE(c, nullptr);
  const Tensor s = float_tensor({1, 3}, {0.1f, 0.7f, 0.2f});
  const Verdict same = verdict(*c, {s}, {float_tensor({1, 4}, {0.0f, 0.1f, 0.7f, 0.2f})});
  EXPECT_TRUE(same.agree);
  EXPECT_NEAR(same.distance, 0.0, 1e-6);
  const auto& e = std::get<LabelEvidence>(same.evidence);
  EXPECT_EQ(e.target.ids[0], 2);
  EXPECT_EQ(e.target_in_source[0], 1);
  const Verdict other = verdict(*c, {s}, {float_tensor({1, 4}, {0.0f, 0.6f, 0.3f, 0.1f})});
  EXPECT_FALSE(other.agree);
  EXPECT_NEAR(other.distance, 0.5 + 0.4 + 0.1, 1e-6);  // |0.1-0.6| + |0.7-0.3| + |0.2-0.1|
  EXPECT_EQ(other.detail, "1 (0.700) -> 1 (0.600)");
  EXPECT_NE(bind_error("label", model("s", {out("a", {-1, 3}), out("b", {-1, 3})}), model("t", {out("a", {-1, 3})})),
            "(no error)");
}

TEST(TensorComparator, ToleranceNonFiniteShapesAndCosine) {
  const auto m = model("s", {out("a", {-1, 4}), out("b", {-1, 2})});
  auto c = bound("tensor", m, m);
  ASSERT_NE(c, nullptr);
  const Tensor a = float_tensor({1, 4}, {1, 2, 3, 4}), b = float_tensor({1, 2}, {10, -10});
  Verdict v = verdict(*c, {a, b}, {float_tensor({1, 4}, {1.0005f, 2, 3, 4}), b});
  EXPECT_TRUE(v.agree) << v.detail;  // 5e-4 <= 1e-4 + 1e-3 * 1
  EXPECT_GT(v.distance, 0.0);
  v = verdict(*c, {a, b}, {float_tensor({1, 4}, {1.01f, 2, 3, 4}), b});
  EXPECT_FALSE(v.agree);
  EXPECT_NE(v.detail.find("'a': max |T-S| 0.01"), std::string::npos) << v.detail;
  EXPECT_NEAR(v.distance, 0.01 / std::sqrt(1 + 4 + 9 + 16 + 200.0), 1e-6);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  v = verdict(*c, {a, b}, {a, float_tensor({1, 2}, {10, nan})});
  EXPECT_FALSE(v.agree);
  EXPECT_EQ(v.distance, 1000.0);
  EXPECT_EQ(std::get<TensorEvidence>(v.evidence).outputs[1].nonfinite_mismatches, 1);
  const Tensor with_inf = float_tensor({1, 2}, {inf, nan});  // the Source's own non-finite values, repeated
  EXPECT_TRUE(verdict(*c, {a, with_inf}, {a, with_inf}).agree);
  v = verdict(*c, {a, b}, {a, float_tensor({2, 1}, {10, -10})});
  EXPECT_FALSE(v.agree);
  EXPECT_EQ(v.detail, "'b': shape [1,2] vs [2,1]");
  // One output by name; cosine ignores scale.
  auto cos = bound("tensor:output=a,cosine=0.999", m, m);
  ASSERT_NE(cos, nullptr);
  EXPECT_EQ(cos->source_outputs(), (std::vector<size_t>{0}));
  EXPECT_TRUE(verdict(*cos, {a, Tensor()}, {float_tensor({1, 4}, {2, 4, 6, 8}), Tensor()}).agree);
  EXPECT_FALSE(verdict(*cos, {a, Tensor()}, {float_tensor({1, 4}, {4, 3, 2, 1}), Tensor()}).agree);
  EXPECT_EQ(bind_error("tensor:cosine=0.9,rtol=0.1", m, m), "--task tensor: give cosine= or rtol=/atol=, not both");
  EXPECT_EQ(bind_error("tensor:output=c", m, m), "--task tensor: s has no output 'c' (outputs: 'a', 'b')");
}

TEST(TensorComparator, TargetOutputsArePairedByNameElseByOrder) {
  auto c = bound("tensor", model("s", {out("a", {-1, 2}), out("b", {-1, 2})}),
                 model("t", {out("b", {-1, 2}), out("a", {-1, 2})}));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->target_outputs(), (std::vector<size_t>{1, 0}));
  auto renamed = bound("tensor", model("s", {out("a", {-1, 2})}), model("t", {out("Identity:0", {-1, 2})}));
  ASSERT_NE(renamed, nullptr);
  EXPECT_EQ(renamed->target_outputs(), (std::vector<size_t>{0}));
}

// Scores [1, T, C] for a CTC head choosing `ids` step by step.
Tensor ctc(const std::vector<int64_t>& ids, int64_t classes) {
  Tensor t(DType::kFloat32, {1, static_cast<int64_t>(ids.size()), classes});
  for (size_t s = 0; s < ids.size(); ++s) t.data<float>()[s * classes + ids[s]] = 1.0f;
  return t;
}

TEST(TextComparator, GreedyCtcDecodingEditDistanceAndCharset) {
  const auto m = model("rec", {out("probs", {-1, -1, 5})});
  auto c = bound("text", m, m);
  ASSERT_NE(c, nullptr);
  // 1 1 0 1 2 2 0 0 3 -> "1 1 2 3" (repeats collapse, a blank separates the two 1s)
  const Tensor s = ctc({1, 1, 0, 1, 2, 2, 0, 0, 3}, 5);
  Verdict v = verdict(*c, {s}, {ctc({1, 0, 1, 1, 2, 0, 3, 3, 0}, 5)});
  EXPECT_TRUE(v.agree) << v.detail;
  EXPECT_EQ(std::get<TextEvidence>(v.evidence).source_ids, (std::vector<int64_t>{1, 1, 2, 3}));
  EXPECT_EQ(v.detail, "'<1><1><2><3>'");
  v = verdict(*c, {s}, {ctc({1, 0, 0, 0, 2, 2, 0, 0, 4}, 5)});
  EXPECT_FALSE(v.agree);
  EXPECT_EQ(std::get<TextEvidence>(v.evidence).edits, 2u);  // drop a 1, 3 -> 4
  EXPECT_DOUBLE_EQ(v.distance, 0.5);
  const std::filesystem::path dir = testing::temp_dir("text_charset");
  { std::ofstream(dir / "abcd.txt") << "a\nb\nc\nd\n"; }
  auto spelled = bound("text:charset=" + (dir / "abcd.txt").string(), m, m);
  ASSERT_NE(spelled, nullptr);
  EXPECT_EQ(verdict(*spelled, {s}, {ctc({1, 0, 0, 0, 2, 2, 0, 0, 4}, 5)}).detail, "'aabc' -> 'abd' (2 edits)");
  { std::ofstream(dir / "long.txt") << "a\nb\nc\nd\ne\n"; }
  EXPECT_NE(bind_error("text:charset=" + (dir / "long.txt").string(), m, m).find("has 5 symbols, but output 'probs' has 5 "
                                                                                 "classes (4 besides the blank)"),
            std::string::npos);
  { std::ofstream(dir / "bad.txt") << "a\n\xff\xfe\n"; }
  EXPECT_NE(bind_error("text:charset=" + (dir / "bad.txt").string(), m, m).find("line 2 is not valid UTF-8"),
            std::string::npos);
  EXPECT_NE(bind_error("text", model("rec", {out("probs", {-1, 5})}), model("rec", {out("probs", {-1, 5})}))
                .find("must be [batch, time, classes]"),
            std::string::npos);
}

TEST(MaskComparator, ArgmaxThresholdAndIntegerMaps) {
  // Two classes over 2x2 pixels, class axis 1.
  const auto m = model("seg", {out("logits", {-1, 2, 2, 2})});
  auto c = bound("mask", m, m);
  ASSERT_NE(c, nullptr);
  const Tensor s = float_tensor({1, 2, 2, 2}, {1, 1, 0, 0, /**/ 0, 0, 1, 1});  // labels 0 0 1 1
  Verdict v = verdict(*c, {s}, {s});
  EXPECT_TRUE(v.agree);
  EXPECT_DOUBLE_EQ(v.distance, 0.0);
  v = verdict(*c, {s}, {float_tensor({1, 2, 2, 2}, {1, 0, 0, 0, /**/ 0, 1, 1, 1})});  // labels 0 1 1 1
  EXPECT_FALSE(v.agree);
  const auto& e = std::get<MaskEvidence>(v.evidence);
  EXPECT_DOUBLE_EQ(e.pixel_agreement, 0.75);
  EXPECT_DOUBLE_EQ(e.mean_iou, (0.5 + 2.0 / 3.0) / 2);  // class 0: 1/2, class 1: 2/3
  EXPECT_DOUBLE_EQ(v.distance, 1 - e.mean_iou);
  auto lax = bound("mask:min_agreement=0.7", m, m);
  EXPECT_TRUE(verdict(*lax, {s}, {float_tensor({1, 2, 2, 2}, {1, 0, 0, 0, 0, 1, 1, 1})}).agree);
  // A single-channel probability map, cut at the threshold.
  const auto prob = model("det", {out("map", {-1, 1, 2, 2})});
  auto cut = bound("mask:threshold=0.3", prob, prob);
  EXPECT_TRUE(verdict(*cut, {float_tensor({1, 1, 2, 2}, {0.1f, 0.5f, 0.9f, 0.2f})},
                      {float_tensor({1, 1, 2, 2}, {0.2f, 0.4f, 0.8f, 0.0f})})
                  .agree);
  EXPECT_FALSE(verdict(*cut, {float_tensor({1, 1, 2, 2}, {0.1f, 0.5f, 0.9f, 0.2f})},
                       {float_tensor({1, 1, 2, 2}, {0.2f, 0.25f, 0.8f, 0.0f})})
                   .agree);
  // Label maps of different shapes: the Target changed its output; maximal distance.
  v = verdict(*c, {s}, {float_tensor({1, 2, 1, 4}, {1, 1, 0, 0, 0, 0, 1, 1})});
  EXPECT_FALSE(v.agree);
  EXPECT_DOUBLE_EQ(v.distance, 1.0);
  // Integer outputs are labels already (an ArgMax at the end of the model).
  runtime::ValueInfo ids{"ids", DType::kInt64, {-1, 2, 2}};
  auto labels = bound("mask", model("s", {ids}), model("t", {ids}));
  EXPECT_TRUE(verdict(*labels, {int64_tensor({1, 2, 2}, {3, 3, 1, 1})}, {int64_tensor({1, 2, 2}, {3, 3, 1, 1})}).agree);
}

TEST(BoxesComparator, RawHeadsThresholdNmsAndMatchOneToOne) {
  // 3 anchors, 2 classes, xyxy.
  const auto m = model("det", {out("boxes", {-1, 3, 4}), out("scores", {-1, 3, 2})});
  auto c = bound("boxes", m, m);  // outputs called boxes and scores are found by name
  ASSERT_NE(c, nullptr);
  const Tensor boxes = float_tensor({1, 3, 4}, {0, 0, 10, 10, /**/ 1, 1, 10, 10, /**/ 20, 20, 30, 30});
  const Tensor scores = float_tensor({1, 3, 2}, {0.9f, 0.1f, /**/ 0.8f, 0.0f, /**/ 0.2f, 0.7f});
  Verdict v = verdict(*c, {boxes, scores}, {boxes, scores});
  EXPECT_TRUE(v.agree);
  const auto& e = std::get<BoxesEvidence>(v.evidence);
  ASSERT_EQ(e.source.size(), 2u);  // anchor 1 suppressed by anchor 0 (same class, IoU 0.81 > 0.5)
  EXPECT_EQ(e.source[0].label, 0);
  EXPECT_EQ(e.source[1].label, 1);
  EXPECT_DOUBLE_EQ(v.distance, 0.0);
  // The Target's class-1 box moved by 2 px (IoU 0.68 < 0.9): unmatched on both sides.
  const Tensor moved = float_tensor({1, 3, 4}, {0, 0, 10, 10, /**/ 1, 1, 10, 10, /**/ 22, 20, 32, 30});
  v = verdict(*c, {boxes, scores}, {moved, scores});
  EXPECT_FALSE(v.agree);
  EXPECT_EQ(std::get<BoxesEvidence>(v.evidence).matches.size(), 1u);
  EXPECT_DOUBLE_EQ(v.distance, 1.0 - 1.0 / 3);  // one match of IoU 1 over a union of 3 detections
  auto lax = bound("boxes:iou=0.5", m, m);
  EXPECT_TRUE(verdict(*lax, {boxes, scores}, {moved, scores}).agree);
  // Labels swapped: nothing matches.
  const Tensor swapped = float_tensor({1, 3, 2}, {0.1f, 0.9f, 0.0f, 0.8f, 0.7f, 0.2f});
  EXPECT_DOUBLE_EQ(verdict(*c, {boxes, scores}, {boxes, swapped}).distance, 1.0);
  // Background class, no NMS, cxcywh.
  auto bg = bound("boxes:background=0,nms=none,format=cxcywh", m, m);
  const Verdict bgv = verdict(*bg, {boxes, scores}, {boxes, scores});
  const auto& bge = std::get<BoxesEvidence>(bgv.evidence);
  ASSERT_EQ(bge.source.size(), 1u);
  EXPECT_EQ(bge.source[0].box, (std::array<float, 4>{5, 5, 35, 35}));  // cx 20, cy 20, w 30, h 30
  EXPECT_NE(bind_error("boxes", model("det", {out("b", {-1, 3, 4}), out("s", {-1, 3, 2})}), m)
                .find("name the one to read with boxes=NAME"),
            std::string::npos);
}

TEST(BoxesComparator, HeadsThatRanNmsUseClassesAndCount) {
  const auto m = model("ssd", {out("detection_boxes", {-1, 4, 4}), out("detection_scores", {-1, 4}),
                               out("detection_classes", {-1, 4}), out("num_detections", {-1})});
  auto c = bound("boxes:boxes=detection_boxes,scores=detection_scores,classes=detection_classes,count=num_detections,"
                 "format=yxyx",
                 m, m);
  ASSERT_NE(c, nullptr);
  const Tensor boxes = float_tensor({1, 4, 4}, {0, 0, .5f, .5f, .5f, .5f, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1});
  const Tensor scores = float_tensor({1, 4}, {0.9f, 0.6f, 0.55f, 0.99f});
  const Tensor classes = float_tensor({1, 4}, {3, 7, 1, 5});
  Verdict v = verdict(*c, {boxes, scores, classes, float_tensor({1}, {2})},
                      {boxes, scores, classes, float_tensor({1}, {3})});
  EXPECT_FALSE(v.agree);  // the Target reports a third detection
  const auto& e = std::get<BoxesEvidence>(v.evidence);
  EXPECT_EQ(e.source.size(), 2u);
  EXPECT_EQ(e.target.size(), 3u);
  EXPECT_EQ(e.source[0].label, 3);
  EXPECT_EQ(v.detail, "2 vs 3 detections, 2 matched (mean IoU 1.000)");
  EXPECT_EQ(bind_error("boxes:count=num_detections", m, m), "--task boxes: count= goes with classes= (a head that already ran NMS)");
}

}  // namespace fetafix::compare
