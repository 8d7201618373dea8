// Values that several sections and kinds share (values.h): notifier names, header names and
// URLs; and the secrets of notifiers (routing keys, API keys, HMAC keys), inline or read from a
// file that grants nothing to group or others. No message ever contains a secret.
#include "agent/config/values.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "agent/core/result.h"
#include "agent/sys/files.h"
#include "agent/sys/http.h"

namespace vigil::config_internal {

namespace {

// The path of an http(s) URL already validated, without a trailing '/' ("" for none).
std::string_view url_path(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  const auto start = url.find_first_of("/?#", scheme + 3);
  if (start == std::string_view::npos || url[start] != '/') return {};
  std::string_view path = url.substr(start);
  path = path.substr(0, path.find_first_of("?#"));
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  return path;
}

}  // namespace

bool notify_name_ok(std::string_view v) {
  return !v.empty() && v.size() <= 64 && std::all_of(v.begin(), v.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '-' || ch == '_';
  });
}

bool header_name_ok(std::string_view v) {
  return !v.empty() && v.size() <= 256 && std::all_of(v.begin(), v.end(), [](unsigned char ch) {
    return std::isalnum(ch) || (ch != 0 && std::strchr("!#$%&'*+-.^_`|~", ch) != nullptr);
  });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool notify_url(ConfigReader& r, const toml::node& n, const std::string& url, std::string_view key,
                std::string_view endpoint, const std::string& where) {
  const std::string what = where + "'" + std::string(key) + "' \"" + url + "\": ";
  if (auto problem = sys::validate_http_url(url)) {
    r.error(n.source(), what + *problem);
    return false;
  }
  if (!endpoint.empty() && url_path(url).ends_with(endpoint)) {
    r.error(n.source(),
            what + "give the base URL, without " + std::string(endpoint) + " (vigil adds it)");
    return false;
  }
  return true;
}

std::optional<Secret> read_secret(ConfigReader& r, const toml::table& t, const std::string& key,
                                  const std::string& where) {
  const std::string file_key = key + "_file";
  const toml::node* inline_node = t.get(key);
  const toml::node* file_node = t.get(file_key);
  if (inline_node != nullptr && file_node != nullptr) {
    r.error(file_node->source(),
            where + "give either '" + key + "' or '" + file_key + "', not both");
    return std::nullopt;
  }
  if (inline_node != nullptr) {
    auto v = r.get_string(t, key, where);
    if (!v) return std::nullopt;
    if (v->empty()) {
      r.error(inline_node->source(), where + "'" + key + "' is empty");
      return std::nullopt;
    }
    return Secret{std::move(*v), "", inline_node, "'" + key + "'"};
  }
  if (file_node == nullptr) return std::nullopt;
  auto path = r.get_string(t, file_key, where);
  if (!path) return std::nullopt;
  if (path->empty() || path->front() != '/') {
    r.error(file_node->source(),
            where + "'" + file_key + "' must be an absolute path, not \"" + *path + "\"");
    return std::nullopt;
  }
  const std::string label = "'" + file_key + "' \"" + *path + "\"";
  Result<std::string> content = sys::read_secret_file(*path);
  if (!content) {
    r.error(file_node->source(), where + label + content.error().message);
    return std::nullopt;
  }
  return Secret{std::move(*content), *path, file_node, label};
}

std::optional<Secret> read_required_secret(ConfigReader& r, const toml::table& t,
                                           const std::string& key, std::string_view what,
                                           const std::string& where) {
  std::optional<Secret> s = read_secret(r, t, key, where);
  if (!s && t.get(key) == nullptr && t.get(key + "_file") == nullptr) {
    r.error(t.source(), where + "missing required key '" + key + "_file' (or '" + key +
                            "'): " + std::string(what));
  }
  return s;
}

bool header_safe(ConfigReader& r, const Secret& s, const std::string& where) {
  const bool ok = std::none_of(s.value.begin(), s.value.end(),
                               [](unsigned char ch) { return ch < 0x20 || ch == 0x7f; });
  if (!ok) {
    r.error(s.node->source(), where + s.label +
                                  " contains a line break or another control character: it "
                                  "goes into an HTTP header");
  }
  return ok;
}

}  // namespace vigil::config_internal
