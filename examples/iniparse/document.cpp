#include "ini.hpp"

#include <algorithm>

namespace ini {

namespace {
// Keys compare without case, as most INI readers do.
struct Caseless {
  bool operator()(const std::string &a, const std::string &b) const {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](unsigned char x, unsigned char y) {
      return std::tolower(x) < std::tolower(y);
    });
  }
};
}  // namespace

struct Document::Section {
  std::map<std::string, std::string, Caseless> values;
  std::vector<std::string> order;
};

Document::Document() = default;
Document::~Document() = default;

void Document::section(std::string_view name) {
  auto &slot = sections_[std::string(name)];
  if (!slot) slot = std::make_unique<Section>();
  current_ = slot.get();
}

void Document::entry(std::string_view key, std::string_view value) {
  if (!current_) return;
  std::string k(key);
  auto [it, added] = current_->values.emplace(k, std::string(value));
  if (added) current_->order.push_back(std::move(k));
  else it->second.assign(value);
}

void Document::error(unsigned line, const char *what) {
  errors_.push_back(std::to_string(line) + ": " + what);
}

std::optional<std::string> Document::get(const std::string &section, const std::string &key) const {
  auto s = sections_.find(section);
  if (s == sections_.end()) return std::nullopt;
  auto v = s->second->values.find(key);
  if (v == s->second->values.end()) return std::nullopt;
  return v->second;
}

std::vector<std::string> Document::sortedSections() const {
  std::vector<std::string> names;
  names.reserve(sections_.size());
  for (const auto &[name, _] : sections_) names.push_back(name);
  std::sort(names.begin(), names.end(), [](const std::string &a, const std::string &b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  return names;
}

void Document::forEach(const std::function<void(const std::string &, const std::string &, const std::string &)> &fn) const {
  for (const auto &[name, sec] : sections_)
    for (const auto &key : sec->order) fn(name, key, sec->values.at(key));
}

std::size_t Document::size() const {
  std::size_t n = 0;
  forEach([&n](const std::string &, const std::string &, const std::string &) { n++; });
  return n;
}

void Counter::section(std::string_view) { sections++; }
void Counter::entry(std::string_view, std::string_view) { entries++; }
void Counter::error(unsigned, const char *) { errors++; }

}  // namespace ini
