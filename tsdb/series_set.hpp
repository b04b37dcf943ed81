// The series a twin fed, as 64-bit hashes: an open-addressing set (linear probing, at most
// half full), so that asking about a leaf costs a multiply and, mostly, one cache line. A
// write under a trigger over a long array asks about every leaf until the series limit
// closes (observer.hpp); std::unordered_set cost a division and a node per lookup. Most
// series asked about are not in the set: a bit per key in a map of 8 bits per slot (1/8 of
// the table's memory) answers most of them with one load, without probing.
//
// Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace twins {

class SeriesSet {
 public:
  bool Contains(uint64_t series) const {
    if (count_ == 0) return false;
    const uint64_t key = Key(series);
    if (!Marked(key)) return false;
    for (size_t i = Slot(key);; i = (i + 1) & Mask()) {
      if (slots_[i] == key) return true;
      if (slots_[i] == 0) return false;
    }
  }

  // Adds `series`, which must not be in the set yet.
  void Insert(uint64_t series) {
    if ((count_ + 1) * 2 > slots_.size()) Grow();
    Place(Key(series));
    ++count_;
  }

  size_t size() const { return count_; }

 private:
  // 0 marks an empty slot: the one series hashed to 0 is kept as 1 (both then stand for it).
  static uint64_t Key(uint64_t series) { return series == 0 ? 1 : series; }
  // Fibonacci hashing: the high bits of the product, so any bits of the key count.
  size_t Slot(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }
  size_t Mask() const { return slots_.size() - 1; }

  // The key's bit in marks_: other bits of another product than the slot's.
  size_t Mark(uint64_t key) const { return static_cast<size_t>((key * 0xC2B2AE3D27D4EB4Full) >> mark_shift_); }
  bool Marked(uint64_t key) const {
    const size_t bit = Mark(key);
    return (marks_[bit / 64] >> (bit % 64) & 1) != 0;
  }

  void Place(uint64_t key) {
    size_t i = Slot(key);
    while (slots_[i] != 0) i = (i + 1) & Mask();
    slots_[i] = key;
    const size_t bit = Mark(key);
    marks_[bit / 64] |= uint64_t{1} << (bit % 64);
  }

  void Grow() {
    std::vector<uint64_t> old(slots_.empty() ? 16 : slots_.size() * 2);
    old.swap(slots_);
    shift_ = 64 - __builtin_ctzll(slots_.size());
    marks_.assign(slots_.size() / 8, 0);  // 8 bits per slot
    mark_shift_ = shift_ - 3;
    for (uint64_t key : old) {
      if (key != 0) Place(key);
    }
  }

  std::vector<uint64_t> slots_;
  std::vector<uint64_t> marks_;  // bit Mark(key) set for each key in slots_
  size_t count_ = 0;
  int shift_ = 64;
  int mark_shift_ = 64;
};

}  // namespace twins
