// The process exit codes of the fetafix commands, documented in docs/cli.md. The CLI decides
// them (an Error's kind, a command's outcome); the HTML report shows the one its command ended
// with.
#pragma once

namespace fetafix {

enum ExitCode : int {
  kExitOk = 0,             // ran; nothing differs (compare), nothing found (localize), fully repaired (repair)
  kExitDifferent = 1,      // ran; Source and Target disagree, faults found, or improved but not to 0
  kExitBadInput = 2,       // bad usage or bad input; no output written
  kExitNoImprovement = 3,  // repair: nothing lowered the disagreement
  kExitInternal = 4,       // a bug in fetafix or its runtime
};

}  // namespace fetafix
