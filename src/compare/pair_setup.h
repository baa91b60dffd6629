// Internal to the compare layer: what compare_models and the evaluator both set up before the
// first sample — the sample set, a session per model, the input feeds (paired Source <-> Target)
// and the task's comparator bound to both models' outputs.
#pragma once

#include <memory>

#include "compare/comparator.h"
#include "compare/compare.h"
#include "compare/runner.h"
#include "data/samples.h"
#include "runtime/session.h"

namespace fetafix::compare {

struct PairSetup {
  data::SampleSet samples;
  std::unique_ptr<runtime::Session> source_session, target_session;
  data::FeedPlan feeds;
  std::unique_ptr<Comparator> comparator;
  // The Target's inputs equal the Source's on every sample (same inputs, same preprocessing):
  // one feed serves both.
  bool shared_feed = false;
};

struct SetupOptions {
  bool allow_spinning = false;  // the sessions' intra-op threads may spin (one session runs at a time)
};

// The sample folder (options.samples), opened on every rank (options.comm): an error on one is an
// error on all.
Result<data::SampleSet> open_samples(const std::filesystem::path& data_dir, const CompareOptions& options);

// Sessions, feeds and comparator for the pair on `samples`. With several ranks, every rank must
// list the same samples, and an error on one is an error on all (collective).
Result<PairSetup> set_up_pair(const ModelSide& source, const ModelSide& target, data::SampleSet samples,
                              const CompareOptions& options, const SetupOptions& setup = {});

// A session's inputs as the feeder sees them.
std::vector<data::InputSlot> input_slots(const runtime::Session& session);
// A session's own outputs (captured values excluded), labelled.
ModelOutputs model_outputs(const runtime::Session& session, const std::string& label);

}  // namespace fetafix::compare
