// Reading every shard's metrics (core/metrics.h) in one scrape.
//
//   std::vector<metrics::family> all = co_await metrics::collect_all_shards("reef_http");
//
// Each shard reads its own registry on its own thread (through the smp
// queues: no shared counters, nothing atomic on the fast path); the
// samples come back with a "shard" label and are merged by name, shard 0's
// first.
//
// Thread rules: called on a shard; the result is the caller's.
#pragma once

#include <string>
#include <vector>

#include "core/future.h"
#include "core/metrics.h"

namespace reef::metrics {

/// Every shard's metrics whose full name starts with `name_prefix`, each
/// sample labelled shard="N": families sorted by name, and within one the
/// shards in order. Fails if a shard could not be asked (it is stopping:
/// at once, shard_stopped_error), after every other shard has answered.
future<std::vector<family>> collect_all_shards(std::string name_prefix = {}) noexcept;

/// Merges per-shard readings (one vector per shard, in shard order) into
/// one list of families sorted by name, adding shard="N" to each sample.
/// A family whose kind or help differ between shards keeps the first.
std::vector<family> merge_shards(std::vector<std::vector<family>> per_shard);

}  // namespace reef::metrics
