#include "ini.hpp"

#include <algorithm>
#include <cctype>

namespace ini {

std::string_view trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

Token Lexer::next() {
  if (hasValue_) {
    hasValue_ = false;
    return {TokenKind::Value, pendingValue_, line_};
  }
  while (pos_ < input_.size()) {
    std::size_t end = input_.find('\n', pos_);
    if (end == std::string_view::npos) end = input_.size();
    std::string_view text = trim(input_.substr(pos_, end - pos_));
    pos_ = end + 1;
    line_++;
    if (text.empty()) continue;
    return lineToken(text);
  }
  return {TokenKind::End, {}, line_};
}

Token Lexer::lineToken(std::string_view text) {
  switch (text.front()) {
    case ';':
    case '#':
      return {TokenKind::Comment, text.substr(1), line_};
    case '[': {
      if (text.back() != ']' || text.size() < 3) return {TokenKind::Error, text, line_};
      return {TokenKind::Section, trim(text.substr(1, text.size() - 2)), line_};
    }
    default: {
      std::size_t eq = text.find_first_of("=:");
      if (eq == std::string_view::npos || eq == 0) return {TokenKind::Error, text, line_};
      std::string_view value = trim(text.substr(eq + 1));
      // Quoted values keep their inner spaces; the quotes go.
      if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
        value = value.substr(1, value.size() - 2);
      pendingValue_ = value;
      hasValue_ = true;
      return {TokenKind::Key, trim(text.substr(0, eq)), line_};
    }
  }
}

bool parseInt(std::string_view s, long &out) {
  s = trim(s);
  bool neg = !s.empty() && s.front() == '-';
  if (neg) s.remove_prefix(1);
  if (s.empty() || s.size() > 18) return false;
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) { base = 16; s.remove_prefix(2); }
  long v = 0;
  for (char c : s) {
    int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
          : base == 16 && std::isxdigit(static_cast<unsigned char>(c)) ? std::tolower(static_cast<unsigned char>(c)) - 'a' + 10
          : -1;
    if (d < 0) return false;
    v = v * base + d;
  }
  out = neg ? -v : v;
  return true;
}

bool parseBool(std::string_view s, bool &out) {
  std::string lower(trim(s));
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::pair<const char *, bool> words[] = {{"true", true}, {"yes", true}, {"on", true}, {"1", true},
                                                        {"false", false}, {"no", false}, {"off", false}, {"0", false}};
  auto it = std::find_if(std::begin(words), std::end(words), [&](const auto &w) { return lower == w.first; });
  if (it == std::end(words)) return false;
  out = it->second;
  return true;
}

}  // namespace ini
