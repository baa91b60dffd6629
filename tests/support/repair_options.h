// Repair options for end-to-end tests on the small fixtures: quiet, one thread (tests run in
// parallel), a small activation-analysis sample.
#pragma once

#include "repair/driver.h"

namespace fetafix::testing {

inline repair::RepairOptions quiet_repair_options() {
  repair::RepairOptions o;
  o.localize.compare.progress = ProgressMode::kQuiet;
  o.localize.compare.threads = 1;
  o.localize.activation.threads = 1;
  o.localize.activation.max_similar = 20;
  o.localize.activation.max_dissimilar = 20;
  return o;
}

}  // namespace fetafix::testing
