// Who may run which control command (issue 13): decided on the kernel's credentials only.
#include "agent/control_access.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

constexpr unsigned kVigil = 990;
constexpr unsigned kAdmins = 991;

ControlPeer Peer(unsigned uid, unsigned gid, std::vector<unsigned> groups = {}) {
  return ControlPeer{uid, gid, 4242, std::move(groups)};
}

ControlAccess Access(bool with_admins) {
  ControlAccess a;
  a.read_gid = kVigil;
  if (with_admins) {
    a.admin_group = "vigil-admin";
    a.admin_gid = kAdmins;
  }
  return a;
}

TEST(ControlAccess, CommandsAreClassified) {
  EXPECT_EQ(control_class("status"), ControlClass::read);
  EXPECT_EQ(control_class("incidents"), ControlClass::read);
  EXPECT_EQ(control_class("incident"), ControlClass::read);
  EXPECT_EQ(control_class("ack"), ControlClass::change);
  EXPECT_EQ(control_class("maintain"), ControlClass::change);
  EXPECT_EQ(control_class("reboot"), std::nullopt);
  EXPECT_EQ(control_class(""), std::nullopt);
}

TEST(ControlAccess, RootMayDoAnything) {
  for (const char* cmd : {"status", "ack", "maintain", "unknown"}) {
    EXPECT_EQ(control_denied(Access(false), Peer(0, 0), cmd), "") << cmd;
  }
}

TEST(ControlAccess, TheVigilGroupReadsButNeverChangesState) {
  const ControlPeer primary = Peer(1000, kVigil);
  const ControlPeer supplementary = Peer(1001, 100, {27, kVigil});
  for (const ControlPeer& p : {primary, supplementary}) {
    EXPECT_EQ(control_denied(Access(true), p, "status"), "");
    EXPECT_EQ(control_denied(Access(true), p, "incident"), "");
    EXPECT_EQ(control_denied(Access(true), p, "ack"),
              "permission denied: 'ack' changes what vigil does; uid " + std::to_string(p.uid) +
                  " must be root or in the admin group 'vigil-admin'");
    EXPECT_NE(control_denied(Access(true), p, "maintain"), "");
  }
  EXPECT_EQ(control_denied(Access(false), primary, "maintain"),
            "permission denied: 'maintain' changes what vigil does; uid 1000 must be root (or "
            "set [agent] admin_group and join that group)");
}

TEST(ControlAccess, TheAdminGroupChangesStateAndReads) {
  const ControlPeer admin = Peer(1002, 100, {kAdmins});
  EXPECT_EQ(control_denied(Access(true), admin, "ack"), "");
  EXPECT_EQ(control_denied(Access(true), admin, "maintain"), "");
  EXPECT_EQ(control_denied(Access(true), admin, "status"), "");
}

TEST(ControlAccess, OthersGetNothing) {
  const ControlPeer other = Peer(33, 33, {33});
  EXPECT_EQ(control_denied(Access(true), other, "status"),
            "permission denied: uid 33 is neither root nor in the vigil group");
  EXPECT_NE(control_denied(Access(true), other, "ack"), "");
  EXPECT_EQ(control_denied(Access(true), other, "reboot"),
            "permission denied: unknown command for uid 33");
  // No vigil group on the host: reads are root's too.
  EXPECT_NE(control_denied(ControlAccess{}, Peer(1000, kVigil), "status"), "");
}

TEST(ControlAccess, AMissingAdminGroupIsNamed) {
  ControlAccess a = Access(false);
  a.admin_group = "ops";
  EXPECT_EQ(control_denied(a, Peer(1000, kVigil), "ack"),
            "permission denied: 'ack' changes what vigil does; uid 1000 must be root or in the "
            "admin group 'ops', which does not exist on this host");
}

TEST(ControlAccess, RequestLimitsPerCommand) {
  EXPECT_EQ(control_request_limit("maintain"), 64u * 1024);
  EXPECT_EQ(control_request_limit("ack"), 1024u);
  EXPECT_EQ(control_request_limit("status"), 1024u);
}

}  // namespace
}  // namespace vigil
