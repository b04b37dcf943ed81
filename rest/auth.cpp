#include "rest/auth.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "rest/rest_server.hpp"

namespace twins {
namespace {

// Walks the whole presented value whatever the token's length; a length difference is folded
// into the result instead of returning early.
bool SameSecret(std::string_view secret, std::string_view presented) {
  volatile unsigned char diff = secret.size() == presented.size() ? 0 : 1;
  if (secret.empty()) return false;
  for (size_t i = 0; i < presented.size(); ++i) {
    diff = diff | static_cast<unsigned char>(secret[i % secret.size()] ^ presented[i]);
  }
  return diff == 0;
}

std::string_view Trim(std::string_view text) {
  const char* space = " \t\r\n\f\v";
  size_t begin = text.find_first_not_of(space);
  if (begin == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(space);
  return text.substr(begin, end - begin + 1);
}

}  // namespace

bool TokenSet::Accepts(std::string_view presented) const {
  if (tokens_.empty()) return true;
  bool accepted = false;
  for (const std::string& token : tokens_) accepted |= SameSecret(token, presented);
  return accepted;
}

Result<std::vector<std::string>> ReadTokensFile(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return Status::InvalidArgument("tokens_file", "cannot read tokens file " + path + ": " + std::strerror(errno));
  std::vector<std::string> tokens;
  std::string line;
  while (std::getline(in, line)) {
    std::string_view token = Trim(line);
    if (token.empty() || token.front() == '#') continue;
    tokens.emplace_back(token);
  }
  if (in.bad()) return Status::InvalidArgument("tokens_file", "error reading tokens file " + path);
  if (tokens.empty()) return Status::InvalidArgument("tokens_file", "tokens file " + path + " holds no token");
  return tokens;
}

}  // namespace twins
