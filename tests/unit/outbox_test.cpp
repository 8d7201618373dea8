#include <gtest/gtest.h>

#include "agent/outbox.h"
