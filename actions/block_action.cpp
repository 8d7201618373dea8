// The block action: `ufw prepend deny from IP` (argv only), after reading ufw's state, with an
// escalating duration per offence; optionally closes the address's open connections (ss -K).
// It owns the block list (STATE_DIR/blocks.json): reconciled with ufw's "vigil:" rules at start
// before any block is added or removed, and each block removed again when it expires.
#include "actions/block_action.h"

#include <boost/asio/steady_timer.hpp>
#include <chrono>

#include "actions/block.h"
#include "agent/core/terminal.h"
#include "agent/core/time.h"
#include "agent/sys/log.h"

namespace vigil {
namespace {

// Reconcile is retried every 5s until it works (ufw may be busy with an admin's command, or
// briefly missing during an upgrade); no block is added or removed until then.
constexpr std::chrono::seconds kReconcileRetry{5};
// Why 5: enough to show what was tagged by hand; a flood of them is one `ufw status` away.
constexpr std::size_t kUnrecognizedShown = 5;

class BlockAction final : public Action {
 public:
  explicit BlockAction(const ActionContext& ctx) : ctx_(ctx) {}

  void start() override {
    BlockList::Loaded b = BlockList::load(path());
    if (!b.warning.empty()) sys::log_warning(b.warning);
    blocks_ = std::move(b.list);
    reconcile();
  }
  std::optional<std::string> not_ready() const override {
    if (reconciled_) return std::nullopt;
    return "waiting until vigil's block list is reconciled with ufw";
  }
  void tick(TimePoint now) override { expire(now); }
  void prune(TimePoint now) override { blocks_.prune(now); }
  void status(nlohmann::json& out) const override {
    nlohmann::json blocked = nlohmann::json::array();
    for (const BlockEntry& b : blocks_.entries()) {
      blocked.push_back(
          {{"ip", b.ip.to_string()}, {"incident", b.incident}, {"until", format_time(b.until)}});
    }
    out["blocks"] = std::move(blocked);
  }

  std::string lock_key(const ActionConfig&, const std::string& target) const override {
    return "address " + target;
  }

  std::string would(const ActionConfig& a, const std::string& target,
                    TimePoint now) const override {
    const Result<IpAddress> ip = parse_ip(target);
    const int offence = ip ? blocks_.offences(*ip, now) + 1 : 1;
    return "would block " + target + " for " +
           format_duration(block_duration(offence, a.block_for, a.max_block_for)) +
           " (ufw prepend deny from " + target + ")";
  }

  void run(const std::string& incident, const ActionConfig& config, const std::string& target,
           Done done) override {
    const Result<IpAddress> ip = parse_ip(target);
    if (!ip) {  // decide() parsed it already; never hand anything else to ufw
      done(ActionResult::failed, "not blocked: " + ip.error().message);
      return;
    }
    if (!reconciled_) {
      done(ActionResult::failed,
           "not blocked: vigil's block list and ufw are not reconciled yet (see the log)");
      return;
    }
    const IpAddress addr = *ip;
    const ActionConfig a = config;
    ctx_.commands.run(
        ufw_status_argv(), kUfwTimeout,
        [this, incident, a, addr, done](sys::CommandResult st) {
          if (ctx_.stopping()) return;
          status_read(incident, a, addr, st, done);
        },
        kMaxUfwStatusOutput);
  }

 private:
  std::string path() const { return ctx_.config.agent.state_dir + "/blocks.json"; }
  void save() const {
    if (auto ok = blocks_.save(path()); !ok) sys::log_error(ok.error().message);
  }
  void reconcile();
  void expire(TimePoint now);

  void status_read(const std::string& incident, const ActionConfig& a, const IpAddress& addr,
                   const sys::CommandResult& st, const Done& done) {
    const Result<UfwStatus> status = parse_ufw_status(st.out);
    if (!st.ok() || !status || st.out_truncated) {
      done(ActionResult::failed,
           "not blocked: `ufw status` failed: " +
               (!st.ok()           ? st.describe()
                : st.out_truncated ? std::string("its output is too long to read")
                                   : status.error().message));
      return;
    }
    if (!status->active) {
      done(ActionResult::failed,
           "not blocked: ufw is inactive, so a deny rule would not be enforced");
      return;
    }
    const int offence = blocks_.offences(addr, Clock::now()) + 1;
    const Duration for_ = block_duration(offence, a.block_for, a.max_block_for);
    Result<std::string> comment = block_comment(incident);
    Result<std::vector<std::string>> argv = comment
                                                ? ufw_block_argv(addr, *comment)
                                                : Result<std::vector<std::string>>(comment.error());
    if (!argv) {
      done(ActionResult::failed, "not blocked: " + argv.error().message);
      return;
    }
    // A rule vigil added earlier for this address (a repeat offender whose block is still in
    // ufw): ufw will not add a second; the entry must name the rule's incident, or the unblock
    // (which matches the comment) would miss it.
    std::string rule_incident = incident;
    bool ours = false;
    for (const UfwRule& r : status->rules) {
      if (r.ip == addr) {
        ours = true;
        rule_incident = r.incident;
      }
    }
    ctx_.commands.run(
        *argv, kUfwTimeout,
        [this, incident, a, addr, offence, for_, ours, rule_incident, done](sys::CommandResult r) {
          if (ctx_.stopping()) return;
          if (!r.ok()) {
            done(ActionResult::failed, "ufw refused the rule: " + r.describe());
            return;
          }
          if (ufw_change(r.out) == UfwChange::already_present && !ours) {
            // ufw kept an existing rule for this address (an admin's): ours is not in effect.
            done(ActionResult::failed, "not blocked: ufw already has a rule for " +
                                           addr.to_string() +
                                           " that is not vigil's; it was left alone");
            return;
          }
          const TimePoint at = Clock::now();
          BlockEntry entry;
          entry.ip = addr;
          entry.incident =
              ufw_change(r.out) == UfwChange::already_present ? rule_incident : incident;
          entry.since = at;
          entry.until = at + for_;
          entry.offence = offence;
          blocks_.add(entry);
          save();
          const std::string text = "blocked " + addr.to_string() + " for " + format_duration(for_) +
                                   " (offence " + std::to_string(offence) + ", until " +
                                   format_time(entry.until) + ")";
          if (!a.kill_connections) {
            done(ActionResult::ok, text);
            return;
          }
          ctx_.commands.run(
              ss_kill_argv(addr), kUfwTimeout, [this, text, done](sys::CommandResult k) {
                if (ctx_.stopping()) return;
                done(ActionResult::ok,
                     text + (k.ok() ? "; its open connections were closed"
                                    : "; closing its open connections failed: " + k.describe()));
              });
        });
  }

  ActionContext ctx_;
  BlockList blocks_;
  bool reconciled_ = false;  // no block/unblock before ufw and the list agree
};

// At start: ufw's rules tagged "vigil:" and the saved block list must agree before vigil adds
// or removes any rule. Expired or untracked vigil rules go; rules an admin removed stay removed.
void BlockAction::reconcile() {
  const bool any_block =
      std::any_of(ctx_.config.actions.begin(), ctx_.config.actions.end(),
                  [](const auto& a) { return a.second.kind == ActionKind::block; });
  if (!any_block && blocks_.size() == 0) {
    reconciled_ = true;
    return;
  }
  ctx_.commands.run(
      ufw_status_argv(), kUfwTimeout,
      [this](sys::CommandResult st) {
        if (ctx_.stopping()) return;
        const Result<UfwStatus> status = parse_ufw_status(st.out);
        // A cut listing would make every rule after the cut look removed by hand.
        if (!st.ok() || !status || st.out_truncated) {
          sys::log_error("cannot reconcile blocks with ufw (" +
                         (!st.ok()           ? st.describe()
                          : st.out_truncated ? std::string("`ufw status` output too long")
                                             : status.error().message) +
                         "); retrying in " + std::to_string(kReconcileRetry.count()) +
                         "s; no block until then");
          auto t = std::make_shared<boost::asio::steady_timer>(ctx_.io, kReconcileRetry);
          t->async_wait([this, t](const boost::system::error_code& ec) {
            if (!ec && !ctx_.stopping()) reconcile();
          });
          return;
        }
        // An untracked rule of vigil's is kept for the shortest block any action gives (1h
        // when none is configured any more): the block was meant, the file that knew its end
        // was lost.
        Duration adopt_for{3'600'000};
        bool first = true;
        for (const auto& [ref, a] : ctx_.config.actions) {
          if (a.kind != ActionKind::block) continue;
          adopt_for = first ? a.block_for : std::min(adopt_for, a.block_for);
          first = false;
        }
        const TimePoint now = Clock::now();
        const ReconcilePlan plan = vigil::reconcile(blocks_, *status, now, adopt_for);
        for (const BlockEntry& kept : plan.adopt) {
          if (!blocks_.add(kept)) {
            sys::log_error("cannot track vigil's rule for " + kept.ip.to_string() +
                           "; it stays in ufw until vigil's next start");
            continue;
          }
          sys::log_warning("vigil's rule for " + kept.ip.to_string() + " (incident " +
                           kept.incident +
                           ") was not in the block list (lost or corrupt state, or a crash "
                           "right after blocking): kept, until " +
                           format_time(kept.until));
        }
        for (const BlockEntry& gone : plan.forget) {
          sys::log(sys::LogLevel::notice, "block of " + gone.ip.to_string() + " (incident " +
                                              gone.incident +
                                              ") was removed from ufw by hand: it stays removed");
          blocks_.remove(gone.ip);
        }
        for (const ReconcilePlan::Delete& del : plan.to_delete) {
          const UfwRule rule = del.rule;
          Result<std::vector<std::string>> argv = ufw_unblock_argv(rule.ip, rule.comment);
          if (!argv) continue;
          ctx_.commands.run(*argv, kUfwTimeout, [rule](sys::CommandResult r) {
            if (r.ok()) {
              sys::log_info("removed stale vigil rule for " + rule.ip.to_string() + " (" +
                            rule.comment + ")");
            } else {
              sys::log_error("cannot remove stale vigil rule for " + rule.ip.to_string() + ": " +
                             r.describe());
            }
          });
          blocks_.remove(rule.ip);
        }
        // Tagged by hand or by another tool: never touched, but a human should look (a hand
        // edit of a vigil rule also makes its block look removed by hand above).
        for (std::size_t i = 0; i < status->unrecognized.size() && i < kUnrecognizedShown; ++i) {
          sys::log_warning(
              "ufw rule tagged \"vigil:\" but not of the shape vigil writes, never "
              "touched by vigil: " +
              visible(status->unrecognized[i]));
        }
        if (status->unrecognized.size() > kUnrecognizedShown) {
          sys::log_warning("and " +
                           std::to_string(status->unrecognized.size() - kUnrecognizedShown) +
                           " more such rule(s): see `ufw status`");
        }
        save();
        reconciled_ = true;
        if (plan.ufw_inactive) {
          sys::log_warning(
              "ufw is inactive: its rules cannot be read, so the block list is "
              "trusted (" +
              std::to_string(blocks_.size()) +
              " kept); they are not enforced, and no new block is added, until ufw "
              "is enabled");
        } else {
          sys::log_info("blocks reconciled with ufw: " + std::to_string(blocks_.size()) +
                        " active, " + std::to_string(plan.to_delete.size()) + " stale removed, " +
                        std::to_string(plan.adopt.size()) + " untracked kept, " +
                        std::to_string(plan.forget.size()) + " removed by hand");
        }
        expire(now);
      },
      kMaxUfwStatusOutput);
}

void BlockAction::expire(TimePoint now) {
  if (!reconciled_) return;
  for (const BlockEntry& entry : blocks_.expired(now)) {
    const IpAddress ip = entry.ip;
    const std::string incident = entry.incident;
    blocks_.remove(ip);
    Result<std::string> comment = block_comment(incident);
    Result<std::vector<std::string>> argv = comment
                                                ? ufw_unblock_argv(ip, *comment)
                                                : Result<std::vector<std::string>>(comment.error());
    if (!argv) {
      sys::log_error("cannot unblock " + ip.to_string() + ": " + argv.error().message);
      continue;
    }
    ctx_.commands.run(*argv, kUfwTimeout, [this, ip, incident](sys::CommandResult r) {
      if (ctx_.stopping()) return;
      if (r.ok() && ufw_change(r.out) == UfwChange::not_present) {
        // Removed by hand meanwhile: the address is unblocked, which is what expiry wanted.
        sys::log_info("block of " + ip.to_string() + " expired; its rule was already gone");
      } else if (!r.ok()) {
        // The entry is gone but the rule may not be: the next reconcile finds it untracked and
        // deletes it.
        reconciled_ = false;
        reconcile();
      }
      if (r.ok()) {
        sys::log(sys::LogLevel::info, "block of " + ip.to_string() + " expired: unblocked",
                 {{"VIGIL_INCIDENT", incident}});
      } else {
        sys::log_error("unblocking " + ip.to_string() + " failed: " + r.describe());
      }
      // The incident may be resolved by now; the note then goes to its file only.
      ctx_.note_later(incident, r.ok()
                                    ? "block of " + ip.to_string() + " expired: unblocked"
                                    : "unblocking " + ip.to_string() + " failed: " + r.describe());
    });
    save();
  }
}

}  // namespace

std::unique_ptr<Action> make_block_action(const ActionContext& ctx) {
  return std::make_unique<BlockAction>(ctx);
}

}  // namespace vigil
