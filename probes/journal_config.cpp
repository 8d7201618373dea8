// A journal check's keys (probe = "journal"): which entries are read, the patterns and how
// their matches are counted; and issue 13's rule over the whole config, that a journal check
// whose finding can start an action is aimed by what journald records itself.
#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string_view>

#include "agent/config/reader.h"
#include "probes/config.h"

namespace vigil {

namespace {

using config_internal::ConfigReader;
using config_internal::UnitNamePatterns;

// RE2 patterns under `one` or `many`, compiled as the journal probe matches them.
std::vector<JournalPattern> patterns(ConfigReader& r, const toml::table& t, std::string_view one,
                                     std::string_view many, const std::string& where) {
  std::vector<JournalPattern> out;
  const std::vector<std::string> sources = r.string_list(t, one, many, where);
  const toml::node* n = t.get(one) ? t.get(one) : (many.empty() ? nullptr : t.get(many));
  re2::RE2::Options opts;
  opts.set_log_errors(false);
  // Why 8 MiB: RE2's DFA cache per pattern; enough for long patterns, bounded for many.
  opts.set_max_mem(8 << 20);
  // Latin-1, i.e. bytes: journal lines are attacker-influenced and may hold invalid UTF-8,
  // which in UTF-8 mode would make \S stop matching and hide a failure from the count.
  opts.set_encoding(re2::RE2::Options::EncodingLatin1);
  for (const std::string& src : sources) {
    auto re = std::make_shared<re2::RE2>(src, opts);
    if (!re->ok()) {
      r.error(n->source(), where + "'" + std::string(n == t.get(one) ? one : many) +
                               "': not a valid RE2 pattern: " + re->error() + " in /" + src + "/");
      continue;
    }
    out.push_back(JournalPattern{src, std::move(re)});
  }
  return out;
}

// comm, exe, uid, transport: fields journald sets from the kernel's view of the sender.
void trusted_fields(ConfigReader& r, const toml::table& t, JournalSettings& j,
                    const std::string& where) {
  j.comms = r.string_list(t, "comm", "", where);
  for (const std::string& v : j.comms) {
    // Why 15: the kernel keeps 16 bytes of a task's name with its NUL (TASK_COMM_LEN).
    if (v.empty() || v.size() > 15 || v.find('=') != std::string::npos) {
      r.error(t.get("comm")->source(), where + "'comm' \"" + v +
                                           "\" is not a process name: 1 to 15 bytes, as in "
                                           "/proc/PID/comm (e.g. comm = \"sshd\")");
    }
  }
  j.exes = r.string_list(t, "exe", "", where);
  for (const std::string& v : j.exes) {
    if (v.empty() || v.front() != '/') {
      r.error(t.get("exe")->source(), where + "'exe' \"" + v +
                                          "\" must be an absolute path, as in /proc/PID/exe "
                                          "(e.g. exe = \"/usr/sbin/sshd\")");
    }
  }
  if (const toml::node* n = t.get("uid")) {
    std::vector<const toml::node*> items;
    if (const auto* arr = n->as_array()) {
      for (const toml::node& item : *arr) items.push_back(&item);
    } else {
      items.push_back(n);
    }
    for (const toml::node* item : items) {
      const auto* i = item->as_integer();
      if (i == nullptr || i->get() < 0 || i->get() > 4'294'967'294LL) {
        r.error(item->source(), where +
                                    "'uid' must be a user id (an integer 0-4294967294) or an "
                                    "array of them, e.g. uid = 0");
        continue;
      }
      j.uids.push_back(std::to_string(i->get()));
    }
  }
  j.transports = r.string_list(t, "transport", "", where);
  static constexpr std::array<std::string_view, 6> kTransports{"audit",   "driver", "syslog",
                                                               "journal", "stdout", "kernel"};
  for (const std::string& v : j.transports) {
    if (std::find(kTransports.begin(), kTransports.end(), v) == kTransports.end()) {
      r.error(t.get("transport")->source(),
              where + "'transport' \"" + v +
                  "\" must be one of audit, driver, syslog, journal, stdout, kernel");
    }
  }
}

void parse_journal(ConfigReader& r, const toml::table& t, CheckConfig& c, const std::string& where,
                   CheckSources& sources) {
  JournalSettings j;
  j.units = r.string_list(t, "unit", "units", where);
  r.unit_names(t, j.units, where, UnitNamePatterns::no);
  j.identifiers = r.string_list(t, "identifier", "identifiers", where);
  trusted_fields(r, t, j, where);
  if (j.units.empty() && j.identifiers.empty() && j.exes.empty() && j.uids.empty() &&
      j.comms.empty()) {
    r.error(t.source(), where +
                            "a journal check needs 'unit' (or 'exe', 'uid', 'comm', "
                            "'identifier'), so entries of other services are never even read");
  }
  const toml::node* id = t.get("identifier") ? t.get("identifier") : t.get("identifiers");
  sources.journals[c.name] = {t.source(), id ? std::optional(id->source()) : std::nullopt};
  if (const toml::node* p = t.get("priority")) {
    static constexpr std::array<std::string_view, 8> kNames{"emerg",   "alert",  "crit", "err",
                                                            "warning", "notice", "info", "debug"};
    if (const auto* i = p->as_integer(); i != nullptr && i->get() >= 0 && i->get() <= 7) {
      j.max_priority = static_cast<int>(i->get());
    } else if (const auto* s = p->as_string()) {
      for (std::size_t k = 0; k < kNames.size(); ++k) {
        if (kNames[k] == s->get()) j.max_priority = static_cast<int>(k);
      }
    }
    if (!j.max_priority) {
      r.error(p->source(), where +
                               "'priority' must be 0-7 or one of emerg, alert, crit, err, "
                               "warning, notice, info, debug");
    }
  }
  const bool has_patterns = t.get("pattern") != nullptr || t.get("patterns") != nullptr;
  j.patterns = patterns(r, t, "pattern", "patterns", where);
  if (!has_patterns) {
    r.error(t.source(), where + "missing required key 'pattern' (or 'patterns')");
  }
  // An empty list would be a check that never matches: a silent missed detection.
  for (const char* name : {"pattern", "patterns"}) {
    const toml::node* n = t.get(name);
    if (n != nullptr && n->is_array() && n->as_array()->empty()) {
      r.error(n->source(), where + "'" + name + "' is empty: give at least one pattern");
    }
  }
  j.ignore = patterns(r, t, "ignore", "", where);
  if (auto k = r.get_string(t, "key", where)) {
    j.key = *k;
    for (const JournalPattern& p : j.patterns) {
      if (p.re->NamedCapturingGroups().count(j.key) == 0) {
        r.error(t.get("key")->source(), where + "'key' \"" + j.key +
                                            "\" is not a named group "
                                            "(?P<" +
                                            j.key + ">...) of pattern /" + p.source + "/");
      }
    }
  }
  if (auto v = r.get_int(t, "count", 1, 100'000, where)) j.count = *v;
  if (auto v = r.get_duration(t, "window", Duration(1'000), where)) j.window = *v;
  if (auto v = r.get_int(t, "max_keys", 10, 10'000'000, where))
    j.max_keys = static_cast<std::size_t>(*v);
  if (auto v = r.get_duration(t, "catch_up", Duration(1), where)) j.catch_up = *v;
  c.settings = std::move(j);
}

// Issue 13: a journal check whose finding can start an action must be aimed by what journald
// vouches for. SYSLOG_IDENTIFIER is whatever the sender wrote (systemd-cat -t sshd), and a
// process chooses its own comm; the unit (its cgroup), the executable and the uid are the
// kernel's. The check can act if its own ladder can, or if it joins (service = ...) an
// incident whose ladder belongs to another check.
void check_provenance(ConfigReader& r, const Config& cfg, const CheckSources& sources) {
  for (const CheckConfig& c : cfg.checks) {
    const JournalSettings* j = c.journal();
    const auto src = sources.journals.find(c.name);
    if (j == nullptr || src == sources.journals.end()) continue;
    std::string why;
    if (!c.mitigate.empty()) {
      why = "its ladder can act (" + c.mitigate.front() + ")";
    } else if (!c.service.empty()) {
      for (const CheckConfig& o : cfg.checks) {
        if (&o != &c && o.service == c.service && !o.mitigate.empty()) {
          why = "it joins service '" + c.service + "', whose check '" + o.name + "' can act (" +
                o.mitigate.front() + ")";
          break;
        }
      }
    }
    if (why.empty()) continue;
    const std::string where = "check '" + c.name + "': ";
    if (!j->identifiers.empty()) {
      r.error(src->second.second.value_or(src->second.first),
              where +
                  "'identifier' matches SYSLOG_IDENTIFIER, which any local process can set "
                  "(systemd-cat -t " +
                  j->identifiers.front() + "), and " + why +
                  ": match on what journald records itself instead: write unit = "
                  "\"NAME.service\" (e.g. unit = \"ssh.service\" for sshd), narrowed by "
                  "uid = 0 or exe = \"/usr/sbin/NAME\" when the unit runs other programs");
    } else if (j->units.empty() && j->exes.empty() && j->uids.empty()) {
      r.error(src->second.first,
              where +
                  "'comm' and 'transport' alone do not say who wrote a line (a process "
                  "names itself), and " +
                  why + ": add unit = \"NAME.service\", exe = \"/path\" or uid = N");
    }
  }
}

}  // namespace

ProbeKind journal_probe_config() {
  return ProbeKind{
      .name = "journal",
      .timing = ProbeTiming::none,
      .keys = {"unit", "units", "identifier", "identifiers", "comm", "exe", "uid", "transport",
               "priority", "pattern", "patterns", "ignore", "key", "count", "window", "max_keys",
               "catch_up"},
      .parse = parse_journal,
      .check_across = check_provenance,
  };
}

}  // namespace vigil
