// vigil.toml as a whole: the document walk over its sections (in an order that the checks
// across sections rely on), [agent], parse_config/load_config_file, and the small members of
// the typed config. Each other section is parsed in its own file (sections.h) through the
// TOML reader (reader.h).
#include "agent/config/config.h"

#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "agent/config/kinds.h"
#include "agent/config/reader.h"
#include "agent/config/sections.h"
#include "agent/core/ip.h"
#include "agent/core/listen_address.h"

namespace vigil {

std::string ConfigError::to_string() const {
  std::ostringstream out;
  out << where.file << ':' << where.line << ':' << where.column << ": " << message;
  return out.str();
}

bool HttpSettings::status_expected(long status) const {
  return std::any_of(expect_status.begin(), expect_status.end(), [status](const StatusRange& r) {
    return status >= r.low && status <= r.high;
  });
}

SeverityRules SeverityRules::defaults() {
  SeverityRules r;
  r.on_failure.fill(Severity::sev1);  // anything not named below is treated as an outage
  for (FailureKind k :
       {FailureKind::refused, FailureKind::timeout, FailureKind::reset, FailureKind::dns,
        FailureKind::tls, FailureKind::protocol, FailureKind::http_5xx, FailureKind::error}) {
    r.set(k, Severity::sev1);
  }
  for (FailureKind k : {FailureKind::http_4xx, FailureKind::http_status, FailureKind::body,
                        FailureKind::unit_inactive, FailureKind::journal_match}) {
    r.set(k, Severity::sev2);
  }
  r.set(FailureKind::not_found, Severity::sev3);
  return r;
}

std::string_view to_string(ActionKind k) {
  switch (k) {
    case ActionKind::restart:
      return "restart";
    case ActionKind::rollback:
      return "rollback";
    case ActionKind::block:
      return "block";
  }
  return "?";
}

const ActionConfig* Config::find_action(std::string_view ref) const {
  const auto it = actions.find(std::string(ref));
  return it == actions.end() ? nullptr : &it->second;
}

const CheckConfig* Config::find_check(std::string_view name) const {
  for (const CheckConfig& c : checks) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string_view to_string(FleetUnreachable u) {
  return u == FleetUnreachable::act ? "act" : "hold";
}

std::string_view to_string(NotifierKind k) {
  switch (k) {
    case NotifierKind::alertmanager:
      return "alertmanager";
    case NotifierKind::pagerduty:
      return "pagerduty";
    case NotifierKind::oncall:
      return "oncall";
    case NotifierKind::statuspage:
      return "statuspage";
    case NotifierKind::webhook:
      return "webhook";
  }
  return "?";
}

const NotifyConfig* Config::find_notify(std::string_view name) const {
  for (const NotifyConfig& n : notify) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

const EscalationConfig* Config::escalation_for(std::string_view team) const {
  const EscalationConfig* catch_all = nullptr;
  for (const EscalationConfig& e : escalations) {
    if (e.team == team) return &e;
    if (e.team.empty()) catch_all = &e;
  }
  return catch_all;
}

namespace {

using config_internal::ConfigReader;

// "" when `text` is "ADDRESS:PORT" with a loopback address (127.0.0.0/8 or [::1]) and a
// port 1-65535; otherwise what is wrong. Metrics carry check names and incident counts:
// they must not be served off the host by a typo. Splits the text as the daemon's
// parse_listen_address does (IPv6 only in brackets), so that what passes here also binds.
std::string loopback_address_error(const std::string& text) {
  const HostPort split = split_host_port(text);
  if (split.unbracketed_v6) {
    return "needs brackets around an IPv6 address, as in \"[::1]:9717\", not \"" + text + "\"";
  }
  if (!split.ok) {
    return "must be \"ADDRESS:PORT\" (e.g. \"127.0.0.1:9717\"), not \"" + text + "\"";
  }
  const std::string host(split.host);
  const std::string port(split.port);
  const std::optional<unsigned> value = parse_port(port);
  // Port 0 binds "any free port": nothing could be told where to scrape.
  if (!value || *value == 0) return "has an invalid port \"" + port + "\" (1-65535)";
  auto ip = parse_ip(host);
  if (!ip) return "has an invalid address \"" + host + "\": " + ip.error().message;
  if (!ip->is_loopback()) {
    return "must listen on a loopback address (127.0.0.1 or [::1]), not " + host +
           ": scrape it through the host's own Prometheus agent or an SSH tunnel";
  }
  return {};
}

void agent(ConfigReader& r, const toml::node& node, AgentSettings& out) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    r.error(node.source(), "'agent' must be a table: write [agent]");
    return;
  }
  const std::string where = "[agent]: ";
  r.check_keys(*t,
               {"hostname", "state_dir", "dry_run", "control_socket", "metrics", "upgrade_after",
                "admin_group", "keep_incidents", "max_incidents"},
               where);
  if (const toml::node* n = t->get("keep_incidents")) {
    const auto* z = n->as_string();
    if (z != nullptr && (z->get() == "0" || z->get() == "forever")) {
      out.keep_incidents = Duration::zero();
    } else if (auto d = r.get_duration(*t, "keep_incidents", Duration(3'600'000), where)) {
      out.keep_incidents = *d;
    }
  }
  if (auto v = r.get_int(*t, "max_incidents", 100, 10'000'000, where)) out.max_incidents = *v;
  if (auto g = r.get_string(*t, "admin_group", where)) {
    // A group name as useradd(8) takes it; the group need not exist yet (it is looked up at
    // every start and reload, and a missing one leaves state changes to root).
    const bool valid =
        !g->empty() && g->size() <= 32 &&
        (std::islower(static_cast<unsigned char>(g->front())) || g->front() == '_') &&
        std::all_of(g->begin(), g->end(), [](unsigned char c) {
          return std::islower(c) || std::isdigit(c) || c == '-' || c == '_';
        });
    if (valid) {
      out.admin_group = *g;
    } else {
      r.error(t->get("admin_group")->source(),
              where + "'admin_group' \"" + *g +
                  "\" is not a group name (lower-case letters, digits, '-', '_'; at most 32)");
    }
  }
  if (auto h = r.get_string(*t, "hostname", where)) {
    const bool valid =
        !h->empty() && h->size() <= 253 && std::all_of(h->begin(), h->end(), [](unsigned char c) {
          return std::isalnum(c) || c == '-' || c == '.' || c == '_';
        });
    if (valid) {
      out.hostname = *h;
    } else {
      r.error(t->get("hostname")->source(),
              where + "'hostname' \"" + *h + "\" is not a valid host name");
    }
  }
  if (auto s = r.get_string(*t, "state_dir", where)) {
    if (s->empty() || s->front() != '/') {
      r.error(t->get("state_dir")->source(),
              where + "'state_dir' must be an absolute path, not \"" + *s + "\"");
    } else {
      out.state_dir = *s;
    }
  }
  if (auto b = r.get_bool(*t, "dry_run", where)) out.dry_run = *b ? DryRun::yes : DryRun::no;
  if (auto s = r.get_string(*t, "control_socket", where)) {
    // Why 100: a socket path must fit sun_path with its NUL: 108 bytes on Linux, 104 on the
    // BSDs. 100 fits everywhere, and the error comes now rather than at bind().
    if (s->empty() || s->front() != '/' || s->size() > 100) {
      r.error(t->get("control_socket")->source(),
              where + "'control_socket' must be an absolute path of at most 100 bytes, not \"" +
                  *s + "\"" +
                  (s->size() > 100 ? " (" + std::to_string(s->size()) + " bytes)" : std::string()));
    } else {
      out.control_socket = *s;
    }
  }
  if (auto m = r.get_string(*t, "metrics", where)) {
    if (std::string why = loopback_address_error(*m); !why.empty()) {
      r.error(t->get("metrics")->source(), where + "'metrics' " + why);
    } else {
      out.metrics_listen = *m;
    }
  }
  if (const toml::node* n = t->get("upgrade_after")) {
    // "0s" (or "0m", ...) is zero too: it means never, like "0", not "too short".
    const auto* z = n->as_string();
    const auto zero = [](const std::string& v) {
      const Result<Duration> d = parse_duration(v);
      return d && d->count() == 0;
    };
    if (z != nullptr && (z->get() == "0" || z->get() == "off" || zero(z->get()))) {
      out.upgrade_after = Duration::zero();
    } else if (auto d = r.get_duration(*t, "upgrade_after", Duration(1'000), where)) {
      out.upgrade_after = *d;
    }
  }
}

// The sections in this order: escalations after the notifiers they name; the ladders and each
// probe kind's rule over the whole config (a journal check's provenance), once everything is
// read.
Config document(ConfigReader& r, const toml::table& root, const ConfigKinds& kinds) {
  namespace sections = config_internal;
  Config cfg;
  r.check_keys(
      root, {"agent", "check", "mitigation", "action", "paging", "notify", "escalation", "fleet"},
      "");
  if (const toml::node* a = root.get("agent")) agent(r, *a, cfg.agent);
  if (const toml::node* m = root.get("mitigation")) {
    sections::parse_mitigation(r, *m, cfg.mitigation);
  }
  if (const toml::node* a = root.get("action")) sections::parse_actions(r, *a, kinds, cfg.actions);
  if (const toml::node* f = root.get("fleet")) sections::parse_fleet(r, *f, cfg.fleet);
  sections::check_fleet_caps(r, cfg, root);
  if (const toml::node* p = root.get("paging")) sections::parse_paging(r, *p, cfg.paging);
  std::set<std::string> broken_notify;  // [[notify]] names whose kind is unknown
  if (const toml::node* n = root.get("notify")) {
    broken_notify = sections::parse_notifiers(r, *n, kinds, cfg.notify);
  }
  if (const toml::node* e = root.get("escalation")) {
    sections::parse_escalations(r, *e, cfg, broken_notify);
  }
  CheckSources sources;
  if (const toml::node* c = root.get("check")) {
    sections::parse_checks(r, *c, kinds, cfg.checks, sources);
  }
  sections::check_ladders(r, cfg, kinds, sources);
  for (const ProbeKind& probe : kinds.probes) {
    if (probe.check_across != nullptr) probe.check_across(r, cfg, sources);
  }
  return cfg;
}

std::string default_hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace

LoadResult parse_config(std::string_view text, const std::string& path, const ConfigKinds& kinds) {
  LoadResult result;
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& e) {
    const auto& r = e.source();
    result.errors.push_back(ConfigError{
        SourcePos{path, static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)},
        "syntax error: " + std::string(e.description())});
    return result;
  }
  config_internal::ConfigReader reader(path);
  Config cfg = document(reader, root, kinds);
  result.errors = reader.take_errors();
  std::stable_sort(
      result.errors.begin(), result.errors.end(), [](const ConfigError& a, const ConfigError& b) {
        return std::tie(a.where.line, a.where.column) < std::tie(b.where.line, b.where.column);
      });
  if (result.errors.empty()) {
    cfg.path = path;
    if (cfg.agent.hostname.empty()) cfg.agent.hostname = default_hostname();
    result.config = std::move(cfg);
  }
  return result;
}

LoadResult load_config_file(const std::string& path, const ConfigKinds& kinds) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult r;
    r.errors.push_back(ConfigError{
        SourcePos{path, 0, 0}, "cannot read config file: " + std::string(std::strerror(errno))});
    return r;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  return parse_config(buf.str(), path, kinds);
}

}  // namespace vigil
