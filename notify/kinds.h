// The notifier kinds, one file each (internal to notify/: make_notifiers() is how others get them).
#pragma once

#include <memory>

#include "notify/notifier.h"

namespace vigil {

std::unique_ptr<Notifier> make_alertmanager_notifier();  // notify/alertmanager.cpp
std::unique_ptr<Notifier> make_pagerduty_notifier();     // notify/pagerduty.cpp
std::unique_ptr<Notifier> make_oncall_notifier();        // notify/oncall.cpp
std::unique_ptr<Notifier> make_statuspage_notifier();    // notify/statuspage.cpp
std::unique_ptr<Notifier> make_webhook_notifier();       // notify/webhook.cpp

}  // namespace vigil
