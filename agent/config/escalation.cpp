// [[escalation]] chains: per team, the webhooks paged one after the other until a human
// acknowledges. Read after the [[notify]] tables, whose names and kinds each step is checked
// against.
#include <map>
#include <set>

#include "agent/config/reader.h"
#include "agent/config/sections.h"

namespace vigil::config_internal {

namespace {

// Why at least 1m between escalation steps: a human needs time to see a page and acknowledge
// it; shorter only pages everyone at once.
constexpr Duration kMinEscalationAfter{60'000};

// A step names a webhook: the other kinds escalate on their own, or page nobody.
void escalation_target(ConfigReader& r, const toml::node& n, const std::string& name,
                       const Config& cfg, const std::set<std::string>& broken_notify,
                       const std::string& where) {
  if (broken_notify.count(name) != 0) return;  // its own error says what is wrong
  const NotifyConfig* target = cfg.find_notify(name);
  if (target == nullptr) {
    r.error(n.source(), where + "no notifier \"" + name +
                            "\" (define it as a [[notify]] with name = \"" + name +
                            "\" and kind = \"webhook\")");
    return;
  }
  std::string why;
  switch (target->kind) {
    case NotifierKind::webhook:
      return;
    case NotifierKind::pagerduty:
      why = "PagerDuty escalates on its own (the service's escalation policy)";
      break;
    case NotifierKind::oncall:
      why = "Grafana OnCall escalates on its own (the integration's escalation chain)";
      break;
    case NotifierKind::alertmanager:
      why = "Alertmanager routes and repeats on its own (its route tree)";
      break;
    case NotifierKind::statuspage:
      why = "a status page informs readers, it pages nobody";
      break;
  }
  r.error(n.source(), where + "\"" + name + "\" is kind " + std::string(to_string(target->kind)) +
                          ": " + why + "; a chain pages webhooks only");
}

void escalation(ConfigReader& r, const toml::table& t, EscalationConfig& e, const Config& cfg,
                std::map<std::string, SourcePos>& teams,
                const std::set<std::string>& broken_notify) {
  e.where = r.pos(t.source());
  const toml::node* team_node = t.get("team");
  if (team_node != nullptr) {
    if (auto v = r.get_string(t, "team", "escalation: ")) {
      if (!v->empty() && !team_name_ok(*v)) {
        r.error(team_node->source(), "escalation: 'team' \"" + *v +
                                         "\" must be 1-64 letters, digits, '-', '_' or '.' (or "
                                         "\"\" for every team)");
      }
      e.team = *v;
    }
  }
  const std::string where =
      e.team.empty() ? std::string("escalation (every team): ") : "escalation '" + e.team + "': ";
  r.check_keys(t, {"team", "steps"}, where);
  const toml::node* at = team_node != nullptr ? team_node : &t;
  if (auto [first, inserted] = teams.emplace(e.team, r.pos(at->source())); !inserted) {
    const std::string first_at = position_text(first->second);
    r.error(at->source(), e.team.empty()
                              ? "duplicate escalation chain for every team (first defined at " +
                                    first_at + "): give one of them a 'team'"
                              : "duplicate escalation chain for team '" + e.team +
                                    "' (first defined at " + first_at + ")");
  }

  const toml::node* sn = t.get("steps");
  if (sn == nullptr) {
    r.error(t.source(), where +
                            "missing required key 'steps' (e.g. steps = [{ notify = \"primary\" "
                            "}, { notify = \"secondary\", after = \"5m\" }])");
    return;
  }
  const auto* steps = sn->as_array();
  if (steps == nullptr) {
    r.error(sn->source(), where +
                              "'steps' must be an array of tables, e.g. steps = [{ notify = "
                              "\"primary\" }, { notify = \"secondary\", after = \"5m\" }]");
    return;
  }
  if (steps->empty()) {
    r.error(sn->source(), where + "'steps' must have at least one step");
    return;
  }
  std::map<std::string, std::size_t> seen;  // notifier -> its step (1-based)
  for (std::size_t i = 0; i < steps->size(); ++i) {
    const toml::node& item = *steps->get(i);
    const std::string sw = where + "step " + std::to_string(i + 1) + ": ";
    const auto* st = item.as_table();
    if (st == nullptr) {
      r.error(item.source(), sw +
                                 "must be a table like { notify = \"primary\", after = \"5m\" }, "
                                 "not " +
                                 std::string(type_name(item)));
      continue;
    }
    r.check_keys(*st, {"notify", "after"}, sw);
    EscalationStep step;
    const toml::node* nn = st->get("notify");
    if (nn == nullptr) {
      r.error(st->source(), sw + "missing required key 'notify' (the name of a [[notify]])");
    } else if (auto name = r.get_string(*st, "notify", sw)) {
      step.notify = *name;
      escalation_target(r, *nn, *name, cfg, broken_notify, sw);
      if (auto [first, inserted] = seen.emplace(*name, i + 1); !inserted) {
        r.error(nn->source(), sw + "\"" + *name + "\" is already step " +
                                  std::to_string(first->second) + " of this chain");
      }
    }
    const toml::node* an = st->get("after");
    if (i == 0) {
      if (an != nullptr) {
        const auto* s = an->as_string();
        const Result<Duration> d =
            s != nullptr ? parse_duration(s->get()) : Result<Duration>(make_error(""));
        if (!d || d->count() != 0) {
          r.error(an->source(), sw + "'after' must be \"0s\" or left out: the first step is paged "
                                     "with the incident");
        }
      }
    } else if (an == nullptr) {
      r.error(st->source(), sw + "missing required key 'after' (how long step " +
                                std::to_string(i) +
                                " has to acknowledge before this step is paged, at least 1m)");
    } else if (auto d = r.get_duration(*st, "after", kMinEscalationAfter, sw)) {
      step.after = *d;
    }
    e.steps.push_back(std::move(step));
  }
}

}  // namespace

// [[escalation]] chains: after the notifiers, whose names and kinds the steps are checked
// against.
void parse_escalations(ConfigReader& r, const toml::node& node, Config& cfg,
                       const std::set<std::string>& broken_notify) {
  const auto* arr = node.as_array();
  if (arr == nullptr || !arr->is_array_of_tables()) {
    r.error(node.source(), "'escalation' must be an array of tables: write [[escalation]]");
    return;
  }
  std::map<std::string, SourcePos> teams;
  for (const toml::node& item : *arr) {
    EscalationConfig e;
    escalation(r, *item.as_table(), e, cfg, teams, broken_notify);
    cfg.escalations.push_back(std::move(e));
  }
}

}  // namespace vigil::config_internal
