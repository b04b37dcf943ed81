// A map from string keys (twin ids) to values, bounded by the sum of the values' charges
// (roughly, their bytes): inserting or growing past the capacity evicts the least recently
// used entries. Find and Insert mark an entry used.
//
// Not thread-safe: callers hold their own lock.
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace twins {

template <class Value>
class LruMap {
 public:
  explicit LruMap(size_t capacity) : capacity_(capacity) {}

  // The value under `key`, or nullptr.
  Value* Find(std::string_view key) {
    auto found = index_.find(key);
    if (found == index_.end()) return nullptr;
    entries_.splice(entries_.begin(), entries_, found->second);
    return &found->second->value;
  }

  // Sets `key` to `value`, charged `charge`, and evicts others while over the capacity (an
  // entry larger than the capacity alone stays until the next insertion).
  Value& Insert(std::string_view key, Value value, size_t charge) {
    if (Value* existing = Find(key)) {
      *existing = std::move(value);
      Charge(key, charge);
      return *existing;
    }
    entries_.push_front({std::string(key), std::move(value), 0});
    index_.emplace(entries_.front().key, entries_.begin());
    Charge(key, charge);
    return entries_.front().value;
  }

  // Changes the charge of `key`'s entry (which must exist), evicting others if needed.
  void Charge(std::string_view key, size_t charge) {
    auto entry = index_.at(key);
    total_ = total_ - entry->charge + charge;
    entry->charge = charge;
    while (total_ > capacity_ && entries_.size() > 1 && &entries_.back() != &*entry) {
      total_ -= entries_.back().charge;
      index_.erase(entries_.back().key);
      entries_.pop_back();
    }
  }

  size_t size() const { return entries_.size(); }
  size_t charge() const { return total_; }

 private:
  struct Entry {
    std::string key;
    Value value;
    size_t charge;
  };

  const size_t capacity_;
  size_t total_ = 0;
  std::list<Entry> entries_;                                                         // most recently used first
  std::unordered_map<std::string_view, typename std::list<Entry>::iterator> index_;  // keys point into entries_
};

}  // namespace twins
