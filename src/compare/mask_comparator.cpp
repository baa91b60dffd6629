// `mask`: per-pixel maps. Each output becomes a label map: integer outputs are labels
// already; float outputs of rank >= 4 take the argmax along the class axis (axis=, default 1:
// [N, C, H, W]; -1 for [N, H, W, C]); a class axis of size 1, or a float output of rank <= 3
// ([N, H, W]), is a probability map cut at threshold= (default 0.5: the decision boundary of a
// sigmoid; PaddleOCR's DB text detector uses 0.3). Agree when the share of pixels with equal
// labels is at least min_agreement (default 0.99: a converted segmenter should move at most a
// few boundary pixels in a hundred); distance = 1 - mean IoU over the labels present in either map.
#include <algorithm>
#include <map>

#include "compare/builtin_comparators.h"

namespace fetafix::compare {

namespace {

// Labels below this are counted in arrays (argmax and threshold maps always are); others in a map.
constexpr int32_t kDenseLabels = 1 << 16;

// Pixels of each label in either map and where both agree, ascending by label; `equal` = pixels
// with the same label in both.
std::vector<MaskEvidence::ClassIoU> count_labels(const std::vector<int32_t>& s, const std::vector<int32_t>& t,
                                                 int64_t& equal) {
  struct Counts {
    int64_t source = 0, target = 0, both = 0;
  };
  std::map<int32_t, Counts> sparse;
  std::vector<Counts> dense;
  const auto [s_lo, s_hi] = std::minmax_element(s.begin(), s.end());
  const auto [t_lo, t_hi] = std::minmax_element(t.begin(), t.end());
  const bool use_dense = !s.empty() && std::min(*s_lo, *t_lo) >= 0 && std::max(*s_hi, *t_hi) < kDenseLabels;
  if (use_dense) dense.resize(static_cast<size_t>(std::max(*s_hi, *t_hi)) + 1);
  auto at = [&](int32_t label) -> Counts& { return use_dense ? dense[static_cast<size_t>(label)] : sparse[label]; };
  equal = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    ++at(s[i]).source;
    ++at(t[i]).target;
    if (s[i] == t[i]) {
      ++equal;
      ++at(s[i]).both;
    }
  }
  std::vector<MaskEvidence::ClassIoU> out;
  auto add = [&](int32_t label, const Counts& c) {
    if (c.source + c.target == 0) return;
    out.push_back({label, c.source, c.target, static_cast<double>(c.both) / static_cast<double>(c.source + c.target - c.both)});
  };
  for (size_t l = 0; l < dense.size(); ++l) add(static_cast<int32_t>(l), dense[l]);
  for (const auto& [label, c] : sparse) add(label, c);
  return out;
}

struct LabelMap {
  std::vector<int64_t> shape;   // the map's shape (the class axis removed)
  std::vector<int32_t> labels;
};

class MaskComparator final : public Comparator {
 public:
  using Comparator::Comparator;

  Status on_bind(const ModelOutputs&, const ModelOutputs&) override {
    threshold_ = task().number("threshold", 0.5);
    min_agreement_ = task().number("min_agreement", 0.99);
    if (min_agreement_ < 0 || min_agreement_ > 1)
      return make_error("--task mask: min_agreement must be in [0, 1] (got {})", min_agreement_);
    if (task().has("axis")) axis_ = task().integer("axis", 1);
    FETAFIX_ASSIGN_OR_RETURN(output_, resolve_output("output"));
    return {};
  }

  Result<Verdict> compare(std::span<const Tensor> source, std::span<const Tensor> target) const override {
    FETAFIX_ASSIGN_OR_RETURN(LabelMap s, to_labels(source[output_.first], source_model().label));
    FETAFIX_ASSIGN_OR_RETURN(LabelMap t, to_labels(target[output_.second], target_model().label));
    Verdict v;
    MaskEvidence e;
    e.shape = s.shape;
    if (s.shape != t.shape) {
      v.distance = kMaxUnitDistance;
      v.detail = fmt::format("label maps {} vs {}", shape_to_string(s.shape), shape_to_string(t.shape));
      v.evidence = std::move(e);
      return v;
    }
    e.pixels = static_cast<int64_t>(s.labels.size());
    int64_t equal = 0;
    e.classes = count_labels(s.labels, t.labels, equal);
    double iou_sum = 0;
    for (const auto& c : e.classes) iou_sum += c.iou;
    const size_t classes = e.classes.size();
    e.pixel_agreement = e.pixels ? static_cast<double>(equal) / e.pixels : 1.0;
    e.mean_iou = classes == 0 ? 1.0 : iou_sum / classes;
    v.agree = e.pixel_agreement >= min_agreement_;
    v.distance = 1.0 - e.mean_iou;
    v.detail = fmt::format("{:.2f}% pixels agree, mIoU {:.4f} over {} label(s)", 100 * e.pixel_agreement, e.mean_iou,
                           classes);
    v.evidence = std::move(e);
    return v;
  }

  TaskSummary summarize(std::span<const Verdict> verdicts) const override {
    double agreement = 0, miou = 0;
    for (const auto& v : verdicts) {
      const auto& e = std::get<MaskEvidence>(v.evidence);
      agreement += e.pixel_agreement;
      miou += e.mean_iou;
    }
    const double n = verdicts.empty() ? 1.0 : static_cast<double>(verdicts.size());
    TaskSummary out;
    out.figures = {{"mean_pixel_agreement", agreement / n}, {"mean_iou", miou / n}, {"min_agreement", min_agreement_}};
    return out;
  }

 private:
  Result<LabelMap> to_labels(const Tensor& t, const std::string& label) const {
    LabelMap m;
    const bool integer = t.dtype != DType::kFloat32 && t.dtype != DType::kFloat16 && t.dtype != DType::kFloat64 &&
                         t.dtype != DType::kBFloat16;
    const FloatValues v(t);
    const int64_t rank = static_cast<int64_t>(t.shape.size());
    if (integer) {
      m.shape = t.shape;
      m.labels.assign(v.begin(), v.end());
      return m;
    }
    if (!axis_ && rank <= 3) return threshold(t, v);
    const int64_t axis = axis_.value_or(1) < 0 ? axis_.value_or(1) + rank : axis_.value_or(1);
    if (axis < 0 || axis >= rank)
      return make_error("{}: --task mask: axis={} is outside output shape {}", label, axis_.value_or(1),
                        shape_to_string(t.shape));
    if (t.shape[static_cast<size_t>(axis)] == 1) return threshold(t, v);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= t.shape[static_cast<size_t>(d)];
    for (int64_t d = axis + 1; d < rank; ++d) inner *= t.shape[static_cast<size_t>(d)];
    const int64_t classes = t.shape[static_cast<size_t>(axis)];
    m.shape = t.shape;
    m.shape.erase(m.shape.begin() + axis);
    m.labels.resize(static_cast<size_t>(outer * inner));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const float* base = v.data() + o * classes * inner + i;
        int32_t best = 0;
        for (int64_t c = 1; c < classes; ++c)
          if (base[c * inner] > base[best * inner]) best = static_cast<int32_t>(c);
        m.labels[static_cast<size_t>(o * inner + i)] = best;
      }
    return m;
  }

  LabelMap threshold(const Tensor& t, std::span<const float> v) const {
    LabelMap m;
    m.shape = t.shape;
    m.labels.resize(v.size());
    for (size_t i = 0; i < v.size(); ++i) m.labels[i] = v[i] >= threshold_ ? 1 : 0;
    return m;
  }

  double threshold_ = 0.5, min_agreement_ = 0.99;
  std::optional<int64_t> axis_;
  std::pair<size_t, size_t> output_;
};

}  // namespace

ComparatorKind mask_comparator_kind() {
  return kind_of<MaskComparator>(
      "mask", "per-pixel maps: agree when >= min_agreement of the pixels have equal labels; distance = 1 - mIoU",
      {
        {"output", OptionType::kText, "the only output", "the map output"},
        {"axis", OptionType::kInteger, "1 for rank >= 4", "the class axis of a float output (argmax along it)"},
        {"threshold", OptionType::kNumber, "0.5", "cut for single-channel probability maps"},
        {"min_agreement", OptionType::kNumber, "0.99", "share of equal pixels needed to agree"},
      },
      any_output_with_rank([](size_t rank) { return rank >= 3; }));
}

}  // namespace fetafix::compare
