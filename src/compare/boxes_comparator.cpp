// `boxes`: detections. Two kinds of heads:
//   - raw heads (no classes= output): boxes [N, A, 4] and scores [N, A, C] (or [N, A] for one
//     class) per anchor; each (anchor, class) scoring >= threshold is a detection, then
//     class-wise NMS at IoU nms= keeps the best, at most max= per sample;
//   - heads that ran NMS themselves (classes= given): boxes [N, K, 4], scores [N, K],
//     classes [N, K] and optionally count [N] (TF Object Detection API style); the first
//     count detections scoring >= threshold are kept.
// Both sets are matched one to one, same label, best IoU first, at IoU >= iou=. Agree when
// every detection on both sides is matched; distance = 1 - sum(matched IoU) / (|S| + |T| -
// matched), i.e. 0 for identical sets and 1 when nothing matches (the Jaccard index of the two
// sets, with matched pairs counting by their IoU).
//
// Defaults, and why: threshold 0.5 (what detection demos and the TF OD API draw); nms 0.5
// (torchvision's and most SSD/YOLO heads'); iou 0.9 — a converted detector should put each box
// almost exactly where the original did (float32 kernel differences move boxes by far less than
// a pixel), while 0.5, the benchmark value for "found the object", would let a box shifted by a
// third of its width count as agreeing; max 100 (COCO's detections per image).
#include <cmath>
#include <numeric>

#include "compare/builtin_comparators.h"

namespace fetafix::compare {

namespace {

// Anchors x classes considered per class before NMS: bounds the quadratic NMS on noisy heads.
constexpr size_t kMaxCandidatesPerClass = 1000;

enum class BoxFormat { kXYXY, kYXYX, kCXCYWH };

double iou(const Detection& a, const Detection& b) {
  const double ix = std::max(0.0, static_cast<double>(std::min(a.box[2], b.box[2])) - std::max(a.box[0], b.box[0]));
  const double iy = std::max(0.0, static_cast<double>(std::min(a.box[3], b.box[3])) - std::max(a.box[1], b.box[1]));
  const double inter = ix * iy;
  auto area = [](const Detection& d) {
    return static_cast<double>(d.box[2] - d.box[0]) * static_cast<double>(d.box[3] - d.box[1]);
  };
  const double uni = area(a) + area(b) - inter;
  return uni > 0 ? inter / uni : (a.box == b.box ? 1.0 : 0.0);
}

std::array<float, 4> to_xyxy(const float* b, BoxFormat f) {
  float x1 = b[0], y1 = b[1], x2 = b[2], y2 = b[3];
  if (f == BoxFormat::kYXYX) {
    x1 = b[1]; y1 = b[0]; x2 = b[3]; y2 = b[2];
  } else if (f == BoxFormat::kCXCYWH) {
    x1 = b[0] - b[2] / 2; y1 = b[1] - b[3] / 2; x2 = b[0] + b[2] / 2; y2 = b[1] + b[3] / 2;
  }
  return {std::min(x1, x2), std::min(y1, y2), std::max(x1, x2), std::max(y1, y2)};
}

bool by_score(const Detection& a, const Detection& b) {
  if (a.score != b.score) return a.score > b.score;
  if (a.label != b.label) return a.label < b.label;
  return a.box < b.box;  // a total order: equal inputs give equal outputs on every run
}

std::vector<Detection> non_max_suppression(std::vector<Detection> candidates, double nms_iou) {
  std::sort(candidates.begin(), candidates.end(), by_score);
  std::vector<Detection> kept;
  for (const auto& c : candidates) {
    bool suppressed = false;
    for (const auto& k : kept) suppressed = suppressed || (k.label == c.label && iou(k, c) > nms_iou);
    if (!suppressed) kept.push_back(c);
  }
  return kept;
}

class BoxesComparator final : public Comparator {
 public:
  using Comparator::Comparator;

  Status on_bind(const ModelOutputs&, const ModelOutputs&) override {
    const std::string format = task().text("format", "xyxy");
    format_ = format == "yxyx" ? BoxFormat::kYXYX : format == "cxcywh" ? BoxFormat::kCXCYWH : BoxFormat::kXYXY;
    threshold_ = task().number("threshold", 0.5);
    nms_ = task().is("nms", "none") ? std::optional<double>() : task().number("nms", 0.5);
    iou_ = task().number("iou", 0.9);
    max_ = task().integer("max", 100);
    background_ = task().is("background", "none") || !task().has("background")
                      ? std::optional<int64_t>()
                      : task().integer("background", 0);
    activation_ = task().text("activation", "none");
    if (iou_ <= 0 || iou_ > 1) return make_error("--task boxes: iou must be in (0, 1] (got {})", iou_);
    if (max_ < 1) return make_error("--task boxes: max must be at least 1 (got {})", max_);
    if (task().has("count") && !task().has("classes"))
      return make_error("--task boxes: count= goes with classes= (a head that already ran NMS)");
    FETAFIX_ASSIGN_OR_RETURN(boxes_, resolve_output("boxes", "boxes"));
    FETAFIX_ASSIGN_OR_RETURN(scores_, resolve_output("scores", "scores"));
    if (task().has("classes")) {
      FETAFIX_ASSIGN_OR_RETURN(classes_, resolve_output("classes"));
    }
    if (task().has("count")) {
      FETAFIX_ASSIGN_OR_RETURN(count_, resolve_output("count"));
    }
    if (boxes_ == scores_) return make_error("--task boxes: boxes= and scores= name the same output");
    return {};
  }

  Result<Verdict> compare(std::span<const Tensor> source, std::span<const Tensor> target) const override {
    BoxesEvidence e;
    e.normalized = task().flag("normalized", true);
    FETAFIX_ASSIGN_OR_RETURN(e.source, detections(source, true));
    FETAFIX_ASSIGN_OR_RETURN(e.target, detections(target, false));
    e.matches = match(e.source, e.target);
    double matched_iou = 0;
    for (const auto& m : e.matches) matched_iou += m.iou;
    const size_t union_count = e.source.size() + e.target.size() - e.matches.size();
    Verdict v;
    v.agree = e.matches.size() == e.source.size() && e.matches.size() == e.target.size();
    v.distance = union_count ? 1.0 - matched_iou / union_count : 0.0;
    v.detail = fmt::format("{} vs {} detections, {} matched", e.source.size(), e.target.size(), e.matches.size());
    if (!e.matches.empty()) v.detail += fmt::format(" (mean IoU {:.3f})", matched_iou / e.matches.size());
    v.evidence = std::move(e);
    return v;
  }

  TaskSummary summarize(std::span<const Verdict> verdicts) const override {
    size_t source = 0, target = 0, matched = 0;
    for (const auto& v : verdicts) {
      const auto& e = std::get<BoxesEvidence>(v.evidence);
      source += e.source.size();
      target += e.target.size();
      matched += e.matches.size();
    }
    TaskSummary out;
    out.figures = {{"source_detections", source}, {"target_detections", target}, {"matched", matched},
                   {"iou", iou_}, {"threshold", threshold_}};
    return out;
  }

 private:
  Result<std::vector<Detection>> detections(std::span<const Tensor> outs, bool source_side) const {
    const auto pick = [&](const std::pair<size_t, size_t>& p) -> const Tensor& {
      return outs[source_side ? p.first : p.second];
    };
    const std::string& label = source_side ? source_model().label : target_model().label;
    const Tensor& boxes = pick(boxes_);
    if (boxes.numel() % 4)
      return make_error("{}: boxes output has shape {}: not a list of 4-number boxes", label, shape_to_string(boxes.shape));
    const std::vector<float> b = values_of(boxes), s = values_of(pick(scores_));
    const size_t anchors = b.size() / 4;
    if (anchors == 0) return std::vector<Detection>{};
    if (s.size() % anchors)
      return make_error("{}: scores output has shape {}, which does not divide into the {} boxes", label,
                        shape_to_string(pick(scores_).shape), anchors);
    if (classes_) {
      const std::vector<float> c = values_of(pick(*classes_));
      if (c.size() != anchors || s.size() != anchors)
        return make_error("{}: classes and scores need one value per box ({} boxes)", label, anchors);
      size_t count = anchors;
      if (count_) {
        const std::vector<float> n = values_of(pick(*count_));
        if (n.empty()) return make_error("{}: the count output is empty", label);
        count = static_cast<size_t>(std::clamp(n[0], 0.0f, static_cast<float>(anchors)));
      }
      std::vector<Detection> out;
      for (size_t a = 0; a < count; ++a)
        if (s[a] >= threshold_)
          out.push_back({static_cast<int64_t>(std::lround(c[a])), s[a], to_xyxy(b.data() + 4 * a, format_)});
      std::sort(out.begin(), out.end(), by_score);
      return out;
    }
    return raw_detections(b, s, anchors);
  }

  std::vector<Detection> raw_detections(const std::vector<float>& b, std::vector<float> s, size_t anchors) const {
    const size_t classes = s.size() / anchors;
    if (activation_ == "sigmoid")
      for (auto& x : s) x = 1.0f / (1.0f + std::exp(-x));
    if (activation_ == "softmax")
      for (size_t a = 0; a < anchors; ++a) {
        float* row = s.data() + a * classes;
        const float top = *std::max_element(row, row + classes);
        float sum = 0;
        for (size_t c = 0; c < classes; ++c) sum += row[c] = std::exp(row[c] - top);
        for (size_t c = 0; c < classes; ++c) row[c] /= sum;
      }
    std::vector<std::vector<Detection>> per_class(classes);
    for (size_t a = 0; a < anchors; ++a)
      for (size_t c = 0; c < classes; ++c) {
        if (background_ && static_cast<int64_t>(c) == *background_) continue;
        const float score = s[a * classes + c];
        if (score >= threshold_) per_class[c].push_back({static_cast<int64_t>(c), score, to_xyxy(b.data() + 4 * a, format_)});
      }
    std::vector<Detection> all;
    for (auto& list : per_class) {
      if (list.size() > kMaxCandidatesPerClass) {
        std::partial_sort(list.begin(), list.begin() + kMaxCandidatesPerClass, list.end(), by_score);
        list.resize(kMaxCandidatesPerClass);
      }
      auto kept = nms_ ? non_max_suppression(std::move(list), *nms_) : std::move(list);
      all.insert(all.end(), kept.begin(), kept.end());
    }
    std::sort(all.begin(), all.end(), by_score);
    if (all.size() > static_cast<size_t>(max_)) all.resize(static_cast<size_t>(max_));
    return all;
  }

  // Greedy one-to-one matching, best IoU first (ties: lower indices first, so runs repeat).
  std::vector<BoxMatch> match(const std::vector<Detection>& s, const std::vector<Detection>& t) const {
    std::vector<BoxMatch> candidates;
    for (size_t i = 0; i < s.size(); ++i)
      for (size_t j = 0; j < t.size(); ++j)
        if (s[i].label == t[j].label)
          if (const double o = iou(s[i], t[j]); o >= iou_) candidates.push_back({i, j, o});
    std::stable_sort(candidates.begin(), candidates.end(), [](const BoxMatch& a, const BoxMatch& b) { return a.iou > b.iou; });
    std::vector<bool> s_used(s.size()), t_used(t.size());
    std::vector<BoxMatch> matches;
    for (const auto& c : candidates) {
      if (s_used[c.source] || t_used[c.target]) continue;
      s_used[c.source] = t_used[c.target] = true;
      matches.push_back(c);
    }
    std::sort(matches.begin(), matches.end(), [](const BoxMatch& a, const BoxMatch& b) { return a.source < b.source; });
    return matches;
  }

  BoxFormat format_ = BoxFormat::kXYXY;
  double threshold_ = 0.5, iou_ = 0.9;
  std::optional<double> nms_;
  int64_t max_ = 100;
  std::optional<int64_t> background_;
  std::string activation_;
  std::pair<size_t, size_t> boxes_, scores_;
  std::optional<std::pair<size_t, size_t>> classes_, count_;
};

}  // namespace

ComparatorKind boxes_comparator_kind() {
  return kind_of<BoxesComparator>(
      "boxes", "detections: agree when both sets match one to one by label at IoU >= iou; distance = 1 - matched IoU share",
      {
        {"boxes", OptionType::kText, "the output called 'boxes'", "the [N, A, 4] box output"},
        {"scores", OptionType::kText, "the output called 'scores'", "[N, A, C] (or [N, A]) per-anchor scores"},
        {"classes", OptionType::kText, "none", "per-detection labels of a head that already ran NMS"},
        {"count", OptionType::kText, "none", "number of valid detections (with classes=)"},
        {"format", OptionType::kText, "xyxy", "box coordinates", false, {}, {"xyxy", "yxyx", "cxcywh"}},
        {"normalized", OptionType::kBool, "true", "boxes in [0,1] image units (how a report draws them; IoU is scale-free)"},
        {"background", OptionType::kInteger, "none", "a class index that is not an object (raw heads)", false, {"none"}},
        {"activation", OptionType::kText, "none", "applied to raw scores first", false, {}, {"none", "sigmoid", "softmax"}},
        {"threshold", OptionType::kNumber, "0.5", "minimum score of a detection"},
        {"nms", OptionType::kNumber, "0.5", "IoU for class-wise NMS on raw heads", false, {"none"}},
        {"iou", OptionType::kNumber, "0.9", "minimum IoU for a Source and a Target detection to match"},
        {"max", OptionType::kInteger, "100", "detections kept per sample (raw heads)"},
      },
      [](const std::vector<runtime::ValueInfo>& outputs) {
        return outputs.size() >= 2 && std::any_of(outputs.begin(), outputs.end(), [](const auto& o) {
                 return !o.shape.empty() && o.shape.back() == 4;
               });
      });
}

}  // namespace fetafix::compare
