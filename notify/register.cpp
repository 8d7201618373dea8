#include "notify/register.h"

#include "notify/kinds.h"

namespace vigil {

std::map<NotifierKind, std::unique_ptr<Notifier>> make_notifiers() {
  std::map<NotifierKind, std::unique_ptr<Notifier>> out;
  out.emplace(NotifierKind::alertmanager, make_alertmanager_notifier());
  out.emplace(NotifierKind::pagerduty, make_pagerduty_notifier());
  out.emplace(NotifierKind::oncall, make_oncall_notifier());
  out.emplace(NotifierKind::statuspage, make_statuspage_notifier());
  out.emplace(NotifierKind::webhook, make_webhook_notifier());
  return out;
}

const Notifier* notifier_for(NotifierKind k) {
  static const std::map<NotifierKind, std::unique_ptr<Notifier>> kNotifiers = make_notifiers();
  const auto it = kNotifiers.find(k);
  return it == kNotifiers.end() ? nullptr : it->second.get();
}

}  // namespace vigil
