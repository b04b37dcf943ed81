// Errors as values: every engine and store call returns a Status or a Result<T>.
// No exception crosses the engine boundary; the MQTT and REST layers map a Status
// to their own wire format (plugin/mqtt_requests.cpp, rest/errors.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace twins {

enum class Code {
  kOk,
  kInvalidArgument,  // field() names the offending argument ("data", "version", ...)
  kNotFound,
  kVersionMismatch,  // expected() is what the request carried, actual() the stored version
  kQuotaExceeded,    // field() names the resource, quota()/current() the figures
  kTooManyRequests,  // retry_after_ms() says when the twin may ask again
  // The disk cannot take the write now (below the free-space reserve, or full): it may
  // succeed later. min_free_mb()/free_mb() are the reserve and the free space seen.
  kInsufficientStorage,
  // The store cannot be reached now (a shared database down or not answering): retry later.
  kUnavailable,
  kInternal,
};

class [[nodiscard]] Status {
 public:
  Status() = default;

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string field, std::string message) {
    return Status(Code::kInvalidArgument, std::move(message), std::move(field));
  }
  static Status NotFound(std::string message) { return Status(Code::kNotFound, std::move(message), {}); }
  static Status VersionMismatch(uint64_t expected, uint64_t actual) {
    Status s(Code::kVersionMismatch, "document version mismatch", "version");
    s.a_ = expected;
    s.b_ = actual;
    s.expected_text_ = std::to_string(expected);
    return s;
  }
  // A version condition other than one number failed (an HTTP If-Match list or "*"):
  // `expected` says what was expected ("3 or 5", "*").
  static Status VersionMismatch(std::string expected, uint64_t actual) {
    Status s(Code::kVersionMismatch, "document version mismatch", "version");
    s.b_ = actual;
    s.expected_text_ = std::move(expected);
    return s;
  }
  static Status QuotaExceeded(std::string resource, uint64_t quota, uint64_t current) {
    std::string message = "quota exceeded: " + resource + " is limited to " + std::to_string(quota);
    Status s(Code::kQuotaExceeded, std::move(message), std::move(resource));
    s.a_ = quota;
    s.b_ = current;
    return s;
  }
  static Status TooManyRequests(uint64_t retry_after_ms) {
    Status s(Code::kTooManyRequests, "too many requests", {});
    s.a_ = retry_after_ms;
    return s;
  }
  static Status InsufficientStorage(std::string message, uint64_t min_free_mb, uint64_t free_mb) {
    Status s(Code::kInsufficientStorage, std::move(message), "disk_space");
    s.a_ = min_free_mb;
    s.b_ = free_mb;
    return s;
  }
  static Status Unavailable(std::string message) { return Status(Code::kUnavailable, std::move(message), {}); }
  static Status Internal(std::string message) { return Status(Code::kInternal, std::move(message), {}); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& field() const { return field_; }
  uint64_t expected() const { return a_; }  // 0 when the condition was not one version
  const std::string& expected_text() const { return expected_text_; }
  uint64_t actual() const { return b_; }
  uint64_t quota() const { return a_; }
  uint64_t current() const { return b_; }
  uint64_t retry_after_ms() const { return a_; }
  uint64_t min_free_mb() const { return a_; }
  uint64_t free_mb() const { return b_; }

 private:
  Status(Code code, std::string message, std::string field)
      : code_(code), message_(std::move(message)), field_(std::move(field)) {}

  Code code_ = Code::kOk;
  std::string message_;
  std::string field_;
  uint64_t a_ = 0;
  uint64_t b_ = 0;
  std::string expected_text_;
};

// A value or the Status that explains why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace twins
