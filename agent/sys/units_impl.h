// Inside UnitWatcher (units.h): the one sd-bus connection and everything that rides on it,
// shared by units.cpp (connecting, pumping sd-bus on the Asio loop, reconnecting and resyncing,
// and the watches) and units_ops.cpp (one-shot reads, restarts and transient commands, and the
// JobRemoved bookkeeping). Internal to agent/sys/: it includes sd-bus.
#pragma once

#include <systemd/sd-bus.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/sys/units.h"

namespace vigil::sys {

inline constexpr const char* kSystemd = "org.freedesktop.systemd1";
inline constexpr Duration kFirstBackoff{500};

// One watched unit: its last state and the callbacks of every watch on it.
struct UnitEntry {
  std::string unit;
  std::string path;
  UnitState state;
  sd_bus_slot* match = nullptr;
  sd_bus_slot* call = nullptr;
  bool dirty = false;  // a change arrived while a read was in flight
  std::map<UnitWatcher::WatchId, UnitWatcher::Callback> callbacks;
  UnitWatcher::Impl* owner = nullptr;
  std::unique_ptr<boost::asio::steady_timer> retry;
};

// One unit_state() or restart_unit() in flight. Its call slot is owned, not floating, so that
// finishing early (deadline, shutdown, lost bus) cancels the pending call and no reply can reach
// a finished operation.
struct BusOp {
  enum class Step { reset_failed, restart, start_transient, job, read_unit, read_service };
  using Clock = std::chrono::steady_clock;

  UnitWatcher::Impl* owner = nullptr;
  std::uint64_t id = 0;
  std::string path;  // the unit's object path
  Step step = Step::read_unit;
  sd_bus_slot* call = nullptr;
  Clock::time_point started{};
  Duration limit{};                                // restarts: the caller's deadline
  std::optional<boost::asio::steady_timer> timer;  // restarts: enforces `limit`
  JobOutcome outcome;                              // outcome.after is the state being read
  std::function<void(JobOutcome)> restarted;       // set for restart_unit()
  std::function<void(UnitState)> read;             // set for unit_state()
  bool transient = false;                          // run_transient(): no state read after the job

  Duration elapsed() const { return std::chrono::duration_cast<Duration>(Clock::now() - started); }
};

struct UnitWatcher::Impl : std::enable_shared_from_this<UnitWatcher::Impl> {
  explicit Impl(boost::asio::io_context& ctx)
      : io(ctx), bus_timer(ctx), reconnect_timer(ctx), resync_timer(ctx) {}

  ~Impl() { teardown("vigil is stopping"); }

  // --- the connection (units.cpp) ---

  bool ensure_connected();
  // Runs sd-bus until it has nothing to do, then re-arms the fd and timeout watches.
  void pump();
  void arm();
  // One pending wait in one direction; `pending` is its flag (reading or writing). A wait from
  // before a teardown (older generation) is stale and does nothing.
  void wait(boost::asio::posix::stream_descriptor::wait_type type, bool& pending);
  void lost(const std::string& why);
  // Drops the connection. Pending operations complete with `why`: a JobRemoved sent while we
  // were away is never redelivered, so waiting across a reconnect could wait forever.
  void teardown(const std::string& why);
  void schedule_reconnect();
  void arm_resync();

  // --- watches (units.cpp) ---

  void install(UnitEntry& e);
  static int on_changed(sd_bus_message*, void* userdata, sd_bus_error*);
  // Reads the unit's properties: the Unit interface, then (for services) the Service one.
  void refresh(UnitEntry& e);
  static bool is_service(const std::string& unit);
  // Reads a GetAll reply (a{sv}) into `s`: the properties UnitState has, others skipped.
  static int parse(sd_bus_message* m, UnitState& s);
  static int on_unit_props(sd_bus_message* m, void* userdata, sd_bus_error*);
  static int on_service_props(sd_bus_message* m, void* userdata, sd_bus_error*);
  void deliver(UnitEntry& e);
  void read_failed(UnitEntry& e, const std::string& why);

  // --- one-shot reads and restarts (units_ops.cpp) ---

  // Sends what was queued, from the loop: never from the caller's stack, which may be inside an
  // sd-bus callback (sd_bus_process() is not re-entrant).
  void kick();
  BusOp& new_op(const std::string& unit);
  // Connects if needed; false (and `op` finished with the reason) when that is impossible.
  bool usable(BusOp& op);
  // The reply timeout of `op`'s next call: what is left of a restart's deadline (plus slack), or
  // sd-bus's default (25s) for a plain read.
  static std::uint64_t call_timeout_usec(const BusOp& op);
  // Queues `m` (consumed) as `op`'s pending call. On failure finishes `op` with `what: error`.
  bool send(BusOp& op, sd_bus_message* m, int r, const std::string& what);
  bool call_manager(BusOp& op, const char* method);
  void read_state(BusOp& op, BusOp::Step step);
  // The JobRemoved match, installed once per connection before the first RestartUnit is queued.
  // Its AddMatch goes out first on the same connection, so the bus applies it before systemd even
  // sees the call: no job of ours can end unseen.
  bool ensure_job_match(BusOp& op);
  void start_restart(BusOp& op);
  // Finishes `op` through expired() once its `limit` has passed.
  void arm_deadline(BusOp& op);
  // StartTransientUnit(name, "fail", properties, no aux units) for run_transient().
  void start_transient(BusOp& op, const TransientCommand& c);
  // ("NAME", <as>) into an open a(sv).
  static int append_strings(sd_bus_message* m, const char* name,
                            const std::vector<std::string>& values);
  // ("ExecStart", <a(sasb)>) with one command (path = argv[0]; failure not ignored).
  static int append_exec_start(sd_bus_message* m, const std::vector<std::string>& argv);
  // A NULL-terminated char* view of `values` (valid while `values` lives).
  static std::vector<char*> strv(const std::vector<std::string>& values);
  static int on_op_reply(sd_bus_message* m, void* userdata, sd_bus_error*);
  void replied(BusOp& op, sd_bus_message* m);
  static int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*);
  void job_ended(BusOp& op, const std::string& result);
  void state_read(BusOp& op);
  void state_failed(BusOp& op, const std::string& why);
  // Finishes `op` with `why`: as the restart's error, or (once the job has a result, and for
  // plain reads) as the reason the state is unknown.
  void fail(BusOp& op, const std::string& why);
  void expired(std::uint64_t id);
  // Removes `op` and hands its outcome to the caller on the next loop turn, so a callback that
  // calls back into the watcher never runs inside sd-bus dispatch or inside the caller's call.
  void finish(std::uint64_t id);
  void fail_all(const std::string& why);

  boost::asio::io_context& io;
  sd_bus* bus = nullptr;
  std::optional<boost::asio::posix::stream_descriptor> desc;
  boost::asio::steady_timer bus_timer, reconnect_timer, resync_timer;
  bool reading = false, writing = false, reconnect_pending = false, was_lost = false;
  unsigned generation = 0;
  Duration backoff = kFirstBackoff;
  std::map<std::string, std::unique_ptr<UnitEntry>> units;
  std::map<WatchId, std::string> watch_units;
  WatchId next_id = 0;
  std::string connect_error;  // why the last sd_bus_open_system() failed
  std::map<std::uint64_t, std::unique_ptr<BusOp>> ops;
  std::uint64_t next_op = 0;
  JobTracker jobs;
  sd_bus_slot* job_match = nullptr;  // JobRemoved, once a restart was asked on this connection
  bool kick_posted = false;
};

}  // namespace vigil::sys
