#include "smp/metrics.h"

#include <map>
#include <memory>
#include <utility>

#include "core/loop.h"

#include "smp/smp.h"

namespace reef::metrics {

std::vector<family> merge_shards(std::vector<std::vector<family>> per_shard) {
  std::map<std::string, family, std::less<>> merged;
  for (std::size_t shard = 0; shard < per_shard.size(); ++shard) {
    const std::string shard_label = std::to_string(shard);
    for (family& f : per_shard[shard]) {
      auto [it, fresh] = merged.try_emplace(f.name);
      family& into = it->second;
      if (fresh) {
        into.name = f.name;
        into.help = std::move(f.help);
        into.kind = f.kind;
      } else if (into.kind != f.kind) {
        continue;  // not one metric: the first shard's kind stands
      }
      for (sample& s : f.samples) {
        s.labels.emplace_back("shard", shard_label);
        into.samples.push_back(std::move(s));
      }
    }
  }
  std::vector<family> out;
  out.reserve(merged.size());
  for (auto& [name, f] : merged) out.push_back(std::move(f));
  return out;
}

future<std::vector<family>> collect_all_shards(std::string name_prefix) noexcept {
  // Each shard's reading is built on that shard and moved here; its memory
  // is freed here (cross-shard frees go back to their owner).
  std::shared_ptr<std::vector<std::vector<family>>> per_shard;
  std::vector<unsigned> shards;
  try {
    per_shard = std::make_shared<std::vector<std::vector<family>>>(smp::count);
    shards.resize(smp::count);
  } catch (...) {
    return make_exception_future<std::vector<family>>(std::current_exception());
  }
  for (unsigned s = 0; s < smp::count; ++s) shards[s] = s;
  return parallel_for_each(shards,
                           [per_shard, name_prefix = std::move(name_prefix)](unsigned shard) {
                             return smp::submit_to(shard, [name_prefix] { return read_all(name_prefix); })
                                 .then([per_shard, shard](std::vector<family> r) { (*per_shard)[shard] = std::move(r); });
                           })
      .then([per_shard] { return merge_shards(std::move(*per_shard)); });
}

}  // namespace reef::metrics
