// The block action: `ufw prepend deny from IP` (argv only), after reading ufw's state, with an
// escalating duration per offence; optionally closes the address's open connections (ss -K).
#include "actions/block_action.h"

#include "agent/core/time.h"

namespace vigil {
namespace {

class BlockAction final : public Action {
 public:
  explicit BlockAction(const ActionContext& ctx) : ctx_(ctx) {}

  std::string lock_key(const ActionConfig&, const std::string& target) const override {
    return "address " + target;
  }

  std::string would(const ActionConfig& a, const std::string& target,
                    TimePoint now) const override {
    const Result<IpAddress> ip = parse_ip(target);
    const int offence = ip ? ctx_.blocks.offences(*ip, now) + 1 : 1;
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
    if (!ctx_.blocks_reconciled()) {
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
    const int offence = ctx_.blocks.offences(addr, Clock::now()) + 1;
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
          ctx_.blocks.add(entry);
          ctx_.save_blocks();
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
};

}  // namespace

std::unique_ptr<Action> make_block_action(const ActionContext& ctx) {
  return std::make_unique<BlockAction>(ctx);
}

}  // namespace vigil
