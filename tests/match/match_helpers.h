// Model rewrites for matching tests: what converters do to names and node order.
#pragma once

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "match/match.h"
#include "model/builder.h"

namespace fetafix::testing {

// The same graph with its nodes in another valid topological order (seeded random pick
// among the ready nodes).
inline onnx::ModelProto shuffled_topologically(const onnx::ModelProto& model, uint64_t seed) {
  onnx::ModelProto out = model;
  const auto& g = model.graph();
  std::set<std::string> available;
  for (const auto& i : g.input()) available.insert(i.name());
  for (const auto& t : g.initializer()) available.insert(t.name());
  available.insert("");
  std::vector<int> pending;
  for (int i = 0; i < g.node_size(); ++i) pending.push_back(i);
  Rng rng(seed);
  out.mutable_graph()->clear_node();
  while (!pending.empty()) {
    std::vector<size_t> ready;
    for (size_t k = 0; k < pending.size(); ++k) {
      const auto& node = g.node(pending[k]);
      if (std::all_of(node.input().begin(), node.input().end(), [&](const std::string& s) { return available.count(s); }))
        ready.push_back(k);
    }
    if (ready.empty()) break;  // a cycle: leave the rest out, the caller's test will fail
    const size_t pick = ready[rng.next_u64() % ready.size()];
    const auto& node = g.node(pending[pick]);
    *out.mutable_graph()->add_node() = node;
    for (const auto& o : node.output()) available.insert(o);
    pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(pick));
  }
  return out;
}

// Every node and every value renamed ("n<i>", "v<i>"): nothing of the old names survives.
inline onnx::ModelProto renamed_everything(const onnx::ModelProto& model) {
  onnx::ModelProto out = model;
  auto& g = *out.mutable_graph();
  std::map<std::string, std::string> fresh;
  auto rename = [&](const std::string& old) -> std::string {
    if (old.empty()) return old;
    auto [it, inserted] = fresh.try_emplace(old, "v" + std::to_string(fresh.size()));
    return it->second;
  };
  for (auto& i : *g.mutable_input()) i.set_name(rename(i.name()));
  for (auto& t : *g.mutable_initializer()) t.set_name(rename(t.name()));
  for (int k = 0; k < g.node_size(); ++k) {
    auto& node = *g.mutable_node(k);
    node.set_name("n" + std::to_string(k));
    for (auto& s : *node.mutable_input()) s = rename(s);
    for (auto& s : *node.mutable_output()) s = rename(s);
  }
  for (auto& o : *g.mutable_output()) o.set_name(rename(o.name()));
  for (auto& vi : *g.mutable_value_info()) vi.set_name(rename(vi.name()));
  return out;
}

// Pairs as source -> target.
inline std::map<std::string, std::string> pair_map(const match::MatchResult& r) {
  std::map<std::string, std::string> m;
  for (const auto& p : r.pairs) m[p.source_node] = p.target_node;
  return m;
}

}  // namespace fetafix::testing
