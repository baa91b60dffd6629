// Verdicts (and the errors that stop a pass) as bytes, for the ranks of a sharded pass to
// exchange (compare/shard.h): every field, evidence included, so a verdict decoded on another
// rank is the one its owner computed, bit for bit.
#pragma once

#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "compare/comparator.h"

namespace fetafix::compare {

void encode(ByteWriter& out, const Verdict& v);
void decode(ByteReader& in, Verdict& v);

void encode(ByteWriter& out, const Error& e);
void decode(ByteReader& in, Error& e);

}  // namespace fetafix::compare
