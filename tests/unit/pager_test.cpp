#include <gtest/gtest.h>

#include "agent/pager.h"
