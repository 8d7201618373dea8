#include <gtest/gtest.h>

#include "agent/page.h"
